"""The smoke DAG end to end with Snakemake, in a temporary directory, at reduced steps."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, snakemake, snakemake_command, snakemake_env
from rlhf_bench.analysis.metrics import fmt

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
}


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
            samples = pd.read_parquet(exp / "evaluate" / f"seed{seed}" / "samples.parquet")
            assert set(samples.columns) == SAMPLE_COLUMNS and len(samples) == 2 * 8
            metrics = json.loads((exp / "evaluate" / f"seed{seed}" / "metrics.json").read_text())
            assert set(metrics["policies"]) == {"base", "rlhf"}
            prov = json.loads((exp / "evaluate" / f"seed{seed}" / "provenance.json").read_text())
            assert prov["versions"]["trl"] == "0.7.4" and prov["data_checksums"] == checksums
    summary = pd.read_csv(results / "summary.csv")
    assert {"experiment", "metric", "policy", "mean", "ci_low", "ci_high"} <= set(summary.columns)
    assert set(summary.experiment) == {"imdb-negative", "instruct-short", "hh-positive"}
    assert (results / "benchmarks" / "imdb-negative.ppo.seed0.tsv").exists()
    claims = pd.read_csv(results / "claims.csv")
    assert len(claims) == 18 and set(claims.verdict) == {"NOT COMPARABLE"}  # smoke is not the documented setup
    assert claims.reason.str.len().gt(0).all()


def test_report_is_written(finished_run):
    reports = finished_run / "reports" / "smoke"
    md = (reports / "report.md").read_text()
    html = (reports / "report.html").read_text()
    assert "not comparable" in md.lower()
    assert "0 of 18 documented claims reproduced" in md
    assert "## Claims in full (appendix)" in md and "(required)" in md
    # The appendix quotes the committed calibration at the nearest simulated seed count (3 for this run's 2).
    rates = pd.read_csv(ROOT / "benchmarks" / "out" / "verdict_calibration.csv").query("n_seeds == 3")
    errors = md[md.index("### Error rates of the verdict rules") :]
    for row in rates.itertuples():
        assert f"| `{row.test}` |" in errors and fmt(row.false_reproduced_at_edge_worst) in errors, row.test
    # The verdict card comes first, before the abstract: one coloured row per claim.
    card = md[: md.index("## Abstract")]
    assert card.count('<span style="background:') == 18 and "**Verdicts:**" in card
    assert all(row.count("would decide") <= 1 for row in card.splitlines())  # said once per claim
    assert "data:image/png;base64," in html
    # Your own prompts (evaluation.prompts_file: config/prompts.txt), answered by every policy of every seed.
    prompts = [line for line in (ROOT / "config" / "prompts.txt").read_text().splitlines() if line.strip()]
    yours = md[md.index("## Your prompts") :]
    assert f"the {len(prompts)} prompts of" in yours and yours.count("**Prompt ") == 3 * len(prompts)
    answers = pd.read_parquet(finished_run / "results" / "smoke" / "imdb-negative" / "prompts" / "samples.parquet")
    assert len(answers) == 2 * 2 * len(prompts) and set(answers.seed) == {0, 1}
    for experiment in ("imdb-negative", "instruct-short", "hh-positive"):
        assert experiment in md


def test_frontier_has_every_arm_of_every_experiment_in_its_table_and_the_report(finished_run):
    results = finished_run / "results" / "smoke"
    points = pd.read_csv(results / "frontier.csv")
    arms = points.groupby("experiment")["arm"].agg(lambda a: sorted(set(a))).to_dict()
    every_arm = ["base", "best_of_n", "dpo", "ppo"]
    assert arms == dict.fromkeys(("hh-positive", "imdb-negative", "instruct-short"), every_arm)
    # Per experiment and seed: base, PPO halfway (step 1 of 2) and final, best-of-1 and -2, DPO at one beta.
    assert (points.groupby(["experiment", "seed"]).size() == 6).all()
    assert (points[points.arm == "base"]["kl"] == 0).all()
    best_of = points[points.arm == "best_of_n"]
    assert (best_of["kl_method"] == "analytic").all() and best_of["kl_monte_carlo"].notna().all()
    matched = pd.read_csv(results / "frontier_matched.csv")
    assert set(matched.arm) == {"ppo", "best_of_n", "dpo"} and (matched.matched_kl >= 0).all()
    assert (results / "imdb-negative" / "dpo_pairs" / "pairs.jsonl").stat().st_size > 0
    md = (finished_run / "reports" / "smoke" / "report.md").read_text()
    frontier = md[md.index("## Frontier") : md.index("## Sample generations")]
    assert "figures/frontier.png" in frontier and "figures/frontier_proxy_gold.png" in frontier
    for experiment in ("imdb-negative", "instruct-short", "hh-positive"):
        assert f"### `{experiment}`" in frontier
    assert frontier.count("| best-of-n |") == 3 * 2 and frontier.count("| DPO |") == 3


def test_second_run_has_nothing_to_do(finished_run):
    result = snakemake(finished_run, "-n", "--configfile", str(finished_run / "tiny.yaml"))
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
REPORT_SECTIONS = ["Abstract", "Setup", "Table 1", "Table 2", "Figures", "Claims", "Sample generations", "Provenance"]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("no chromium on PATH: `make system-deps` (as root) installs Debian's chromium")
    return path


def distinct_colours(png: bytes) -> int:
    from PIL import Image

    return len(set(Image.open(io.BytesIO(png)).convert("RGB").getdata()))


def test_report_renders_in_a_headless_browser(finished_run, tmp_path):
    """Open report.html as a reader would: every section, table and figure is there and no figure is empty."""
    html_path = finished_run / "reports" / "smoke" / "report.html"
    common = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*common, "--dump-dom", html_path.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    headings = re.findall(r"<h2[^>]*>(.*?)</h2>", dom.stdout)
    for section in REPORT_SECTIONS:
        assert any(h.startswith(section) for h in headings), (section, headings)
    assert dom.stdout.count("<table") >= 5
    images = re.findall(r'<img[^>]*src="data:image/png;base64,([^"]+)"', dom.stdout)
    assert len(images) >= 5  # curves, lengths, reward vs KL, judge labels, judge scores, RM vs judge
    for encoded in images:
        assert distinct_colours(base64.b64decode(encoded)) > 50  # a drawn plot, not a blank canvas
    shot = tmp_path / "report.png"
    result = subprocess.run([*common, f"--screenshot={shot}", "--window-size=1280,2000", html_path.as_uri()],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0 and distinct_colours(shot.read_bytes()) > 50


def test_report_pdf_has_pages_with_content(finished_run, tmp_path):
    if shutil.which("pdftoppm") is None:
        pytest.skip("no pdftoppm on PATH: `make system-deps` (as root) installs Debian's poppler-utils")
    pdf = finished_run / "reports" / "smoke" / "report.pdf"
    subprocess.run(["pdftoppm", "-png", "-r", "40", str(pdf), str(tmp_path / "page")], check=True, timeout=120)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 4
    assert all(distinct_colours(page.read_bytes()) > 10 for page in pages)


def test_snakemake_report_includes_figures_tables_and_claims(finished_run):
    out = finished_run / "reports" / "smoke" / "snakemake-report.html"
    result = snakemake(finished_run, "--report", str(out), "--configfile", str(finished_run / "tiny.yaml"))
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    for name in ("ppo_curves.png", "reward_vs_kl.png", "summary.csv", "claims.csv", "report.html"):
        assert f"Adding {name}" in log, name
    assert out.stat().st_size > 100_000


def test_config_strings_never_reach_the_shell_unquoted(tmp_path):
    """A results_dir with spaces and shell operators is a path, not a command (issue 12)."""
    import yaml

    from conftest import tiny_config

    hostile = "out dir || touch INJECTED || echo "
    config = tiny_config(seeds=(0,))
    config["results_dir"] = hostile
    experiment = next(iter(config["experiments"]))
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    target = f"{hostile}/smoke/{experiment}/data/checksums.json"

    result = snakemake(tmp_path, target, "--cores", "1", "--configfile", str(tmp_path / "tiny.yaml"))

    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / target).is_file()
    assert not (tmp_path / "INJECTED").exists()


@pytest.mark.parametrize(
    ("damaged", "target", "consumer", "producer"),
    [
        ("imdb-negative/data/prompts_eval.jsonl", "imdb-negative/evaluate/seed0/metrics.json", "evaluate", "data"),
        ("imdb-negative/ppo/seed0/adapter/adapter_model.safetensors", "imdb-negative/evaluate/seed0/metrics.json",
         "evaluate", "ppo"),
        ("hh-positive/reward/model/model.safetensors", "hh-positive/evaluate/seed1/metrics.json", "evaluate", "reward"),
        ("instruct-short/evaluate/seed1/metrics.json", "summary.csv", "aggregate", "evaluate"),
    ],
    ids=["data", "adapter-weights", "reward-model-weights", "metrics"],
)  # fmt: skip
def test_a_damaged_file_of_a_finished_run_stops_the_next_run_naming_its_rule(
    finished_run, tmp_path, damaged, target, consumer, producer
):
    """Issue 12: after a finished run, a file changed behind Snakemake's back (cut, or edited) is caught by the
    next job that reads it, which names the file and the rule that makes it; Snakemake prints that line from the
    job's log (profiles/default: show-failed-logs) and the job leaves no output behind."""
    workdir = tmp_path / "run"
    shutil.copytree(finished_run, workdir, symlinks=True)
    results = workdir / "results" / "smoke"
    path = results / damaged
    content = path.read_bytes()
    path.write_bytes(content.replace(b"0", b"1", 1) if path.suffix == ".json" else content[: len(content) // 2])

    result = snakemake(workdir, f"results/smoke/{target}", "--cores", "1", "--forcerun", consumer,
                       "--configfile", str(workdir / "tiny.yaml"))  # fmt: skip

    assert result.returncode != 0
    log = result.stdout + result.stderr
    assert f"{damaged}: its sha256 is not the one" in log and f"rerun the rule '{producer}'" in log, log[-3000:]
    assert "Traceback" not in log
    assert not (results / target).exists()


def _stage_process(workdir: Path, module: str) -> int | None:
    """The pid of the job running `module` in `workdir` (its cwd), if one runs."""
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            if module.encode() in cmdline and Path(os.readlink(entry / "cwd")) == workdir:
                return int(entry.name)
        except (OSError, ValueError):
            continue
    return None


# Per long stage: the Snakemake target that runs it, the stage's folder, and what must come out byte-identical.
RESUMED_STAGES = {
    "sft": ("sft/sft_metrics.json", "sft", ("sft/model/model.safetensors", "sft/sft_metrics.json")),
    "reward": ("reward/rm_metrics.json", "reward", ("reward/model/model.safetensors", "reward/rm_metrics.json")),
    "ppo": ("evaluate/seed0/metrics.json", "ppo/seed0", ("ppo/seed0/adapter/adapter_model.safetensors",
                                                         "ppo/seed0/train_log.csv", "evaluate/seed0/metrics.json")),
}  # fmt: skip


@pytest.mark.parametrize("stage", list(RESUMED_STAGES))
def test_a_killed_job_resumes_when_the_same_snakemake_command_runs_again(tmp_path, stage):
    """Issue 13: SIGKILL a long stage's job at a step (a node failure); the same Snakemake command run again resumes
    it from its checkpoint, and its weights and metrics (for ppo: the adapter, train_log.csv and the evaluate
    metrics.json) are byte-identical to an uninterrupted run's."""
    import random
    import signal
    import time

    import yaml

    from conftest import tiny_config

    config = tiny_config(seeds=(0,))
    exp = config["experiments"]["imdb-negative"]
    exp["sft"] |= {"epochs": 2, "batch_size": 4}
    exp["reward"] |= {"epochs": 2, "batch_size": 8}
    exp["ppo"]["steps"] = 8
    exp["checkpoint"] = {"every_steps": 1}
    target_file, folder, compared = RESUMED_STAGES[stage]
    target = f"results/smoke/imdb-negative/{target_file}"
    runs = {}
    for name in ("whole", "killed"):
        runs[name] = tmp_path / name
        runs[name].mkdir()
    workdir = runs["killed"].resolve()
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(config))
    command = [target, "--cores", "1", "--configfile", str(workdir / "tiny.yaml")]  # the same config in both
    assert snakemake(runs["whole"], *command).returncode == 0

    first = subprocess.Popen(snakemake_command(workdir, *command), cwd=ROOT, env=snakemake_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    checkpoints = workdir / f"results/smoke/imdb-negative/{folder}.checkpoint"
    step = random.Random(stage).randint(2, 5)
    deadline = time.monotonic() + 900
    while not sorted(checkpoints.glob(f"step-{step:08d}")) and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.02)
    pid = _stage_process(workdir, f"rlhf_bench.train.{stage}")
    assert pid is not None, f"the {stage} job ended before it could be killed"
    os.kill(pid, signal.SIGKILL)
    assert first.wait(timeout=300) != 0
    assert not (workdir / f"results/smoke/imdb-negative/{folder}/provenance.json").exists()

    again = snakemake(workdir, *command)

    assert again.returncode == 0, again.stderr[-3000:]
    log = (workdir / f"results/smoke/logs/imdb-negative/{stage}{'.seed0' if stage == 'ppo' else ''}.log").read_text()
    assert "resuming from step" in log
    provenance = json.loads((workdir / f"results/smoke/imdb-negative/{folder}/provenance.json").read_text())
    assert provenance["resumed_from_step"] >= step
    for name in compared:
        path = f"results/smoke/imdb-negative/{name}"
        assert (workdir / path).read_bytes() == (runs["whole"] / path).read_bytes(), name
