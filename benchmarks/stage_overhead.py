"""The fixed cost of a job, per stage of the smoke profile: interpreter start, imports, config and version check,
inputs verified, model load, save, provenance; the rest is the stage's work.

    python benchmarks/stage_overhead.py [--experiment imdb-negative] [--against DIR] [--repeat N]

Runs one experiment's chain (data, sft, reward, ppo seed 0, evaluate seed 0) on the smoke profile, each stage as
the Snakemake rule runs it: a fresh `python` process (here through this file's --inside wrapper, which imports the
stage's module, times its parts by wrapping the frame's and models' functions, and calls the stage's main). Also
counts the sha256 hashes a job computes, and how many of them hash a file it had hashed already.

--against DIR runs the same chain with another checkout's src/ (DIR, e.g. `git archive <commit> src config | tar -x -C
DIR`, then DIR/src) stage by stage alternately with this one's, so both see the same machine at the same time, and
prints each stage's seconds of both, their ratio, and whether the metrics files are byte-identical.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("data", "sft", "reward", "ppo", "evaluate")
PARTS = ("imports", "config_and_versions", "inputs_verified", "model_load", "save", "provenance")
COMPARED = {  # the files whose bytes must not change
    "data": ("prompts_train.jsonl", "pairs_train.jsonl", "checksums.json"),
    "sft": ("sft_metrics.json",),
    "reward": ("rm_metrics.json",),
    "ppo": ("train_log.csv",),
    "evaluate": ("metrics.json", "samples.parquet"),
}


class Timer:
    """Seconds per part; only the outermost of nested timed calls counts (build_trainer loads a tokenizer)."""

    def __init__(self):
        self.seconds = dict.fromkeys(PARTS[1:], 0.0)
        self.depth = 0

    def wrap(self, part: str, function):
        def timed(*args, **kwargs):
            if self.depth:
                return function(*args, **kwargs)
            self.depth += 1
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[part] += time.perf_counter() - started
                self.depth -= 1

        return timed


def inside(stage: str, argv: list[str]) -> int:
    """In the job's own process: import the stage, wrap its parts, run its main, print one JSON line."""
    module = importlib.import_module(f"rlhf_bench.train.{stage}")
    imported = time.perf_counter()
    from rlhf_bench import io, runtime
    from rlhf_bench.train import models

    timer = Timer()
    hashed: list[str] = []
    sha256_file = io.sha256_file

    def counted_sha256(path):
        hashed.append(str(Path(path).resolve()))
        return sha256_file(path)

    patches = [
        (runtime.Stage, "_load_config", "config_and_versions"),
        (runtime.Stage, "_provenance", "config_and_versions"),
        (runtime.Stage, "_start", "inputs_verified"),
        (runtime.Stage, "_finish", "provenance"),
        (models, "save", "save"),
    ]
    for name in ("load_tokenizer", "load_causal_lm", "load_reward_encoder", "load_classifier"):
        patches.append((models, name, "model_load"))
    if stage == "ppo":
        patches += [(module, "build_trainer", "model_load"), (module, "save_file", "save")]
    if stage in ("ppo", "evaluate"):
        from rlhf_bench.train import reward

        patches.append((reward.RewardScorer, "load", "model_load"))
    if stage == "evaluate" and hasattr(module, "PeftModel"):
        patches.append((module.PeftModel, "from_pretrained", "model_load"))
    from peft import PeftModel
    from transformers import PreTrainedModel

    patches += [(PreTrainedModel, "save_pretrained", "save"), (PeftModel, "save_pretrained", "save")]
    for owner, name, part in patches:
        original = owner.__dict__.get(name, getattr(owner, name))
        if isinstance(original, (classmethod, staticmethod)):
            wrapped = type(original)(timer.wrap(part, original.__func__))
        else:
            wrapped = timer.wrap(part, original)
        setattr(owner, name, wrapped)
    for holder in (io, runtime, sys.modules.get("rlhf_bench.train.checkpoint")):
        if holder is not None and hasattr(holder, "sha256_file"):
            holder.sha256_file = counted_sha256
    code = module.main(argv)
    print(
        "STAGE_OVERHEAD "
        + json.dumps(
            {
                "code": code,
                "imports_in_process": imported - STARTED,
                "parts": timer.seconds,
                "hashes": len(hashed),
                "repeated_hashes": len(hashed) - len(set(hashed)),
            }
        )
    )
    return code


def interpreter_seconds(src: Path, repeat: int = 3) -> float:
    """`python -c pass` in the job's environment: the interpreter's own start."""
    best = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, env=job_env(src))
        best.append(time.perf_counter() - started)
    return min(best)


def job_env(src: Path) -> dict:
    return {
        **os.environ,
        "PYTHONPATH": str(src),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONWARNINGS": "ignore",
        "TQDM_DISABLE": "1",
        "RLHF_BENCH_WANDB": "off",  # as rules/common.smk starts a job whose config does not track with W&B
    }


def stage_args(stage: str, config: Path, experiment: str, root: Path) -> list[str]:
    common = ["--config", str(config), "--experiment", experiment]
    data = ["--data", str(root / "data")]
    models = ["--sft", str(root / "sft"), "--reward", str(root / "reward")]
    return {
        "data": common,
        "sft": [*common, *data],
        "reward": [*common, *data],
        "ppo": [*common, "--seed", "0", *data, *models],
        "evaluate": [*common, "--seed", "0", *data, *models, "--ppo", str(root / "ppo")],
    }[stage] + ["--out", str(root / stage)]


def run_job(stage: str, src: Path, config: Path, experiment: str, root: Path) -> dict:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--inside",
        stage,
        "--",
        *stage_args(stage, config, experiment, root),
    ]
    started = time.perf_counter()
    result = subprocess.run(command, env=job_env(src), capture_output=True, text=True)
    wall = time.perf_counter() - started
    lines = [line for line in result.stdout.splitlines() if line.startswith("STAGE_OVERHEAD ")]
    if result.returncode != 0 or not lines:
        raise SystemExit(f"{stage} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    record = json.loads(lines[-1].removeprefix("STAGE_OVERHEAD "))
    record["wall"] = wall
    return record


def breakdown(record: dict, interpreter: float) -> dict:
    parts = {"interpreter": interpreter, "imports": record["imports_in_process"] - interpreter, **record["parts"]}
    fixed = sum(parts.values())
    return {
        **{k: round(v, 3) for k, v in parts.items()},
        "fixed": round(fixed, 3),
        "work": round(record["wall"] - fixed, 3),
        "wall": round(record["wall"], 3),
        "hashes": record["hashes"],
        "repeated_hashes": record["repeated_hashes"],
    }


def median_record(records: list[dict]) -> dict:
    """Each column's median over repeated runs of one stage (the wall column's own median, not a sum of parts)."""
    return {key: round(float(statistics.median(r[key] for r in records)), 3) for key in records[0]}


def same_outputs(stage: str, a: Path, b: Path) -> bool:
    return all((a / stage / f).read_bytes() == (b / stage / f).read_bytes() for f in COMPARED[stage])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="imdb-negative")
    parser.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    parser.add_argument("--against", help="another checkout's src/ folder, run alternately with this one's")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--repeat", type=int, default=1, help="run the chain this many times; medians are printed")
    parser.add_argument("--inside", choices=STAGES, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.inside:
        return inside(args.inside, [a for a in rest if a != "--"])
    sources = {"this": ROOT / "src"}
    if args.against:
        sources = {"against": Path(args.against).resolve(), **sources}
    runs = {name: {stage: [] for stage in STAGES} for name in sources}
    identical = dict.fromkeys(STAGES, True)
    for repeat in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="stage-overhead-") as folder:
            roots = {name: Path(folder) / name for name in sources}
            interpreter = {name: interpreter_seconds(src) for name, src in sources.items()}
            for index, stage in enumerate(STAGES):
                order = list(sources) if (index + repeat) % 2 == 0 else list(reversed(sources))
                for name in order:
                    record = run_job(stage, sources[name], Path(args.config), args.experiment, roots[name])
                    runs[name][stage].append(breakdown(record, interpreter[name]))
                if args.against:
                    identical[stage] &= same_outputs(stage, roots["this"], roots["against"])
    results = {name: {stage: median_record(runs[name][stage]) for stage in STAGES} for name in sources}
    if args.against:
        results["identical"] = identical
    columns = ("interpreter", *PARTS, "fixed", "work", "wall", "hashes", "repeated_hashes")
    for name in sources:
        print(f"{name} ({sources[name]}), seconds per job (median of {args.repeat}), smoke {args.experiment}:")
        print(f"  {'stage':<9}" + "".join(f"{c[:12]:>13}" for c in columns))
        for stage in STAGES:
            row = results[name][stage]
            print(f"  {stage:<9}" + "".join(f"{row[c]:>13}" for c in columns))
        total = {c: sum(results[name][s][c] for s in STAGES) for c in ("fixed", "wall")}
        print(f"  all: fixed {total['fixed']:.2f} s of {total['wall']:.2f} s")
    if args.against:
        for stage in STAGES:
            a, b = results["against"][stage], results["this"][stage]
            print(
                f"{stage:<9} wall {a['wall']:.2f} -> {b['wall']:.2f} s (x{b['wall'] / a['wall']:.2f}), fixed "
                f"{a['fixed']:.2f} -> {b['fixed']:.2f} s; outputs identical: {results['identical'][stage]}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
