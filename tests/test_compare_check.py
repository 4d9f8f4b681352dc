"""Reruns against earlier bundles (analysis.compare) and the CI gate on required claims (analysis.check)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from conftest import ROOT
from report_fixtures import restamp, write_fake_results
from rlhf_bench.analysis import check, claims, compare

SRC = ROOT / "src"
ENV = {**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1"}


def module(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"rlhf_bench.analysis.{name}", *args],
        capture_output=True, text=True, env=ENV, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture
def bundles(tmp_path):
    """An earlier bundle (with its claims.csv) and a copy of it as the rerun."""
    earlier = write_fake_results(tmp_path / "a", benchmarks=False, n_prompts=12)
    assert claims.main(["--config", str(earlier / "config.json"), "--results-dir", str(earlier),
                        "--out", str(earlier / "claims.csv")]) == 0  # fmt: skip
    rerun = tmp_path / "b" / "smoke"
    shutil.copytree(earlier, rerun)
    return earlier, rerun


def edit_json(path: Path, change) -> None:
    """Change a bundle's file as a different run would have written it (its stage's checksums follow)."""
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    if path.name != "provenance.json":
        restamp(path)


def shift_metric(bundle: Path, experiment: str, policy: str, metric: str, shifts) -> None:
    for seed, shift in zip((0, 1, 2), shifts, strict=True):
        path = bundle / experiment / "evaluate" / f"seed{seed}" / "metrics.json"
        edit_json(path, lambda m, s=shift: m["policies"][policy].__setitem__(metric, m["policies"][policy][metric] + s))


def test_a_bundle_against_its_copy_is_identical(bundles):
    earlier, rerun = bundles
    metrics, provenance, changes, text = compare.compare(earlier, rerun)
    assert set(metrics.status) == {"IDENTICAL"}
    assert len(metrics) == 3 * 2 + (10 + 10 + 7) * 2  # rm accuracies; metrics x policies (instruct: no judge)
    assert provenance.empty and changes.empty
    assert "Every metric is identical" in text and "No provenance difference" in text


def test_a_doctored_metric_beyond_its_margin_is_reported(bundles, tmp_path):
    earlier, rerun = bundles
    # judge_positive_ratio's margin is 0.05 (claims.yaml); move it by about 0.2 in every seed.
    shift_metric(rerun, "hh-positive", "rlhf", "judge_positive_ratio", (-0.19, -0.21, -0.20))
    out = tmp_path / "cmp"
    assert compare.main([str(earlier), str(rerun), "--out-dir", str(out)]) == 0  # reported, not a failure
    proc = module("compare", str(earlier), str(rerun), "--fail-on-difference")
    assert proc.returncode == 1
    metrics = pd.read_csv(out / "metrics.csv")
    different = metrics[metrics.status == "DIFFERENT"]
    assert list(zip(different.experiment, different.metric, different.policy, strict=True)) == [
        ("hh-positive", "judge_positive_ratio", "rlhf")
    ]
    row = different.iloc[0]
    assert row.design == "paired by seed" and row.margin == 0.05
    diffs = np.array([-0.19, -0.21, -0.20])
    half = sps.t.ppf(0.975, 2) * diffs.std(ddof=1) / np.sqrt(3)
    assert (row.difference, row.ci_low, row.ci_high) == pytest.approx((-0.2, -0.2 - half, -0.2 + half), abs=1e-9)
    assert row.ci_high < -0.05 and row.p_outside < 0.05
    assert "DIFFERENT: hh-positive judge_positive_ratio (rlhf)" in (out / "summary.md").read_text()
    assert "DIFFERENT: hh-positive judge_positive_ratio (rlhf)" in proc.stdout


def test_a_small_shift_within_the_margin_is_equivalent(bundles):
    earlier, rerun = bundles
    shift_metric(rerun, "hh-positive", "rlhf", "judge_positive_ratio", (0.004, 0.006, 0.005))
    metrics, *_ = compare.compare(earlier, rerun)
    hh = metrics[metrics.experiment == "hh-positive"]
    row = hh[(hh.metric == "judge_positive_ratio") & (hh.policy == "rlhf")].iloc[0]
    assert row.status == "EQUIVALENT" and row.p_equivalence < 0.05
    expected = max(
        sps.ttest_1samp([0.004, 0.006, 0.005], -0.05, alternative="greater").pvalue,
        sps.ttest_1samp([0.004, 0.006, 0.005], 0.05, alternative="less").pvalue,
    )
    assert row.p_equivalence == pytest.approx(expected, rel=1e-6)


def test_reward_model_accuracy_difference(bundles):
    earlier, rerun = bundles
    edit_json(rerun / "imdb-negative" / "reward" / "rm_metrics.json", lambda m: m["test"].update(n_correct=60))
    metrics, *_ = compare.compare(earlier, rerun)
    row = metrics[(metrics.experiment == "imdb-negative") & (metrics.metric == "rm_accuracy_test")].iloc[0]
    assert row.status == "DIFFERENT" and row.mean_a == 0.93 and row.mean_b == 0.60
    assert row.difference == pytest.approx(-0.33)


def test_different_seeds_fall_back_to_welch(tmp_path):
    earlier = write_fake_results(tmp_path / "a", experiments=("instruct-short",), benchmarks=False, n_prompts=8)
    rerun = write_fake_results(
        tmp_path / "b", experiments=("instruct-short",), seeds=(3, 4, 5), benchmarks=False, n_prompts=8
    )
    metrics, *_ = compare.compare(earlier, rerun)
    seeded = metrics[metrics.policy.isin(["base", "rlhf"])]
    assert set(seeded.design) == {"Welch (different seeds)"}


def test_every_provenance_difference_is_listed(bundles):
    earlier, rerun = bundles
    for path in rerun.rglob("provenance.json"):
        edit_json(path, lambda p: (p["versions"].update(torch="2.14.0"), p["hardware"].update(cpu="Other CPU")))
    edit_json(rerun / "imdb-negative" / "data" / "checksums.json", lambda c: c.update({"pairs_test.jsonl": "f00"}))
    edit_json(rerun / "config.json", lambda c: c["experiments"]["imdb-negative"]["ppo"].update(steps=9))
    edit_json(rerun / "hh-positive" / "evaluate" / "seed1" / "provenance.json", lambda p: p.update(git_commit="abc"))
    log = rerun / "imdb-negative" / "ppo" / "seed0" / "train_log.csv"  # what different weights would give
    log.write_text(log.read_text() + "\n")
    restamp(log)
    _, provenance, _, text = compare.compare(earlier, rerun)
    by_key = provenance.set_index("key")
    n_provenance = len(list(rerun.rglob("provenance.json")))
    assert by_key.loc["versions.torch", "n_files"] == n_provenance
    assert by_key.loc["versions.torch", "category"] == "library versions"
    assert by_key.loc["hardware.cpu", "category"] == "hardware"
    assert by_key.loc["pairs_test.jsonl", "category"] == "data checksums"
    assert by_key.loc["experiments.imdb-negative.ppo.steps", ["category", "value_a", "value_b"]].tolist() == [
        "config", "8", "9"
    ]  # fmt: skip
    assert by_key.loc["git_commit", "category"] == "code"
    assert by_key.loc["outputs.train_log.csv", ["category", "n_files"]].tolist() == ["output checksums", 1]
    assert "started_utc" not in by_key.index and "seconds" not in by_key.index
    assert '`versions.torch`: "2.13.0+cpu" -> "2.14.0"' in text


def test_compare_missing_bundle_exits_2_with_one_line(tmp_path):
    earlier = write_fake_results(tmp_path, experiments=("instruct-short",), benchmarks=False, n_prompts=8)
    proc = module("compare", str(earlier), str(tmp_path / "nowhere"))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr and "nowhere" in proc.stderr


# ------------------------------------------------------------------------------------------ check


def comparable_run(tmp_path: Path, rm_train_correct: int = 195) -> Path:
    """A comparable fake run whose reward models match the documented accuracies, but for imdb's train split."""
    results = write_fake_results(tmp_path, profile="paper", comparable=True, benchmarks=False, n_prompts=8)
    counts = {
        ("imdb-negative", "train"): rm_train_correct,
        ("imdb-negative", "test"): 97,
        ("instruct-short", "test"): 100,
    }
    for (experiment, split), n_correct in counts.items():
        edit_json(results / experiment / "reward" / "rm_metrics.json",
                  lambda m, s=split, k=n_correct: m[s].update(n_correct=k))  # fmt: skip
    assert claims.main(["--config", str(results / "config.json"), "--results-dir", str(results),
                        "--out", str(results / "claims.csv")]) == 0  # fmt: skip
    return results


def test_check_fails_on_a_required_claim_not_reproduced(tmp_path):
    results = comparable_run(tmp_path, rm_train_correct=120)  # 60% against the documented 97.7%
    proc = module("check", str(results / "claims.csv"))
    assert proc.returncode == 1
    assert "NOT REPRODUCED  imdb-rm-accuracy-train" in proc.stdout
    assert "FAILED: 1 of" in proc.stderr and "imdb-rm-accuracy-train" in proc.stderr


def test_check_passes_when_no_required_claim_is_refuted(tmp_path):
    results = comparable_run(tmp_path)
    table = pd.read_csv(results / "claims.csv")
    assert not ((table.verdict == "NOT REPRODUCED") & table.required).any()
    assert check.main(["--results-dir", str(results)]) == 0


def test_check_on_a_not_comparable_run(tmp_path, capsys):
    results = write_fake_results(tmp_path, benchmarks=False, n_prompts=8)
    assert claims.main(["--config", str(results / "config.json"), "--results-dir", str(results),
                        "--out", str(results / "claims.csv")]) == 0  # fmt: skip
    assert check.main([str(results / "claims.csv")]) == 0  # nothing refuted: NOT COMPARABLE is no failure
    assert check.main([str(results / "claims.csv"), "--strict"]) == 1  # but it does not pass a strict gate
    assert "FAILED" in capsys.readouterr().err


def test_check_missing_claims_csv_exits_2(tmp_path):
    proc = module("check", "--results-dir", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "'claims'" in proc.stderr and "Traceback" not in proc.stderr


# --------------------------------------------------------------------------------- the Snakemake side


@pytest.mark.dag
def test_claims_and_compare_are_snakemake_targets(tmp_path):
    """Dry run: claims.csv feeds the report, and results/<profile>/compare/<name>/ compares with bundles/<name>."""
    (tmp_path / "bundles" / "old").mkdir(parents=True)
    (tmp_path / "bundles" / "old" / "config.json").write_text("{}")
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(ROOT / "config" / "config.yaml"), "-n",
         "results/smoke/compare/old/metrics.csv", "reports/smoke/report.md"],
        capture_output=True, text=True, env={**ENV, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
        timeout=300, check=False, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    assert "claims" in out and "compare" in out and "report" in out


def test_wall_clock_measurements_are_not_provenance_differences():
    from rlhf_bench.analysis.compare import volatile

    for key in ("started_utc", "throughput.tokens_per_second", "inputs.ppo.timings.csv", "outputs.timings.csv"):
        assert volatile(key), key
    for key in ("git_commit", "outputs.train_log.csv", "versions.torch", "hardware.cpu_capability"):
        assert not volatile(key), key
