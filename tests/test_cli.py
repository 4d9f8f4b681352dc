"""The `rlhf-bench` entry point: each command as the README shows it (dry where a run costs minutes), bad arguments
in one line, and the prompts file and single-file preference data it makes easy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT, snakemake_env, tiny_config
from report_fixtures import write_fake_results
from rlhf_bench import cli
from rlhf_bench.analysis import aggregate, claims
from rlhf_bench.io import StageError
from rlhf_bench.train.sources import read_prompts


def rlhf_bench(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """The console script as a user runs it (python -m, so that the test needs no reinstalled entry point)."""
    return subprocess.run([sys.executable, "-m", "rlhf_bench.cli", *args], cwd=cwd, env=snakemake_env(),
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def test_the_console_script_is_declared_in_pyproject():
    assert 'rlhf-bench = "rlhf_bench.cli:main"' in (ROOT / "pyproject.toml").read_text()


def test_run_dry_with_seeds_and_steps_sets_them_inside_every_experiment():
    proc = rlhf_bench("run", "--profile", "smoke", "--seeds", "0", "--steps", "4", "-n")
    assert proc.returncode == 0, proc.stderr[-2000:]
    stats = proc.stdout[proc.stdout.index("Job stats") :]
    counts = dict(line.split()[:2] for line in stats.splitlines()[3:] if len(line.split()) == 2)
    assert counts["ppo"] == "3" and counts["evaluate"] == "3"  # one seed for each of the three experiments
    assert "'experiments={hh-positive: {ppo: {steps: 4}}" in proc.stderr  # the --config it passed


def test_overrides_reach_the_config_snakemake_validates(tmp_path):
    args = cli.parser().parse_args(["run", "--seeds", "1,2", "--steps", "6", "--batch-size", "16"])
    values = cli.overrides(cli.config_file("smoke"), args)
    assert values[0] == "seeds=[1, 2]"
    experiments = yaml.safe_load(values[1].split("=", 1)[1])
    assert set(experiments) == {"imdb-negative", "instruct-short", "hh-positive"}
    assert experiments["imdb-negative"] == {"ppo": {"steps": 6, "batch_size": 16}}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["run", "--steps", "x"], "argument --steps: 'x' is not a whole number"),
        (["run", "--steps", "0"], "argument --steps: 0 is below 1"),
        (["run", "--seeds", "0,0"], "'0,0': each seed once"),
        (["run", "--seeds", "a,b"], "'a' is not an integer"),
        (["run", "--seeds", "0,-1"], "-1 is negative; seeds are integers >= 0"),
        (["run", "--profile", "nope"], "--profile nope: neither a profile (smoke, imdb-cpu, paper) nor a config file"),
        (["evaluate", "--prompts", "missing.txt"], "--prompts missing.txt: no such file"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_arguments_get_one_line(args, says):
    proc = rlhf_bench(*args)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and says in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_every_command_says_what_it_does():
    for command in ("run", "evaluate", "report", "check", "compare", "bundle"):
        proc = rlhf_bench(command, "--help")
        assert proc.returncode == 0 and proc.stdout.startswith(f"usage: rlhf-bench {command}")
    assert "--prompts" in rlhf_bench("evaluate", "--help").stdout


def test_evaluate_dry_asks_for_the_prompts_rule_of_every_experiment(tmp_path):
    prompts = tmp_path / "mine.txt"
    prompts.write_text("The film was\n")
    proc = rlhf_bench("evaluate", "--profile", "smoke", "--prompts", str(prompts), "-n")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("rule prompts:") == 3 and str(prompts) in proc.stdout


def test_report_check_and_compare_on_a_finished_run(tmp_path):
    results = write_fake_results(tmp_path, benchmarks=False, n_prompts=8)
    assert aggregate.main(["--config", str(results / "config.json"), "--results-dir", str(results),
                           "--out-dir", str(results)]) == 0  # fmt: skip
    assert claims.main(["--config", str(results / "config.json"), "--results-dir", str(results),
                        "--out", str(results / "claims.csv")]) == 0  # fmt: skip
    config = tmp_path / "fake.yaml"
    config.write_text(yaml.safe_dump(json.loads((results / "config.json").read_text())))
    out = tmp_path / "report"
    proc = rlhf_bench("report", "--profile", str(config), "--results-dir", str(results), "--out-dir", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "report.html").is_file() and (out / "report.pdf").is_file()
    proc = rlhf_bench("check", str(results / "claims.csv"))
    assert proc.returncode == 0 and "passed" in proc.stdout
    assert rlhf_bench("check", str(results / "claims.csv"), "--strict").returncode == 1
    copy = tmp_path / "copy"
    shutil.copytree(results, copy)
    proc = rlhf_bench("compare", str(results), str(copy), "--fail-on-difference")
    assert proc.returncode == 0 and "DIFFERENT" not in proc.stdout


def test_a_bundle_holds_the_numbers_and_records_and_compares_as_the_run(tmp_path, monkeypatch, capsys):
    """`bundle` keeps what compare reads (no weights, samples or data); `compare --reference` reads
    reference/<profile> against results/<profile> and writes its tables under results/<profile>/compare."""
    results = write_fake_results(tmp_path, benchmarks=False, n_prompts=8)
    assert aggregate.main(["--config", str(results / "config.json"), "--results-dir", str(results),
                           "--out-dir", str(results)]) == 0  # fmt: skip
    (results / "imdb-negative" / "ppo" / "seed0.checkpoint").mkdir(parents=True)
    (results / "imdb-negative" / "ppo" / "seed0.checkpoint" / "trainer_state.json").write_text("{}")
    config = tmp_path / "fake.yaml"
    config.write_text(yaml.safe_dump({**json.loads((results / "config.json").read_text()),
                                      "results_dir": str(results.parent)}))  # fmt: skip
    reference = tmp_path / "reference"
    monkeypatch.setattr("rlhf_bench.analysis.compare.REFERENCE_DIR", reference)
    assert cli.main(["compare", "--reference", "--profile", str(config)]) == 0
    assert "no reference bundle for profile 'smoke'" in capsys.readouterr().out

    assert cli.main(["bundle", "--profile", str(config)]) == 0
    bundle = reference / "smoke"
    files = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    assert {
        "config.json",
        "summary.csv",
        "improvement.csv",
        "imdb-negative/reward/rm_metrics.json",
        "imdb-negative/evaluate/seed2/metrics.json",
        "imdb-negative/evaluate/seed2/provenance.json",
    } <= files
    assert not [f for f in files if f.endswith((".parquet", ".safetensors", ".jsonl")) or ".checkpoint" in f]
    assert cli.main(["compare", "--reference", "--profile", str(config), "--fail-on-difference"]) == 0
    metrics = pd.read_csv(results / "compare" / "reference" / "metrics.csv")
    assert len(metrics) > 0 and set(metrics.status) == {"IDENTICAL"}
    assert cli.main(["compare", "--reference", str(results)]) == 2  # --reference takes no bundles
    assert "give no EARLIER or RERUN" in capsys.readouterr().err


def test_prompts_file_as_text_or_jsonl(tmp_path):
    text = tmp_path / "p.txt"
    text.write_text("\ufeffFirst prompt\n\n  Second prompt  \n")
    assert read_prompts(text) == ["First prompt", "Second prompt"]
    lines = tmp_path / "p.jsonl"
    lines.write_text('{"prompt": "A"}\n{"prompt": "B"}\n')
    assert read_prompts(lines) == ["A", "B"]
    (tmp_path / "empty.txt").write_text("\n \n")
    with pytest.raises(StageError, match="no prompt in it"):
        read_prompts(tmp_path / "empty.txt")
    (tmp_path / "bad.jsonl").write_text('{"text": "A"}\n')
    with pytest.raises(StageError, match="no field 'prompt'"):
        read_prompts(tmp_path / "bad.jsonl")


@pytest.mark.dag
def test_a_single_preference_file_runs_through_the_dag_with_the_interpreter_of_snakemake(tmp_path):
    """data.source as one .jsonl of prompt/chosen/rejected (seeds/002's load_custom_data), split by test_fraction;
    Snakemake started by its path in the venv, without the venv on PATH: every job still finds rlhf_bench."""
    from rlhf_bench.train import synthetic

    pairs = tmp_path / "my_pairs.jsonl"
    records = synthetic.make_instructions(300, seed=5)
    pairs.write_text("".join(json.dumps(r) + "\n" for r in records))
    raw = tiny_config(seeds=(0,))
    raw["experiments"] = {"instruct-short": raw["experiments"]["instruct-short"]}
    exp = raw["experiments"]["instruct-short"]
    exp["data"].update(source=str(pairs), test_fraction=0.2, n_pairs_train=64, n_pairs_test=32)
    exp.pop("frontier")
    raw["evaluation"] = {"prompts_file": ""}
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(raw))
    env = {**snakemake_env(), "PATH": "/usr/bin:/bin"}  # no venv: only Snakemake's own path says where python is
    target = "results/smoke/instruct-short/evaluate/seed0/metrics.json"
    snakemake = str(Path(sys.executable).parent / "snakemake")
    proc = subprocess.run([snakemake, target, "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
                           "--cores", "2", "--configfile", str(tmp_path / "mine.yaml")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = tmp_path / "results/smoke/instruct-short/data"
    test_pairs = [json.loads(line) for line in (data / "pairs_test.jsonl").read_text().splitlines()]
    assert len(test_pairs) == 32  # drawn from the held-out fifth (60 of the file's 300 records)
    answers = {r["chosen"].strip() for r in records}
    assert all(any(p["chosen"].endswith(a) for a in answers) for p in test_pairs)
    assert (tmp_path / target).is_file() and os.path.getsize(tmp_path / target) > 0


@pytest.mark.parametrize("profile", sorted(p.name for p in (ROOT / "reference").iterdir() if p.is_dir()))
def test_the_shipped_reference_bundles_read_as_bundles(profile):
    """reference/<profile> is ours to compare a rerun with: a readable bundle of that profile, every seed's metrics
    verified against its record, and nothing but numbers and records in it."""
    from rlhf_bench.analysis.compare import REFERENCE_DIR, Bundle

    bundle = Bundle(REFERENCE_DIR / profile)
    assert bundle.config["profile"] == profile
    assert set(bundle.metrics.seed) == set(bundle.config["seeds"]) and len(bundle.metrics) > 0
    for experiment in bundle.experiments:
        assert bundle.pair_counts(experiment, "test")[1] > 0
    files = [p for p in (REFERENCE_DIR / profile).rglob("*") if p.is_file()]
    assert all(p.suffix in (".json", ".csv") for p in files), [p for p in files if p.suffix not in (".json", ".csv")]
