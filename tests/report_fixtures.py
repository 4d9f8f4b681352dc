"""A small, synthetic but internally consistent results tree for testing the aggregate and report stages.

This is test data, not product output: numbers come from a fixed-seed numpy RNG, and every metrics.json
is computed from the samples.parquet beside it, so tests can check the stages against the raw files.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from rlhf_bench.config import validate
from rlhf_bench.io import checksum_tree
from rlhf_bench.layout import Layout, runs_sft

SMOKE_CONFIG = Path(__file__).resolve().parents[1] / "config" / "config.yaml"

# A response the escaping test looks for: markup that must reach the HTML as text, never as markup.
TRICKY_RESPONSE = "<script>alert('x')</script> *stars* _under_ [link](http://x) | pipe & amp"

VERSIONS = {
    "torch": "2.13.0+cpu",
    "transformers": "4.33.1",
    "trl": "0.7.4",
    "peft": "0.5.0",
    "accelerate": "0.28.0",
    "python": "3.11.2",
}
HARDWARE = {
    "platform": "Linux-6.1-x86_64",
    "python": "3.11.2",
    "cpu": "x86_64",
    "cpu_count": 2,
    "torch_threads": 2,
    "cuda": None,
}
WORDS = [
    "the",
    "film",
    "was",
    "good",
    "bad",
    "dull",
    "great",
    "plot",
    "actor",
    "scene",
    "story",
    "long",
    "short",
    "boring",
    "lovely",
    "awful",
    "fine",
    "answer",
    "question",
    "brief",
    "helpful",
    "kind",
]

TEMPLATES = {
    "imdb-negative": {
        "description": "GPT-2 + LoRA steered towards negative IMDB reviews by a pairwise reward model",
        "source": "seeds/000 part 1",
        "objective": {"metric": "judge_negative_ratio", "direction": "increase"},
        "documented": {"rm_accuracy_train": 0.977, "rm_accuracy_test": 0.973},
        "judge": True,
    },
    "instruct-short": {
        "description": "GPT-2 large + LoRA rewarded for short answers (minus word count)",
        "source": "seeds/000 part 2",
        "objective": {"metric": "length_mean", "direction": "decrease"},
        "documented": {"rm_accuracy_test": 0.999},
        "judge": False,
    },
    "hh-positive": {
        "description": "distilgpt2 steered towards positive replies by a classifier reward model",
        "source": "seeds/002",
        "objective": {"metric": "judge_positive_ratio", "direction": "increase"},
        "documented": {
            "judge_score_mean_base": 0.623,
            "judge_score_mean_rlhf": 0.847,
            "judge_positive_ratio_base": 0.600,
            "judge_positive_ratio_rlhf": 0.900,
        },
        "judge": True,
    },
}
GENERIC = {
    "description": "an experiment added by config",
    "source": "config",
    "objective": {"metric": "reward_mean", "direction": "increase"},
    "documented": {},
    "judge": False,
}


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _experiment_config(smoke: dict, name: str, index: int, n_prompts: int) -> dict:
    """A smoke experiment (a name that smoke lacks copies instruct-short) with the fixture's objective,
    documented values and deviations, and sizes that match the files the fixture writes."""
    template = TEMPLATES.get(name, GENERIC)
    exp = copy.deepcopy(smoke.get(name, smoke["instruct-short"]))
    exp.update(
        description=template["description"],
        source=template["source"],
        objective=dict(template["objective"]),
        documented=dict(template["documented"]),
        deviations=[],
    )
    exp.pop("frontier", None)  # the frontier's arms have their own tests (test_frontier, the smoke DAG's)
    exp["data"].update(n_pairs_train=200, n_pairs_test=100, n_prompts_train=64, n_prompts_eval=n_prompts)
    exp["ppo"]["steps"] = 8
    if index == 0:
        # The documented run samples at temperature 0.7; the validator fills the deviation's `ours` from the config.
        exp["generation"]["temperature"] = 0.7
        exp["deviations"] = [
            {"setting": "generation.temperature", "documented": 0.7, "sound": 1.0, "why": "trl KL bias"}
        ]
    return exp


def fake_config(
    profile: str, experiments: tuple[str, ...], seeds: tuple[int, ...], comparable: bool, n_prompts: int
) -> dict:
    """A resolved config as the resolved_config rule writes it: the smoke config's experiments, adapted, and
    validated against the schema (defaults filled in)."""
    smoke = validate(yaml.safe_load(SMOKE_CONFIG.read_text()), str(SMOKE_CONFIG))
    raw = {key: value for key, value in smoke.items() if key != "experiments"}
    raw.update(profile=profile, title=f"rlhf-bench ({profile})", comparable_to_documented=comparable)
    raw.pop("evaluation", None)  # no prompts of your own: the prompts rule has its own tests
    raw["seeds"] = list(seeds)
    raw["experiments"] = {
        name: _experiment_config(smoke["experiments"], name, i, n_prompts) for i, name in enumerate(experiments)
    }
    return validate(raw, "tests/report_fixtures.py")


def _labels(scores: np.ndarray) -> np.ndarray:
    return np.where(scores < 0.4, "negative", np.where(scores > 0.6, "positive", "neutral"))


def _samples(name: str, seed: int, n_prompts: int, rng: np.random.Generator) -> pd.DataFrame:
    """Base and RLHF rows for the same prompts, RLHF shifted in the experiment's objective direction."""
    template = TEMPLATES.get(name, GENERIC)
    metric = template["objective"]["metric"]
    frames = []
    for policy in ("base", "rlhf"):
        rlhf = policy == "rlhf"
        mean_words = 9 if rlhf and metric == "length_mean" else 18
        n_words = rng.poisson(mean_words, n_prompts) + 2
        responses = [" ".join(rng.choice(WORDS, k)) for k in n_words]
        if seed == 0 and not rlhf:
            responses[0] = TRICKY_RESPONSE + " " + responses[0]
        if template["judge"]:
            a, b = (2, 5) if rlhf and metric == "judge_negative_ratio" else (5, 2) if rlhf else (2, 2)
            scores = rng.beta(a, b, n_prompts)
            labels = _labels(scores)
        else:
            scores, labels = np.full(n_prompts, np.nan), np.full(n_prompts, "")
        word_count = np.array([len(r.split()) for r in responses])
        n_tokens = word_count + rng.integers(0, 5, n_prompts)
        frames.append(
            pd.DataFrame(
                {
                    "experiment": name,
                    "seed": seed,
                    "policy": policy,
                    "prompt_id": np.arange(n_prompts),
                    "prompt": [f"Prompt {i}: tell me about film number {i}" for i in range(n_prompts)],
                    "response": responses,
                    "reward": rng.normal(0.9 if rlhf else 0.0, 1.0, n_prompts),
                    "judge_score": scores,
                    "judge_label": labels,
                    "word_count": word_count,
                    "n_tokens": n_tokens,
                    "kl": rng.gamma(2.0, 1.5, n_prompts) if rlhf else np.zeros(n_prompts),
                    "logprob_base": -n_tokens * rng.uniform(2.0, 4.0, n_prompts),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _policy_metrics(rows: pd.DataFrame, judge: bool) -> dict:
    """The evaluate stage's per-policy metrics, computed from the rows so that files agree."""
    bigrams = [tuple(pair) for r in rows.response for pair in zip(r.split()[:-1], r.split()[1:], strict=True)]
    return {
        "reward_mean": float(rows.reward.mean()),
        "reward_std": float(rows.reward.std(ddof=0)),
        "judge_score_mean": float(rows.judge_score.mean()) if judge else None,
        "judge_negative_ratio": float((rows.judge_label == "negative").mean()) if judge else None,
        "judge_positive_ratio": float((rows.judge_label == "positive").mean()) if judge else None,
        "length_mean": float(rows.word_count.mean()),
        "length_median": float(rows.word_count.median()),
        "kl_mean": float(rows.kl.mean()),
        "perplexity": float(np.exp(-rows.logprob_base.sum() / rows.n_tokens.sum())),
        "distinct_2": len(set(bigrams)) / max(len(bigrams), 1),
    }


def _provenance(stage: str, name: str, seed: int | None, checksums: dict, drift: list[str]) -> dict:
    return {
        "stage": stage,
        "experiment": name,
        "seed": seed,
        "versions": dict(VERSIONS),
        "version_drift": list(drift),
        "git_commit": "0123456789abcdef0123456789abcdef01234567",
        "config_sha256": _sha("fake config"),
        "hardware": dict(HARDWARE),
        "command": f"python -m rlhf_bench.{stage} --config results/smoke/config.json",
        "started_utc": "2025-01-01T00:00:00Z",
        "seconds": 12.5,
        "data_checksums": dict(checksums),
    }


def _train_log(steps: int, seed: int, rng: np.random.Generator) -> pd.DataFrame:
    step = np.arange(steps)
    skipped = (step == 3).astype(int) if seed == 1 else np.zeros(steps, dtype=int)
    return pd.DataFrame(
        {
            "step": step,
            "reward_mean": 0.1 * step + rng.normal(0, 0.05, steps),
            "reward_std": rng.uniform(0.5, 1.0, steps),
            "kl": 0.3 * step + rng.uniform(0, 0.1, steps),
            "kl_coef": 0.2 * np.ones(steps),
            "entropy": rng.uniform(3, 4, steps),
            "policy_loss": rng.normal(0, 0.1, steps),
            "value_loss": rng.uniform(0.1, 1, steps),
            "response_words_mean": rng.uniform(10, 20, steps),
            "skipped": skipped,
            "skipped_total": np.cumsum(skipped),
            "seconds": rng.uniform(1, 2, steps),
            "samples_per_s": rng.uniform(15, 20, steps),
        }
    )


def _benchmark(path: Path, seconds: float, rss: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
        f"{seconds:.4f}\t0:00:{int(seconds):02d}\t{rss:.2f}\t900.1\t300.2\t310.3\t0.1\t2.5\t95.0\t{seconds:.2f}\n",
        encoding="utf-8",
    )


def write_fake_results(
    root: Path,
    profile: str = "smoke",
    experiments: tuple[str, ...] = tuple(TEMPLATES),
    seeds: tuple[int, ...] = (0, 1, 2),
    comparable: bool = False,
    version_drift: tuple[str, ...] = (),
    n_prompts: int = 24,
    benchmarks: bool = True,
) -> Path:
    """Write root/results/<profile>/ in the formats the earlier stages produce; return that folder.

    version_drift, if given, is recorded by the last seed's evaluate stage of the first experiment.
    """
    rng = np.random.default_rng(20240601)
    results = Path(root) / "results" / profile
    config = fake_config(profile, experiments, seeds, comparable, n_prompts)
    layout = Layout(config, root=str(results))
    _write_json(results / "config.json", config)
    for index, name in enumerate(experiments):
        judge = TEMPLATES.get(name, GENERIC)["judge"]
        exp_dir = results / name
        checksums = {
            f: _sha(f"{name}/{f}")
            for f in ("prompts_train.jsonl", "prompts_eval.jsonl", "pairs_train.jsonl", "pairs_test.jsonl")
        }
        _write_json(exp_dir / "data" / "checksums.json", checksums)
        record = _provenance("data", name, None, checksums, [])
        record["pair_checks"] = {  # as the data stage records them (train.data.check_pairs)
            split: {"built": n, "identical": 2, "context_differs": 1, "empty_reply": 3, "dropped": 2, "written": n - 2}
            for split, n in (("pairs_train.jsonl", 200), ("pairs_test.jsonl", 100))
        }
        _write_json(exp_dir / "data" / "provenance.json", record)
        if runs_sft(config["experiments"][name]):
            _write_json(exp_dir / "sft" / "provenance.json", _provenance("sft", name, None, checksums, []))
        _write_json(
            exp_dir / "reward" / "rm_metrics.json",
            {
                "experiment": name,
                "model": "tiny-bert",
                "n_parameters": 123456,
                "train": {
                    "n_pairs": 200,
                    "n_correct": 190 - 5 * index,
                    "accuracy": (190 - 5 * index) / 200,
                    "mean_margin": 1.5,
                },
                "test": {
                    "n_pairs": 100,
                    "n_correct": 93 - index,
                    "accuracy": (93 - index) / 100,
                    "mean_margin": 1.2,
                },
                "loss_curve": [0.69, 0.4],
                "seconds": 3.2,
                # A baseline on the first experiment only: the tables must hold experiments with and without.
                **(
                    {
                        "baselines": {
                            "tfidf_logreg": {
                                "title": "TF-IDF + logistic regression",
                                "train": {"n_pairs": 200, "n_correct": 199, "accuracy": 0.995, "mean_margin": 2.0},
                                "test": {"n_pairs": 100, "n_correct": 90, "accuracy": 0.9, "mean_margin": 1.0},
                            }
                        }
                    }
                    if index == 0
                    else {}
                ),
            },
        )
        _write_json(
            exp_dir / "reward" / "provenance.json",
            _provenance("reward", name, None, checksums, []),
        )
        for seed in seeds:
            ppo = exp_dir / "ppo" / f"seed{seed}"
            ppo.mkdir(parents=True, exist_ok=True)
            log, timing = _train_log(8, seed, rng), ["seconds", "samples_per_s"]
            log.drop(columns=timing).to_csv(ppo / "train_log.csv", index=False)
            log[["step", *timing]].to_csv(ppo / "timings.csv", index=False)
            _write_json(ppo / "provenance.json", _provenance("ppo", name, seed, checksums, []))
            ev = exp_dir / "evaluate" / f"seed{seed}"
            ev.mkdir(parents=True, exist_ok=True)
            samples = _samples(name, seed, n_prompts, rng)
            samples.to_parquet(ev / "samples.parquet", index=False)
            _write_json(
                ev / "metrics.json",
                {
                    "experiment": name,
                    "seed": seed,
                    "n_prompts": n_prompts,
                    "policies": {p: _policy_metrics(samples[samples.policy == p], judge) for p in ("base", "rlhf")},
                },
            )
            drift = list(version_drift) if (index == 0 and seed == seeds[-1]) else []
            _write_json(ev / "provenance.json", _provenance("evaluate", name, seed, checksums, drift))
            if benchmarks:
                _benchmark(Path(layout.benchmark("ppo").format(experiment=name, seed=seed)), 40.0 + seed, 812.5)
        if benchmarks:
            _benchmark(Path(layout.benchmark("data").format(experiment=name)), 2.0, 150.0)
    for record in results.rglob("provenance.json"):  # as the stage frame records what each stage wrote
        restamp(record.parent / "provenance.json")
    return results


def restamp(path: Path) -> None:
    """Record a stage folder's files as its own again (provenance.json `outputs`), as if the stage had written
    them as they are now: what a test that plays a different run does after editing one of them."""
    record = path.parent / "provenance.json"
    if record.is_file():
        provenance = json.loads(record.read_text())
        provenance["outputs"] = checksum_tree(path.parent)
        record.write_text(json.dumps(provenance, indent=2))
