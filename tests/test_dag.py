"""The smoke DAG end to end with Snakemake, in a temporary directory, at reduced steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT

pytestmark = pytest.mark.dag

SAMPLE_COLUMNS = {
    "experiment",
    "seed",
    "policy",
    "prompt_id",
    "prompt",
    "response",
    "reward",
    "judge_score",
    "judge_label",
    "word_count",
    "n_tokens",
    "kl",
    "logprob_base",
}
LOG_COLUMNS = {
    "step",
    "reward_mean",
    "reward_std",
    "kl",
    "kl_coef",
    "entropy",
    "policy_loss",
    "value_loss",
    "response_words_mean",
    "skipped",
    "skipped_total",
    "seconds",
    "samples_per_s",
}


def snakemake(workdir: Path, *args: str, timeout: int = 1200) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    import yaml

    from conftest import tiny_config

    workdir = tmp_path_factory.mktemp("dag")
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(tiny_config(seeds=(0, 1))))
    result = snakemake(workdir, "--cores", "2", "--configfile", str(workdir / "tiny.yaml"))
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def test_every_output_exists_with_its_columns(finished_run):
    results = finished_run / "results" / "smoke"
    for experiment in ("imdb-negative", "instruct-short", "hh-positive"):
        exp = results / experiment
        checksums = json.loads((exp / "data" / "checksums.json").read_text())
        assert len(checksums) == 5
        rm = json.loads((exp / "reward" / "rm_metrics.json").read_text())
        assert 0.0 <= rm["test"]["accuracy"] <= 1.0 and rm["test"]["n_pairs"] == 32
        assert (exp / "sft" / "model" / "model.safetensors").exists()
        for seed in (0, 1):
            assert (exp / "ppo" / f"seed{seed}" / "adapter" / "adapter_model.safetensors").exists()
            log = pd.read_csv(exp / "ppo" / f"seed{seed}" / "train_log.csv")
            assert set(log.columns) == LOG_COLUMNS and len(log) == 2
            samples = pd.read_parquet(exp / "eval" / f"seed{seed}" / "samples.parquet")
            assert set(samples.columns) == SAMPLE_COLUMNS and len(samples) == 2 * 8
            metrics = json.loads((exp / "eval" / f"seed{seed}" / "metrics.json").read_text())
            assert set(metrics["policies"]) == {"base", "rlhf"}
            prov = json.loads((exp / "eval" / f"seed{seed}" / "provenance.json").read_text())
            assert prov["versions"]["trl"] == "0.7.4" and prov["data_checksums"] == checksums
    summary = pd.read_csv(results / "summary.csv")
    assert {"experiment", "metric", "policy", "mean", "ci_low", "ci_high"} <= set(summary.columns)
    assert set(summary.experiment) == {"imdb-negative", "instruct-short", "hh-positive"}
    assert (results / "benchmarks" / "imdb-negative.ppo.seed0.tsv").exists()


def test_report_is_written(finished_run):
    reports = finished_run / "reports" / "smoke"
    md = (reports / "report.md").read_text()
    html = (reports / "report.html").read_text()
    assert "not comparable" in md.lower()
    assert "data:image/png;base64," in html
    for experiment in ("imdb-negative", "instruct-short", "hh-positive"):
        assert experiment in md


def test_second_run_has_nothing_to_do(finished_run):
    result = snakemake(finished_run, "-n", "--configfile", str(finished_run / "tiny.yaml"))
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr
