"""Issue 12, the analysis side: every bad input to claims, aggregate, compare, check and the report gets one line
naming the file and the field (and the fix), exit 2, no traceback, and leaves nothing a rerun would trust.

Each case damages a copy of one fake finished run (tests/report_fixtures.py: no training), calls the CLI's main()
in-process, and checks the one error line and that its output path holds exactly what it held before. The
positive controls run the same CLIs on the undamaged inputs, so that no case can pass by accident."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from bad_input import error_line, nothing_trusted, snapshot
from conftest import ROOT
from report_fixtures import restamp, write_fake_results
from rlhf_bench.analysis import aggregate, check, claims, claims_file, compare
from rlhf_bench.config import ConfigError
from rlhf_bench.report import render

CLAIMS_YAML = ROOT / "config" / "claims.yaml"
CLIS = {"claims": claims.main, "aggregate": aggregate.main, "report": render.main, "check": check.main,
        "compare": compare.main}  # fmt: skip


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A fake finished smoke run (three experiments, three seeds) with its aggregate tables and claims.csv.
    Never damaged: each case works on a copy of it."""
    results = write_fake_results(tmp_path_factory.mktemp("finished"), benchmarks=False, n_prompts=8)
    assert aggregate.main(common(results) + ["--out-dir", str(results)]) == 0
    assert claims.main(common(results) + ["--out", str(results / "claims.csv")]) == 0
    return results


def common(results: Path) -> list[str]:
    return ["--config", str(results / "config.json"), "--results-dir", str(results)]


def call(cli: str, argv: list[str]) -> int:
    """main(argv) as the command line runs it: argparse's own errors exit 2 too."""
    try:
        return CLIS[cli](argv)
    except SystemExit as exc:
        return exc.code


# --------------------------------------------------------------------------------------------- the cases


class Case:
    """A copy of the finished run (`results`), a scratch folder (`tmp`) and the earlier bundle (`earlier`)."""

    def __init__(self, tmp: Path, finished: Path):
        self.tmp, self.earlier = tmp, finished
        self.results = tmp / "results" / "smoke"
        shutil.copytree(finished, self.results)

    def evaluate(self, name: str, seed: int = 1, experiment: str = "instruct-short") -> Path:
        return self.results / experiment / "evaluate" / f"seed{seed}" / name

    def claims_file(self, change: Callable[[dict], None] | None = None, text: str | bytes | None = None) -> Path:
        """config/claims.yaml, changed, written to tmp/claims.yaml."""
        path = self.tmp / "claims.yaml"
        if text is None:
            raw = yaml.safe_load(CLAIMS_YAML.read_text())
            if change is not None:
                change(raw)
            text = yaml.safe_dump(raw, sort_keys=False)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path

    def claims_run(self, claims_path: Path = CLAIMS_YAML) -> tuple[str, list[str], Path]:
        return claims_run(self, claims_path=claims_path)


def claim(index: int, **values) -> Callable[[dict], None]:
    return lambda raw: raw["claims"][index].update(values)


def edit_csv(path: Path, column: str, value, row: int = 0) -> None:
    table = pd.read_csv(path)
    table[column] = table[column].astype(object)
    table.loc[row, column] = value
    table.to_csv(path, index=False)


def claims_run(c: Case, out: Path | None = None, claims_path: Path = CLAIMS_YAML, **paths: Path):
    """The claims stage on the copy; by default over the earlier claims.csv, which a failed rerun must keep."""
    out = out or c.results / "claims.csv"
    return "claims", [*stage_args(c, **paths), "--claims", str(claims_path), "--out", str(out)], out


def stage_args(c: Case, config: Path | None = None, results_dir: Path | None = None) -> list[str]:
    return ["--config", str(config or c.results / "config.json"), "--results-dir", str(results_dir or c.results)]


def aggregate_run(c: Case, out: Path | None = None, **paths: Path):
    out = out or c.results
    return "aggregate", [*stage_args(c, **paths), "--out-dir", str(out)], out


def report_run(c: Case, out: Path | None = None, **paths: Path):
    out = out or c.tmp / "reports" / "smoke"
    return "report", [*stage_args(c, **paths), "--out-dir", str(out)], out


def compare_run(c: Case, *extra: str, out: Path | None = None):
    out = out or c.tmp / "compare"
    return "compare", [str(c.earlier), str(c.results), "--out-dir", str(out), *extra], out


def check_run(c: Case, *argv: str):
    return "check", list(argv), c.results / "claims.csv"


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def edited_metrics(c: Case) -> Path:
    path = c.evaluate("metrics.json")
    path.write_text(path.read_text().replace('"length_mean": ', '"length_mean": 1'))
    return path


def edited_train_log(c: Case) -> None:
    path = c.results / "instruct-short" / "ppo" / "seed2" / "train_log.csv"
    log = pd.read_csv(path)
    log.loc[0, "reward_mean"] += 1.0
    log.to_csv(path, index=False)


CASES = {
    # ---- the claims file (--claims), through the claims stage
    "claims-typo-experiment": (
        lambda c: c.claims_run(c.claims_file(claim(2, experiment="imdb-negatve"))),
        ("claims.yaml", "claims.2.experiment", "'imdb-negatve'", "did you mean 'imdb-negative'"),
    ),
    "claims-empty-file": (lambda c: c.claims_run(c.claims_file(text="")), ("claims.yaml", "(top level)", "empty")),
    "claims-yaml-list": (
        lambda c: c.claims_run(c.claims_file(text="- id: x\n  test: direction\n")),
        ("claims.yaml", "(top level)", "a list"),
    ),
    "claims-unknown-test-kind": (
        lambda c: c.claims_run(c.claims_file(claim(2, test="equivalence"))),
        ("claims.yaml", "claims.2.test", "'equivalence'"),
    ),
    "claims-missing-required-field": (
        lambda c: c.claims_run(c.claims_file(lambda raw: raw["claims"][0].pop("definition"))),
        ("claims.yaml", "claims.0", "missing required field 'definition'"),
    ),
    "claims-non-numeric-margin": (
        lambda c: c.claims_run(c.claims_file(claim(0, margin="two points"))),
        ("claims.yaml", "claims.0.margin", "not of type 'number'"),
    ),
    "claims-unknown-metric": (
        lambda c: c.claims_run(c.claims_file(claim(2, metric="judge_happiness"))),
        ("claims.yaml", "claims.2.metric", "'judge_happiness'"),
    ),
    "claims-unknown-policy": (
        lambda c: c.claims_run(c.claims_file(claim(2, policy="sft"))),
        ("claims.yaml", "claims.2.policy", "'sft'"),
    ),
    "claims-duplicate-id": (
        lambda c: c.claims_run(c.claims_file(claim(3, id="imdb-rm-accuracy-train"))),
        ("claims.yaml", "claims.3.id", "duplicate id 'imdb-rm-accuracy-train'"),
    ),
    "claims-not-utf8": (
        lambda c: c.claims_run(c.claims_file(text=CLAIMS_YAML.read_bytes().replace(b"97.7%", b"97.7\xff", 1))),
        ("claims.yaml", "is not UTF-8"),
    ),
    "claims-bad-yaml": (
        lambda c: c.claims_run(c.claims_file(text="claims: [\n  {id: x\n")),
        ("claims.yaml", "not valid YAML"),
    ),
    "claims-path-missing": (lambda c: c.claims_run(c.tmp / "nowhere.yaml"), ("nowhere.yaml", "--claims")),
    "claims-path-is-directory": (
        lambda c: c.claims_run((c.tmp / "claims.d").resolve()),
        ("claims.d", "--claims", "a directory"),
    ),
    "compare-claims-typo-experiment": (
        lambda c: compare_run(c, "--claims", str(c.claims_file(claim(2, experiment="imdb-negatve")))),
        ("claims.yaml", "claims.2.experiment", "did you mean 'imdb-negative'"),
    ),
    "compare-claims-path-missing": (
        lambda c: compare_run(c, "--claims", str(c.tmp / "nowhere.yaml")),
        ("nowhere.yaml", "--claims"),
    ),
    # ---- the stages' arguments
    "claims-config-missing": (
        lambda c: claims_run(c, config=c.tmp / "nowhere.json"),
        ("nowhere.json", "cannot read the config"),
    ),
    "claims-config-argument-absent": (
        lambda c: ("claims", ["--results-dir", str(c.results), "--out", str(c.tmp / "out.csv")], c.tmp / "out.csv"),
        ("--config", "required"),
    ),
    "claims-results-dir-missing": (
        lambda c: claims_run(c, results_dir=c.tmp / "nowhere"),
        ("nowhere", "--results-dir", "no such directory"),
    ),
    "claims-results-dir-is-a-file": (
        lambda c: claims_run(c, results_dir=c.results / "config.json"),
        ("config.json", "--results-dir", "a file"),
    ),
    "claims-out-is-a-directory": (
        lambda c: claims_run(c, out=c.results / "instruct-short"),
        ("instruct-short", "--out", "an existing directory"),
    ),
    "claims-out-under-a-file": (
        lambda c: claims_run(c, out=c.results / "config.json" / "claims.csv"),
        ("config.json", "--out"),
    ),
    "aggregate-results-dir-missing": (
        lambda c: aggregate_run(c, c.tmp / "agg", results_dir=c.tmp / "nowhere"),
        ("nowhere", "--results-dir"),
    ),
    "aggregate-out-dir-is-a-file": (
        lambda c: aggregate_run(c, c.results / "claims.csv"),
        ("claims.csv", "--out-dir", "an existing file"),
    ),
    "report-results-dir-is-a-file": (
        lambda c: report_run(c, results_dir=c.results / "summary.csv"),
        ("summary.csv", "--results-dir"),
    ),
    "report-out-dir-is-a-file": (
        lambda c: report_run(c, c.results / "summary.csv"),
        ("summary.csv", "--out-dir", "an existing file"),
    ),
    "check-claims-csv-is-a-directory": (lambda c: check_run(c, str(c.results)), ("smoke", "claims_csv")),
    "check-results-dir-is-a-file": (
        lambda c: check_run(c, "--results-dir", str(c.results / "claims.csv")),
        ("claims.csv", "--results-dir"),
    ),
    "compare-bundle-missing": (
        lambda c: ("compare", [str(c.earlier), str(c.tmp / "nowhere")], c.tmp / "compare"),
        ("nowhere", "bundle_b"),
    ),
    "compare-out-dir-is-a-file": (
        lambda c: compare_run(c, out=c.results / "summary.csv"),
        ("summary.csv", "--out-dir"),
    ),
    # ---- outputs of earlier stages, changed after they were written
    "claims-edited-metrics-json": (
        lambda c: (edited_metrics(c), claims_run(c))[1],
        ("seed1/metrics.json", "rerun the rule 'evaluate'"),
    ),
    "claims-truncated-samples-parquet": (
        lambda c: (truncate(c.evaluate("samples.parquet", seed=2)), claims_run(c))[1],
        ("seed2/samples.parquet", "rerun the rule 'evaluate'"),
    ),
    "claims-deleted-rm-metrics-json": (
        lambda c: ((c.results / "imdb-negative" / "reward" / "rm_metrics.json").unlink(), claims_run(c))[1],
        ("imdb-negative/reward/rm_metrics.json", "missing", "'reward'"),
    ),
    "aggregate-truncated-samples-parquet": (
        lambda c: (truncate(c.evaluate("samples.parquet", seed=0)), aggregate_run(c))[1],
        ("seed0/samples.parquet", "rerun the rule 'evaluate'"),
    ),
    "report-edited-train-log-csv": (
        lambda c: (edited_train_log(c), report_run(c))[1],
        ("seed2/train_log.csv", "rerun the rule 'ppo'"),
    ),
    "report-edited-summary-csv": (
        lambda c: (edit_csv(c.results / "summary.csv", "mean", 0.123), report_run(c))[1],
        ("summary.csv", "sha256", "aggregate.provenance.json", "rerun the rule 'aggregate'"),
    ),
    "report-text-in-tests-csv": (
        lambda c: (edit_csv(c.results / "tests.csv", "p_value", "small"), report_run(c))[1],
        ("tests.csv", "sha256", "rerun the rule 'aggregate'"),
    ),
    "report-deleted-aggregate-record": (
        lambda c: ((c.results / "aggregate.provenance.json").unlink(), report_run(c))[1],
        ("aggregate.provenance.json", "missing", "'aggregate'"),
    ),
    "report-claims-csv-unknown-verdict": (
        lambda c: (edit_csv(c.results / "claims.csv", "verdict", "PASSED"), report_run(c))[1],
        ("claims.csv", "sha256", "claims.provenance.json", "rerun the rule 'claims'"),
    ),
    "report-claims-csv-text-estimate": (
        lambda c: (edit_csv(c.results / "claims.csv", "estimate", "about 0.9", row=2), report_run(c))[1],
        ("claims.csv", "sha256", "rerun the rule 'claims'"),
    ),
    "check-claims-csv-empty-verdict": (
        lambda c: (edit_csv(c.results / "claims.csv", "verdict", ""), check_run(c, "--results-dir", str(c.results)))[1],
        ("claims.csv", "sha256", "rerun the rule 'claims'"),
    ),
    "compare-edited-metrics-json-in-rerun": (
        lambda c: (edited_metrics(c), compare_run(c))[1],
        ("seed1/metrics.json", "rerun the rule 'evaluate'"),
    ),
    "compare-duplicate-claim-in-claims-csv": (
        lambda c: (edit_csv(c.results / "claims.csv", "claim_id", "imdb-rm-accuracy-test"), compare_run(c))[1],
        ("claims.csv", "sha256", "rerun the rule 'claims'"),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_exit_2_nothing_written(name, finished, tmp_path, capsys):
    c = Case(tmp_path, finished)
    (tmp_path / "claims.d").mkdir()
    build, names = CASES[name]
    cli, argv, out = build(c)
    before = snapshot(out)
    capsys.readouterr()

    assert call(cli, argv) == 2

    line = error_line(capsys.readouterr().err, *names)
    assert line.startswith(("rlhf_bench.", "python -m rlhf_bench.")), line
    nothing_trusted(out, before)


# ------------------------------------------------------------------------------------- positive controls


@pytest.mark.parametrize(
    "cli",
    ["claims-round-tripped-file", "aggregate", "check", "compare", "report"],
)
def test_the_good_inputs_pass(cli, finished, tmp_path, capsys):
    """The same calls on the undamaged run (and config/claims.yaml as the cases rewrite it) exit 0 and write."""
    c = Case(tmp_path, finished)
    runs = {
        "claims-round-tripped-file": lambda: c.claims_run(c.claims_file()),
        "aggregate": lambda: aggregate_run(c, c.tmp / "agg"),
        "check": lambda: check_run(c, "--results-dir", str(c.results)),
        "compare": lambda: compare_run(c),
        "report": lambda: report_run(c),
    }
    name, argv, out = runs[cli]()
    assert call(name, argv) == 0, capsys.readouterr().err
    assert "error" not in capsys.readouterr().err
    if name != "check":
        assert snapshot(out)
    if name == "claims":  # byte for byte what the same claims gave before
        assert out.read_bytes() == (finished / "claims.csv").read_bytes()


def test_a_claim_may_name_an_experiment_of_the_runs_own_config(tmp_path, capsys):
    """Not in any profile of config/, but in the run's config: accepted by the claims stage, refused without it."""
    results = write_fake_results(tmp_path, experiments=("my-experiment",), benchmarks=False, n_prompts=8, seeds=(0, 1))
    raw = yaml.safe_load(CLAIMS_YAML.read_text())
    raw["claims"].append({
        "id": "mine-higher-reward", "seed_file": "none", "quote": "reward goes up", "experiment": "my-experiment",
        "metric": "reward_mean", "test": "direction", "direction": "increase", "min_effect": 0.0,
        "definition": "RLHF raises the mean reward.", "required": False,
    })  # fmt: skip
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    out = tmp_path / "claims.csv"
    assert claims.main([*common(results), "--claims", str(path), "--out", str(out)]) == 0
    row = pd.read_csv(out).set_index("claim_id").loc["mine-higher-reward"]
    assert row.experiment == "my-experiment" and not row.reason.startswith("not run")
    with pytest.raises(ConfigError, match=r"claims\.\d+\.experiment \(claim 'mine-higher-reward'\)"):
        claims_file.load_claims(path)


# ------------------------------------------------------------------- a policy whose responses are all empty


@pytest.fixture(scope="module")
def empty_rlhf(tmp_path_factory) -> Path:
    """A comparable run whose RLHF policy answered "" to every prompt: distinct_2 is null in seeds 0 and 1 and
    NaN in seed 2 (what evaluate writes), the samples say so, and provenance records the files as they are."""
    results = write_fake_results(
        tmp_path_factory.mktemp("empty"), experiments=("instruct-short",), comparable=True, benchmarks=False,
        n_prompts=8, profile="paper",
    )  # fmt: skip
    for seed in (0, 1, 2):
        folder = results / "instruct-short" / "evaluate" / f"seed{seed}"
        samples = pd.read_parquet(folder / "samples.parquet")
        samples.loc[samples.policy == "rlhf", "response"] = ""
        samples.to_parquet(folder / "samples.parquet", index=False)
        metrics = json.loads((folder / "metrics.json").read_text())
        metrics["policies"]["rlhf"]["distinct_2"] = math.nan if seed == 2 else None
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
        restamp(folder / "metrics.json")
    return results


def test_empty_responses_make_claims_inconclusive_not_a_crash(empty_rlhf, tmp_path, capsys):
    out = tmp_path / "claims.csv"
    assert claims.main([*common(empty_rlhf), "--out", str(out)]) == 0, capsys.readouterr().err
    row = pd.read_csv(out).set_index("claim_id").loc["instruct-quality-distinct2"]
    assert row.verdict == "INCONCLUSIVE"
    assert row.reason.startswith("not measured: rlhf distinct_2 is missing for seed 0, 1, 2"), row.reason
    assert math.isnan(row.p_support) and math.isnan(row.estimate)
    table = check.read_claims(out)
    assert "instruct-quality-distinct2" not in set(check.failures(table, strict=False).claim_id)
    assert "instruct-quality-distinct2" in set(check.failures(table, strict=True).claim_id)  # a strict gate fails


def test_empty_responses_flow_through_aggregate_and_report(empty_rlhf, tmp_path, capsys):
    results = tmp_path / "results" / "paper"
    shutil.copytree(empty_rlhf, results)
    assert aggregate.main([*common(results), "--out-dir", str(results)]) == 0, capsys.readouterr().err
    summary = pd.read_csv(results / "summary.csv").set_index(["metric", "policy"])
    assert summary.loc[("distinct_2", "rlhf"), "n_seeds"] == 0 and summary.loc[("distinct_2", "base"), "n_seeds"] == 3
    assert claims.main([*common(results), "--out", str(results / "claims.csv")]) == 0
    out = tmp_path / "reports"
    assert render.main([*common(results), "--out-dir", str(out)]) == 0, capsys.readouterr().err
    md = (out / "report.md").read_text()
    assert "rlhf distinct\\_2 is missing for seed 0, 1, 2" in md  # markdown-escaped
    row = next(line for line in md.splitlines() if line.startswith("| `distinct_2` |"))
    assert "not measured" in row
