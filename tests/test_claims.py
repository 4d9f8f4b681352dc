"""config/claims.yaml and the claims stage: the claims as data, their schema, and claims.csv on a fake run."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats as sps

from conftest import ROOT, smoke_config
from report_fixtures import restamp, write_fake_results
from rlhf_bench.analysis import claims, claims_file
from rlhf_bench.config import ConfigError

CLAIMS_YAML = ROOT / "config" / "claims.yaml"
SEEDS_DIR = ROOT.parent / "shared" / "seeds"
SRC = ROOT / "src"


def raw_claims() -> dict:
    return yaml.safe_load(CLAIMS_YAML.read_text())


def run_claims(results: Path, out: Path, claims_path: Path = CLAIMS_YAML) -> int:
    return claims.main(
        ["--config", str(results / "config.json"), "--results-dir", str(results), "--claims", str(claims_path),
         "--out", str(out)]
    )  # fmt: skip


# ------------------------------------------------------------------------------------ the file


def test_claims_file_has_every_claim_the_issue_lists():
    settings = claims_file.load_claims(CLAIMS_YAML)
    by_key = {(c.experiment, c.metric, c.test, c.policy): c for c in settings.claims}
    documented = {
        ("imdb-negative", "rm_accuracy_train"): 0.977,
        ("imdb-negative", "rm_accuracy_test"): 0.973,
        ("instruct-short", "rm_accuracy_test"): 0.999,
    }
    for (experiment, metric), value in documented.items():
        assert by_key[experiment, metric, "proportion_equivalence", "rlhf"].documented == value
    hh = {c.quote: c for c in settings.claims if c.experiment == "hh-positive"}
    assert hh["Base Model - Mean Positive Score: 0.623"].documented == 0.623
    assert hh["RLHF Model - Mean Positive Score: 0.847"].documented == 0.847
    assert hh["Improvement: 0.224"].documented == pytest.approx(0.847 - 0.623)
    assert hh["Base Model: 0.600"].documented == 0.600 and hh["RLHF Model: 0.900"].documented == 0.900
    assert hh["Improvement: 0.300"].documented == pytest.approx(0.900 - 0.600)
    assert all(c.documented_n == 10 for c in hh.values() if c.documented is not None)
    negative = by_key["imdb-negative", "judge_negative_ratio", "threshold", "rlhf"]
    assert negative.threshold == 0.5 and negative.required
    shorter = by_key["instruct-short", "length_mean", "direction", "rlhf"]
    assert shorter.direction == "decrease" and shorter.required
    for experiment in ("imdb-negative", "instruct-short"):
        quality = [c for c in settings.claims if c.experiment == experiment and c.quote == "Preserved text quality"]
        assert {(c.metric, c.worse) for c in quality} == {("perplexity", "higher"), ("distinct_2", "lower")}
    assert all(c.definition.strip() for c in settings.claims)
    assert len({c.id for c in settings.claims}) == len(settings.claims)


def test_quotes_are_verbatim_in_the_seed_files():
    if not SEEDS_DIR.is_dir():
        pytest.skip(f"{SEEDS_DIR} is not here (the write-ups live in shared/, beside the repository)")
    for claim in claims_file.load_claims(CLAIMS_YAML).claims:
        text = (SEEDS_DIR / claim.seed_file).read_text(encoding="utf-8")
        assert claim.quote in text, f"{claim.id}: quote not found in {claim.seed_file}"


def test_documented_numbers_in_the_smoke_config_match_the_claims():
    """config.yaml's `documented` (shown in summary.csv) and claims.yaml must not drift apart."""
    settings = claims_file.load_claims(CLAIMS_YAML)
    claimed = {}
    for c in settings.claims:
        if c.test == "proportion_equivalence":
            claimed[c.experiment, c.metric] = c.documented
        elif c.test == "value_equivalence":
            claimed[c.experiment, f"{c.metric}_{c.policy}"] = c.documented
    for name, experiment in smoke_config()["experiments"].items():
        for key, value in experiment.get("documented", {}).items():
            assert claimed[name, key] == value, f"{name}.{key}"


def set_key(index: int, **values):
    return lambda raw: raw["claims"][index].update(values)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (set_key(0, colour="red"), "claims.0 (claim 'imdb-rm-accuracy-train'): unknown key 'colour'"),
        (lambda raw: raw["claims"][1].pop("margin"), "(claim 'imdb-rm-accuracy-test'): missing required field"),
        (set_key(2, metric="judge_happiness"), "claims.2.metric"),
        (set_key(3, id="imdb-rm-accuracy-train"), "duplicate id 'imdb-rm-accuracy-train'"),
        (set_key(2, test="proportion_equivalence", documented=0.5, margin=0.1), "proportion_equivalence tests"),
        (lambda raw: raw.update(alpha=0.7), "alpha"),
        (lambda raw: raw["rerun_margins"]["absolute"].update(lenght_mean=1.0), "lenght_mean"),
    ],
)  # fmt: skip
def test_broken_claims_files_give_one_line(mutate, message):
    raw = raw_claims()
    mutate(raw)
    with pytest.raises(ConfigError) as err:
        claims_file.parse_claims(raw, "claims.yaml")
    text = str(err.value)
    assert message in text and "\n" not in text and text.startswith("claims.yaml: ")


def test_claims_cli_bad_file_exits_2_with_one_line(tmp_path):
    results = write_fake_results(tmp_path, experiments=("instruct-short",), n_prompts=8, benchmarks=False)
    bad = tmp_path / "claims.yaml"
    bad.write_text("claims:\n  - id: x\n    test: direction\n")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run(
        [sys.executable, "-m", "rlhf_bench.analysis.claims", "--config", str(results / "config.json"), "--results-dir",
         str(results), "--claims", str(bad), "--out", str(tmp_path / "claims.csv")],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert str(bad) in proc.stderr and "missing required field" in proc.stderr
    assert not (tmp_path / "claims.csv").exists()


# ------------------------------------------------------------------------------- claims.csv


@pytest.fixture(scope="module")
def smoke_claims(tmp_path_factory):
    """A fake smoke run (comparable_to_documented: false), all three experiments, three seeds."""
    root = tmp_path_factory.mktemp("smoke")
    results = write_fake_results(root, benchmarks=False)
    assert run_claims(results, results / "claims.csv") == 0
    return results, pd.read_csv(results / "claims.csv")


@pytest.fixture(scope="module")
def comparable_claims(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper")
    results = write_fake_results(root, profile="paper", comparable=True, benchmarks=False)
    assert run_claims(results, results / "claims.csv") == 0
    return results, pd.read_csv(results / "claims.csv").set_index("claim_id")


def test_smoke_claims_csv_has_a_row_per_claim_all_not_comparable(smoke_claims):
    _, table = smoke_claims
    ids = [c.id for c in claims_file.load_claims(CLAIMS_YAML).claims]
    assert list(table.claim_id) == ids
    assert list(table.columns) == claims.COLUMNS
    assert set(table.verdict) == {"NOT COMPARABLE"}
    assert set(table.statistical_verdict) <= {"REPRODUCED", "NOT REPRODUCED", "INCONCLUSIVE"}
    for row in table.itertuples():
        assert row.reason.startswith("profile 'smoke' is not the documented setting")
        assert f"as measured: {row.statistical_verdict}" in row.reason and "\n" not in row.reason


def test_smoke_claims_say_why_each_cannot_be_decided(smoke_claims):
    _, table = smoke_claims
    table = table.set_index("claim_id")
    assert "not measured: " in table.loc["gradient-checkpointing-cost", "reason"]
    # Fake RLHF lengths are about half the base's in every seed: the direction test finds it.
    assert table.loc["instruct-shorter", "statistical_verdict"] == "REPRODUCED"
    # Three seeds of 24 prompts each: every seed's value is listed.
    assert len(table.loc["imdb-predominantly-negative", "seed_values"].split(";")) == 3


def test_claims_csv_is_byte_identical_on_a_second_run(smoke_claims, tmp_path):
    results, _ = smoke_claims
    assert run_claims(results, tmp_path / "again.csv") == 0
    assert (tmp_path / "again.csv").read_bytes() == (results / "claims.csv").read_bytes()


def seed_metric(results: Path, experiment: str, policy: str, metric: str) -> np.ndarray:
    """Read every seed's value straight from metrics.json, independently of the stage's loaders."""
    files = [results / experiment / "evaluate" / f"seed{s}" / "metrics.json" for s in (0, 1, 2)]
    return np.array([json.loads(f.read_text())["policies"][policy][metric] for f in files])


def test_comparable_run_numbers_match_independent_computations(comparable_claims):
    results, table = comparable_claims
    assert "NOT COMPARABLE" not in set(table.verdict)
    assert (table.verdict == table.statistical_verdict).all()

    # Reward-model accuracy: 190 of 200 train pairs against 0.977 +- 0.02.
    row = table.loc["imdb-rm-accuracy-train"]
    assert row.estimate == 0.95
    expected_tost = max(sps.binom.sf(189, 200, 0.957), sps.binom.cdf(190, 200, 0.997))
    assert row.p_support == pytest.approx(expected_tost, rel=1e-9)
    assert row.p_vs_documented == pytest.approx(sps.binomtest(190, 200, 0.977).pvalue)

    # Threshold: one-sample t of the RLHF judge-negative ratios against 0.5.
    ratios = seed_metric(results, "imdb-negative", "rlhf", "judge_negative_ratio")
    row = table.loc["imdb-predominantly-negative"]
    assert row.estimate == pytest.approx(ratios.mean())
    assert row.p_support == pytest.approx(sps.ttest_1samp(ratios, 0.5, alternative="greater").pvalue)

    # Direction, relative: one-sided Welch t over the seeds' log lengths, RLHF shorter than base, and refuted
    # when the ratio of geometric means is significantly above 0.9 (min_effect 10%).
    base = seed_metric(results, "instruct-short", "base", "length_mean")
    rlhf = seed_metric(results, "instruct-short", "rlhf", "length_mean")
    row = table.loc["instruct-shorter"]
    logs = np.log(rlhf), np.log(base)
    assert row.p_support == pytest.approx(sps.ttest_ind(*logs, equal_var=False, alternative="less").pvalue)
    refute = sps.ttest_ind(logs[0] - math.log(0.9), logs[1], equal_var=False, alternative="greater").pvalue
    assert row.p_refute == pytest.approx(refute)
    assert row.estimate == pytest.approx(math.exp(logs[0].mean() - logs[1].mean()))
    assert row.bound_high == 0.9

    assert row.verdict == "REPRODUCED" and -1 <= row.cliffs_delta < 0 and row.ks_p_max < 0.05

    # Non-inferiority, relative: per-seed log ratio of perplexities against log 1.25.
    ratio = seed_metric(results, "imdb-negative", "rlhf", "perplexity") / seed_metric(
        results, "imdb-negative", "base", "perplexity"
    )
    quality = table.loc["imdb-quality-perplexity"]
    assert quality.p_support == pytest.approx(sps.ttest_1samp(np.log(ratio), math.log(1.25), alternative="less").pvalue)
    assert quality.estimate == pytest.approx(sps.gmean(ratio)) and quality.bound_high == 1.25

    # Holm over the claims that were tested.
    from statsmodels.stats.multitest import multipletests

    tested = table.p_support.dropna()
    assert table.loc[tested.index, "p_support_holm"].to_numpy() == pytest.approx(
        multipletests(tested.to_numpy(), method="holm")[1]
    )
    assert table.loc["lora-fewer-parameters", "verdict"] == "INCONCLUSIVE"
    assert math.isnan(table.loc["lora-fewer-parameters", "p_support_holm"])


def test_documented_ten_sample_figures_carry_their_own_interval(comparable_claims):
    _, table = comparable_claims
    ratio = table.loc["hh-ratio-base"]
    assert (ratio.documented_ci_low, ratio.documented_ci_high) == pytest.approx(
        sps.binomtest(6, 10).proportion_ci(method="wilson")
    )
    rise = table.loc["hh-ratio-improvement"]
    assert rise.documented_ci_low < 0 < rise.documented_ci_high  # 6/10 -> 9/10 is compatible with no rise
    assert rise.documented_p == pytest.approx(sps.fisher_exact([[9, 1], [6, 4]], alternative="greater").pvalue)
    score = table.loc["hh-score-base"]
    assert score.documented_ci_low < 0.623 < score.documented_ci_high and "10 samples" in score.documented_note


def test_a_failed_claim_is_not_reproduced(tmp_path):
    """A reward model at 60% against the documented 97.7% is refuted, not merely inconclusive."""
    results = write_fake_results(tmp_path, comparable=True, benchmarks=False, n_prompts=8)
    path = results / "imdb-negative" / "reward" / "rm_metrics.json"
    rm = json.loads(path.read_text())
    rm["train"].update(n_correct=120, accuracy=0.6)
    path.write_text(json.dumps(rm))
    restamp(path)  # a reward model that scored this, as its stage recorded it
    assert run_claims(results, results / "claims.csv") == 0
    row = pd.read_csv(results / "claims.csv").set_index("claim_id").loc["imdb-rm-accuracy-train"]
    assert row.verdict == "NOT REPRODUCED" and row.p_refute_holm < 0.05
    assert row.reason.startswith("outside the band [0.957, 0.997]")


def test_a_bounded_metric_gets_a_bounded_interval_and_an_honest_mde(tmp_path):
    """hh-ratio-base with seeds at 0, 0 and 0.95: the t interval over seeds would run from below 0 to above 1,
    and the smallest effect three such seeds detect (about 1.6) lies past both bounds of a ratio."""
    results = write_fake_results(tmp_path, comparable=True, benchmarks=False, n_prompts=8)
    for seed, value in zip((0, 1, 2), (0.0, 0.0, 0.95), strict=True):
        path = results / "hh-positive" / "evaluate" / f"seed{seed}" / "metrics.json"
        metrics = json.loads(path.read_text())
        metrics["policies"]["base"]["judge_positive_ratio"] = value
        path.write_text(json.dumps(metrics))
        restamp(path)
    assert run_claims(results, results / "claims.csv") == 0
    row = pd.read_csv(results / "claims.csv").set_index("claim_id").loc["hh-ratio-base"]
    assert (row.ci_low, row.ci_high) == (0.0, 1.0) and row.ci_method == "t 95% over seeds, clipped to [0, 1]"
    assert math.isinf(row.mde) and row.verdict == "INCONCLUSIVE"
    assert "not detectable with this many seeds (3)" in row.reason


def test_an_inconclusive_claim_says_how_many_seeds_would_decide(comparable_claims):
    """imdb-predominantly-negative is INCONCLUSIVE with 3 seeds: n_to_decide is the n at which a one-sided t test
    of the observed mean against 0.5, at the level Holm gave it (alpha over its multiplier), has 80% power."""
    from statsmodels.stats.power import TTestPower

    results, table = comparable_claims
    row = table.loc["imdb-predominantly-negative"]
    assert row.verdict == "INCONCLUSIVE"
    ratios = seed_metric(results, "imdb-negative", "rlhf", "judge_negative_ratio")
    multiplier = int((table.p_support.dropna() >= row.p_support).sum())
    d = (ratios.mean() - 0.5) / ratios.std(ddof=1)
    n = TTestPower().solve_power(effect_size=d, alpha=0.05 / multiplier, power=0.8, alternative="larger")
    assert row.n_to_decide == math.ceil(n) and row.n_to_decide > 3
    assert f"with 3 seeds; about {row.n_to_decide:.0f} would decide at 80% power" in row.reason
    decided = table[table.verdict != "INCONCLUSIVE"]
    assert not decided.empty and decided.n_to_decide.isna().all()
    accuracy = table.loc["imdb-rm-accuracy-train"]  # 190 of 200 pairs: counted in pairs
    assert "with 200 pairs; about" in accuracy.reason and accuracy.n_to_decide > 200


def test_each_verdict_carries_its_stability_over_bootstrap_reruns(comparable_claims):
    """instruct-shorter (RLHF about half as long in every seed) is REPRODUCED in nearly every bootstrap rerun of
    its seeds; a claim that no test can decide (not measured) has no stability; every share is a share."""
    _, table = comparable_claims
    shorter = table.loc["instruct-shorter"]
    assert shorter.verdict == "REPRODUCED" and shorter.verdict_stability >= 0.8
    assert f"the same verdict in {shorter.verdict_stability:.2f} of 100 bootstrap reruns with 3 seeds" in shorter.reason
    assert math.isnan(table.loc["lora-fewer-parameters", "verdict_stability"])
    measured = table.verdict_stability.dropna()
    assert len(measured) == 16 and ((measured >= 0) & (measured <= 1)).all()
    assert "pairs redrawn" in table.loc["imdb-rm-accuracy-train", "reason"]


def test_resampled_run_draws_seeds_with_replacement_for_all_claims_at_once(comparable_claims):
    results, _ = comparable_claims
    run = claims.Run(json.loads((results / "config.json").read_text()), results)
    index = np.array([2, 2, 0])
    rerun = claims.ResampledRun(run, index, np.random.default_rng(0))
    for metric in ("length_mean", "perplexity"):
        original = run.seed_values("instruct-short", metric, "rlhf")
        assert rerun.seed_values("instruct-short", metric, "rlhf").tolist() == original[index].tolist()
    first = rerun.pair_counts("imdb-negative", "train")
    assert rerun.pair_counts("imdb-negative", "train") == first and first[1] == 200  # one draw per rerun


def test_one_seed_is_inconclusive(tmp_path):
    results = write_fake_results(tmp_path, seeds=(0,), comparable=True, benchmarks=False, n_prompts=8)
    assert run_claims(results, results / "claims.csv") == 0
    table = pd.read_csv(results / "claims.csv").set_index("claim_id")
    for claim_id in ("imdb-predominantly-negative", "instruct-shorter", "hh-score-improvement"):
        assert table.loc[claim_id, "verdict"] == "INCONCLUSIVE"
        assert table.loc[claim_id, "reason"].startswith("one seed: no interval over seeds")
    # Pairwise accuracy does not depend on PPO seeds: it is still tested.
    assert not math.isnan(table.loc["imdb-rm-accuracy-train", "p_support"])


def test_experiments_the_profile_does_not_run_are_listed_not_dropped(tmp_path):
    results = write_fake_results(tmp_path, experiments=("instruct-short",), benchmarks=False, n_prompts=8)
    assert run_claims(results, results / "claims.csv") == 0
    table = pd.read_csv(results / "claims.csv").set_index("claim_id")
    assert len(table) == len(claims_file.load_claims(CLAIMS_YAML).claims)
    assert "not run: profile 'smoke' has no experiment 'hh-positive'" in table.loc["hh-ratio-base", "reason"]
    # NOT RUN, not INCONCLUSIVE (nothing was measured) nor NOT COMPARABLE (nothing to compare): smoke is not comparable
    assert table.loc["hh-ratio-base", "verdict"] == table.loc["hh-ratio-base", "statistical_verdict"] == "NOT RUN"
    assert table.loc["instruct-shorter", "verdict"] == "NOT COMPARABLE"


def test_missing_input_exits_2_with_one_line(tmp_path, capsys):
    results = write_fake_results(tmp_path, experiments=("instruct-short",), benchmarks=False, n_prompts=8)
    missing = results / "instruct-short" / "evaluate" / "seed2" / "samples.parquet"
    missing.unlink()
    assert run_claims(results, results / "claims.csv") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(missing) in err and "'evaluate'" in err
    assert not (results / "claims.csv").exists()


def test_one_number_format_for_reasons_and_tables():
    """analysis.metrics.fmt is the one formatter: 3 significant digits, no exponent, 'n/a' where missing."""
    from rlhf_bench.analysis.metrics import fmt, fmt_p

    assert [fmt(v) for v in (251.2, 0.012345, -87.1, 999.6, 1234.5)] == ["251", "0.0123", "-87.1", "1,000", "1,234"]
    assert fmt(None) == fmt(float("nan")) == fmt_p(float("nan")) == "n/a"
    assert fmt_p(0.000123) == "0.00012"


def test_an_edited_metrics_file_is_not_published(tmp_path):
    """metrics.json changed after evaluate wrote it: claims stops naming the file and the rule to rerun."""
    results = write_fake_results(tmp_path, experiments=("instruct-short",), n_prompts=8, benchmarks=False)
    path = results / "instruct-short" / "evaluate" / "seed1" / "metrics.json"
    path.write_text(path.read_text().replace('"length_mean": ', '"length_mean": 1'))
    proc = subprocess.run(
        [sys.executable, "-m", "rlhf_bench.analysis.claims", "--config", str(results / "config.json"),
         "--results-dir", str(results), "--out", str(tmp_path / "claims.csv")],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert str(path) in proc.stderr and "rerun the rule 'evaluate'" in proc.stderr
    assert not (tmp_path / "claims.csv").exists()
