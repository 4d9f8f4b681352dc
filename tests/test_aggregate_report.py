"""The aggregate and report stages on a small synthetic results tree (tests/report_fixtures.py)."""

import base64
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from report_fixtures import TRICKY_RESPONSE, restamp, write_fake_results
from rlhf_bench.analysis import aggregate
from rlhf_bench.analysis.metrics import fmt
from rlhf_bench.report import render, sections

SRC = Path(__file__).resolve().parents[1] / "src"
HEADINGS = [
    "Abstract",
    "Setup",
    "Table 1: reward-model accuracy",
    "Table 2: PPO base vs RLHF",
    "Figures",
    "Sample generations",
    "Provenance",
]
DRIFT = "trl: expected 0.7.4, found 0.7.5"


def cli_args(results: Path, out: Path) -> list[str]:
    return ["--config", str(results / "config.json"), "--results-dir", str(results), "--out-dir", str(out)]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """Three experiments, three seeds: aggregate, then report, once for all tests of this module."""
    root = tmp_path_factory.mktemp("full")
    results = write_fake_results(root, version_drift=(DRIFT,))
    assert aggregate.main(cli_args(results, results)) == 0
    out = root / "reports" / "smoke"
    assert render.main(cli_args(results, out)) == 0
    return results, out


@pytest.fixture
def small_results(tmp_path):
    """One experiment without a judge, three seeds, few prompts: for tests that damage the tree."""
    return write_fake_results(tmp_path, experiments=("instruct-short",), n_prompts=8, benchmarks=False)


# ---------------------------------------------------------------------------------------------- aggregate


def test_aggregate_tables_have_expected_shape(full_run):
    results, _ = full_run
    summary = pd.read_csv(results / "summary.csv")
    assert list(summary.columns) == [
        "experiment",
        "metric",
        "policy",
        "n_seeds",
        "mean",
        "std",
        "ci_low",
        "ci_high",
        "ci_type",
        "documented",
    ]
    assert len(summary) == 3 * 10 * 2  # experiments x per-policy metrics x policies
    assert set(summary.ci_type) >= {"t 95% over seeds", "t 95% over seeds, clipped to [0, 1]"}
    ratios = summary[summary.metric.str.endswith("_ratio") & summary.ci_low.notna()]
    assert not ratios.empty and (ratios.ci_low >= 0).all() and (ratios.ci_high <= 1).all()
    no_judge = summary[(summary.experiment == "instruct-short") & summary.metric.str.startswith("judge_")]
    assert len(no_judge) == 6 and (no_judge.n_seeds == 0).all() and no_judge["mean"].isna().all()
    assert (summary[~summary.index.isin(no_judge.index)].n_seeds == 3).all()

    rm = pd.read_csv(results / "rm_summary.csv")
    assert list(rm.columns) == [
        "experiment",
        "split",
        "n_pairs",
        "n_correct",
        "accuracy",
        "wilson_low",
        "wilson_high",
        "documented",
        "scorer",
    ]
    assert len(rm) == 8  # 3 reward models and the first experiment's baseline, x 2 splits
    baseline = rm[rm.scorer == "TF-IDF + logistic regression"].set_index("split")
    assert list(baseline.experiment.unique()) == ["imdb-negative"]
    assert baseline.loc["test", "n_correct"] == 90 and baseline.loc["train", "accuracy"] == 0.995
    assert (rm.scorer == "reward model").sum() == 6

    tests = pd.read_csv(results / "tests.csv", dtype={"seed": str})
    assert list(tests.columns) == [
        "experiment",
        "metric",
        "test",
        "seed",
        "direction",
        "statistic",
        "p_value",
        "significant",
    ]
    assert len(tests) == 3 * 2 * (3 + 1)  # experiments x (objective, reward) x (3 seeds MWU + Welch)
    length = tests[(tests.experiment == "instruct-short") & (tests.metric == "length_mean")]
    assert set(length.direction) == {"decrease"} and set(length.seed) == {"0", "1", "2", "all"}
    assert (tests.significant == (tests.p_value < 0.05)).all()


def test_summary_means_equal_the_metrics_files(full_run):
    """Every mean in summary.csv is the plain mean of the seeds' metrics.json values, read independently."""
    results, _ = full_run
    summary = pd.read_csv(results / "summary.csv")
    documented = json.loads((results / "config.json").read_text())["experiments"]
    for row in summary.itertuples():
        values = []
        for seed in (0, 1, 2):
            metrics = json.loads((results / row.experiment / "evaluate" / f"seed{seed}" / "metrics.json").read_text())
            value = metrics["policies"][row.policy][row.metric]
            if value is not None:
                values.append(value)
        if values:
            assert row.mean == pytest.approx(sum(values) / len(values), rel=1e-12)
        doc = documented[row.experiment]["documented"].get(f"{row.metric}_{row.policy}")
        assert (math.isnan(row.documented) and doc is None) or row.documented == doc


def test_improvement_is_each_seed_pair_compared_in_the_objective_direction(full_run):
    """improvement.csv: the IQM of each policy and P(RLHF seed beats base seed) counted by hand from metrics.json,
    a decrease objective (instruct-short's length) counting a lower RLHF value as the win."""
    results, out = full_run
    improvement = pd.read_csv(results / "improvement.csv")
    assert list(improvement.columns) == aggregate.IMPROVEMENT_COLUMNS
    assert len(improvement) == 3 * 2  # experiments x (objective, reward)
    for row in improvement.itertuples():
        values = {}
        for policy in ("base", "rlhf"):
            values[policy] = [
                json.loads((results / row.experiment / "evaluate" / f"seed{seed}" / "metrics.json").read_text())[
                    "policies"][policy][row.metric] for seed in (0, 1, 2)
            ]  # fmt: skip
        better = (lambda a, b: a > b) if row.direction == "increase" else (lambda a, b: a < b)
        wins = sum(better(r, b) + 0.5 * (r == b) for r in values["rlhf"] for b in values["base"])
        assert row.probability_of_improvement == pytest.approx(wins / 9, abs=1e-12), row
        # rliable's IQM trims floor(n / 4) runs from each end: none of 3, so here the plain mean
        assert row.iqm_rlhf == pytest.approx(sum(values["rlhf"]) / 3, rel=1e-12)
        assert row.poi_ci_low <= row.probability_of_improvement <= row.poi_ci_high
    length = improvement.set_index(["experiment", "metric"]).loc[("instruct-short", "length_mean")]
    assert length.direction == "decrease"
    md = (out / "report.md").read_text()
    assert md.count("P(RLHF better)") >= 3 and "(Agarwal et al. 2021" in md


def test_judge_ratio_per_seed_test_is_fishers_exact_on_the_labels(full_run):
    """The per-seed test of a judge ratio is Fisher's exact test on the 0/1 label counts of the samples."""
    results, _ = full_run
    from scipy.stats import fisher_exact

    samples = pd.read_parquet(results / "hh-positive" / "evaluate" / "seed1" / "samples.parquet")
    positive = samples.judge_label.eq("positive")
    rlhf, base = positive[samples.policy == "rlhf"], positive[samples.policy == "base"]
    table = [[rlhf.sum(), (~rlhf).sum()], [base.sum(), (~base).sum()]]
    tests = pd.read_csv(results / "tests.csv", dtype={"seed": str})
    row = tests[
        (tests.experiment == "hh-positive") & (tests.metric == "judge_positive_ratio") & (tests.seed == "1")
    ].iloc[0]
    assert row.test == "fisher_exact"
    assert row.p_value == pytest.approx(fisher_exact(table, alternative="greater").pvalue)
    assert row.statistic == pytest.approx(rlhf.mean() - base.mean())


def test_aggregate_hand_checked_values(small_results, tmp_path):
    """RLHF reward_mean of 1, 2, 4 over three seeds: mean 7/3, sd sqrt(7/3), t(0.975, 2) = 4.3026527."""
    for seed, value in zip((0, 1, 2), (1.0, 2.0, 4.0), strict=True):
        path = small_results / "instruct-short" / "evaluate" / f"seed{seed}" / "metrics.json"
        metrics = json.loads(path.read_text())
        metrics["policies"]["rlhf"]["reward_mean"] = value
        path.write_text(json.dumps(metrics))
        restamp(path)  # as the evaluate stage would have recorded it
    out = tmp_path / "agg"
    assert aggregate.main(cli_args(small_results, out)) == 0
    summary = pd.read_csv(out / "summary.csv")
    row = summary[(summary.metric == "reward_mean") & (summary.policy == "rlhf")].iloc[0]
    assert row.n_seeds == 3
    assert row["mean"] == pytest.approx(7 / 3)
    assert row["std"] == pytest.approx(math.sqrt(7 / 3))
    assert (row.ci_low, row.ci_high) == pytest.approx((-1.4612497, 6.1279164), abs=1e-6)
    assert math.isnan(row.documented)

    rm = pd.read_csv(out / "rm_summary.csv")
    rm = rm[rm.scorer == "reward model"].set_index("split")
    # 190 of 200 train pairs: Wilson (0.9104219, 0.9726174) by the closed form.
    assert rm.loc["train", "accuracy"] == 0.95
    assert (rm.loc["train", "wilson_low"], rm.loc["train", "wilson_high"]) == pytest.approx(
        (0.9104218519, 0.9726173544), abs=1e-9
    )
    assert rm.loc["test", "documented"] == 0.999 and math.isnan(rm.loc["train", "documented"])


def test_aggregate_missing_file_exits_2_with_one_line(small_results, tmp_path, capsys):
    missing = small_results / "instruct-short" / "evaluate" / "seed1" / "metrics.json"
    missing.unlink()
    out = tmp_path / "agg"
    assert aggregate.main(cli_args(small_results, out)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert str(missing) in err and "'evaluate'" in err
    assert not out.exists()


def test_aggregate_refuses_an_infinite_metric_with_one_line(small_results, tmp_path, capsys):
    path = small_results / "instruct-short" / "evaluate" / "seed1" / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics["policies"]["rlhf"]["perplexity"] = math.inf  # json writes Infinity
    path.write_text(json.dumps(metrics))
    restamp(path)
    assert aggregate.main(cli_args(small_results, tmp_path / "agg")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "policies.rlhf.perplexity is inf, not a finite number" in err


def test_aggregate_cli_missing_rm_metrics(small_results, tmp_path):
    """Through `python -m`: exit 2, one line naming the file and the rule, no partial outputs."""
    missing = small_results / "instruct-short" / "reward" / "rm_metrics.json"
    missing.unlink()
    out = tmp_path / "agg"
    env = {**os.environ, "PYTHONPATH": str(SRC), "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, "-m", "rlhf_bench.analysis.aggregate", *cli_args(small_results, out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert str(missing) in proc.stderr and "'reward'" in proc.stderr
    assert not out.exists()


def test_aggregate_rejects_a_judge_objective_without_a_judge(small_results, tmp_path, capsys):
    config_path = small_results / "config.json"
    config = json.loads(config_path.read_text())
    config["experiments"]["instruct-short"]["objective"] = {
        "metric": "judge_negative_ratio",
        "direction": "increase",
    }
    config_path.write_text(json.dumps(config))
    assert aggregate.main(cli_args(small_results, tmp_path / "agg")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs a judge" in err


# ------------------------------------------------------------------------------------------------- report


def test_report_writes_markdown_html_and_figures(full_run):
    _, out = full_run
    md = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    figures = sorted((out / "figures").glob("*.png"))
    assert [f.name for f in figures] == [
        "judge_labels.png",
        "judge_scores.png",
        "length_hist.png",
        "ppo_curves.png",
        "reward_vs_judge.png",
        "reward_vs_kl.png",
        "seed_spread.png",
    ]
    for heading in HEADINGS:
        assert re.search(rf"<h2>{re.escape(heading)}</h2>", page), heading
        assert f"## {heading}" in md
    inlined = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert sorted(base64.b64decode(b) for b in inlined) == sorted(f.read_bytes() for f in figures)
    assert 'src="figures/' not in page
    for figure in figures:
        assert figure.stat().st_size > 5_000
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".staging-*"))


def test_report_setup_table_shows_the_pair_checks(full_run):
    _, report_dir = full_run
    md = (report_dir / "report.md").read_text()
    assert (
        "pair checks: 4 identical (4 dropped), 2 with a context that differs before the last reply, "
        "6 with an empty final reply; 296 pairs written"
    ) in md


def test_report_claims_show_stability_and_seeds_that_would_decide(tmp_path):
    from rlhf_bench.analysis import claims

    results = write_fake_results(tmp_path, profile="paper", comparable=True, benchmarks=False, n_prompts=8)
    assert aggregate.main(cli_args(results, results)) == 0
    args = ["--config", str(results / "config.json"), "--results-dir", str(results)]
    assert claims.main([*args, "--out", str(results / "claims.csv")]) == 0
    table = pd.read_csv(results / "claims.csv").set_index("claim_id")
    assert render.main(cli_args(results, tmp_path / "report")) == 0
    md = (tmp_path / "report" / "report.md").read_text()
    row = table.loc["imdb-predominantly-negative"]
    assert f"**{row.verdict}**, holds in {row.verdict_stability:.2f} of reruns with 3 seeds" in md
    undecided = table[(table.test != "proportion_equivalence") & table.n_to_decide.notna()]
    assert not undecided.empty
    assert f"about {undecided.iloc[0].n_to_decide:.0f} seeds would decide at 80% power" in md


def test_report_states_comparability_and_drift(full_run):
    _, out = full_run
    md = (out / "report.md").read_text()
    assert "smoke numbers are not comparable to the documented ones: tiny models, synthetic data" in md
    assert md.index("not comparable") < md.index("## Setup")
    assert f"**{DRIFT}**" in md
    assert "<strong>" + DRIFT + "</strong>" in (out / "report.html").read_text()


def test_report_numbers_come_from_the_inputs(full_run):
    """Table 1 shows 190/200 with its Wilson interval; the abstract quotes the objective's Welch p."""
    results, out = full_run
    md = (out / "report.md").read_text()
    assert "| `imdb-negative` | reward model | train | 200 | 190 | 0.95 [0.91, 0.973] | 0.977 | outside |" in md
    assert "| `imdb-negative` | baseline: TF-IDF + logistic regression | test | 100 | 90 |" in md
    assert "| `imdb-negative` | generation.temperature | 0.7 | 0.7 | 1.0 (not applied) | trl KL bias |" in md
    # Each seed's held-out KL, from its own metrics.json.
    kl = json.loads((results / "imdb-negative" / "evaluate" / "seed2" / "metrics.json").read_text())
    kl = kl["policies"]["rlhf"]["kl_mean"]
    seed_row = next(x for x in md.split("KL(RLHF ‖ base) per response")[1].splitlines() if x.startswith("| 2 |"))
    assert seed_row.split(" | ")[3] == fmt(kl)
    tests = pd.read_csv(results / "tests.csv", dtype={"seed": str})
    welch = tests[
        (tests.experiment == "instruct-short") & (tests.test == "welch_t") & (tests.metric == "length_mean")
    ].iloc[0]
    line = next(x for x in md.splitlines() if x.startswith("- `instruct-short`"))
    assert f"p = {welch.p_value:.2g}" in line and "moved significantly in the documented direction" in line


def test_report_escapes_generated_text(full_run):
    _, out = full_run
    page = (out / "report.html").read_text()
    assert "<script" not in page
    assert "&lt;script&gt;alert('x')&lt;/script&gt; *stars* _under_ [link](http://x) | pipe &amp; amp" in page
    assert TRICKY_RESPONSE.split()[0] not in (out / "report.md").read_text()


def test_report_without_judge_omits_judge_figures(small_results, tmp_path):
    assert aggregate.main(cli_args(small_results, small_results)) == 0
    out = tmp_path / "rep"
    assert render.main(cli_args(small_results, out)) == 0
    assert sorted(f.name for f in (out / "figures").iterdir()) == [
        "length_hist.png",
        "ppo_curves.png",
        "reward_vs_kl.png",
        "seed_spread.png",
    ]
    md = (out / "report.md").read_text()
    assert "No experiment in this profile has a judge" in md
    assert "No Snakemake benchmark files" in md
    assert (out / "report.html").read_text().count("data:image/png;base64,") == 4
    from PIL import Image

    from rlhf_bench.report.figures import DPI, MIN_WIDTH

    for figure in (out / "figures").iterdir():  # one experiment: still wide enough for its title
        assert Image.open(figure).size[0] >= 0.95 * MIN_WIDTH * DPI, figure.name


def test_report_missing_aggregate_output_exits_2(small_results, tmp_path, capsys):
    out = tmp_path / "rep"
    assert render.main(cli_args(small_results, out)) == 2  # aggregate never ran
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "summary.csv" in err and "'aggregate'" in err
    assert not out.exists()


def test_warning_only_when_not_comparable():
    assert sections.section_warning({"profile": "paper", "comparable_to_documented": True}) == []
    warning = sections.section_warning(
        {"profile": "imdb-cpu", "comparable_to_documented": False, "comparability_note": "small encoder, CPU"}
    )
    assert warning[0] == "**Warning:** imdb-cpu numbers are not comparable to the documented ones: small encoder, CPU."


def test_single_seed_reports_no_test_over_seeds(tmp_path):
    """One seed: no t interval and no Welch test, and the report says so instead of inventing numbers."""
    results = write_fake_results(tmp_path, experiments=("instruct-short",), seeds=(0,), n_prompts=8)
    assert aggregate.main(cli_args(results, results)) == 0
    summary = pd.read_csv(results / "summary.csv")
    assert summary[summary.n_seeds > 0].ci_low.isna().all()
    welch = pd.read_csv(results / "tests.csv").query("test == 'welch_t'")
    assert welch.p_value.isna().all() and not welch.significant.any()
    out = tmp_path / "rep"
    assert render.main(cli_args(results, out)) == 0
    assert "no test over seeds was possible" in (out / "report.md").read_text()


def test_pdf_cells_are_plain_text_and_a_verdict_colours_its_cell(tmp_path):
    from rlhf_bench.report.pdf import pdf_html

    verdict = '<span style="background:#c8e6c9;padding:0 0.3em">**REPRODUCED**</span>'
    md = f"| claim | verdict |\n|---|---|\n| `a` | {verdict} |\n"
    html = pdf_html(md, tmp_path)
    assert '<td align="left" bgcolor="#c8e6c9">REPRODUCED</td>' in html
    assert '<td align="left">a</td>' in html and "<span" not in html and "<code>" not in html
