"""Exact resume (issue 13): sft, reward and ppo killed with SIGKILL at a random step resume from their newest
checkpoint when rerun, and end byte-identical to an uninterrupted run (weights, metrics, train_log.csv, and the
evaluate metrics.json of the resumed policy)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, tiny_config
from rlhf_bench.train import data, evaluate, reward, sft

EXPERIMENT = "imdb-negative"
SEED = 1
# What must come out byte-identical, per stage (besides provenance.json, which records times and the resume).
COMPARED = {
    "sft": ["model/model.safetensors", "sft_metrics.json"],
    "reward": ["model/model.safetensors", "rm_metrics.json"],
    "ppo": ["adapter/adapter_model.safetensors", "value_head.safetensors", "train_log.csv"],
}


def resume_config() -> dict:
    """The tiny config with enough steps per stage that a kill lands mid-run, and a checkpoint every step."""
    config = tiny_config()
    exp = config["experiments"][EXPERIMENT]
    exp["sft"] |= {"epochs": 2, "batch_size": 4}
    exp["reward"] |= {"epochs": 2, "batch_size": 8}
    exp["ppo"] |= {"steps": 8}
    exp["checkpoint"] = {"every_steps": 1}
    return config


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("resume")
    (root / "config.yaml").write_text(yaml.safe_dump(resume_config()))
    common = ["--config", str(root / "config.yaml"), "--experiment", EXPERIMENT]
    assert data.main([*common, "--out", str(root / "data")]) == 0
    assert sft.main([*common, "--data", str(root / "data"), "--out", str(root / "sft")]) == 0
    assert reward.main([*common, "--data", str(root / "data"), "--out", str(root / "reward")]) == 0
    return root, common


def stage_argv(stage: str, root: Path, common: list[str], out: Path) -> list[str]:
    argv = [*common, "--data", str(root / "data"), "--out", str(out)]
    if stage == "ppo":
        argv += ["--seed", str(SEED), "--sft", str(root / "sft"), "--reward", str(root / "reward")]
    return argv


def run_cli(stage: str, argv: list[str]) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen([sys.executable, "-m", f"rlhf_bench.train.{stage}", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def kill_at_step(process: subprocess.Popen, checkpoints: Path, step: int, timeout: float = 300) -> int:
    """SIGKILL the process once a checkpoint of `step` or later is written; the step it was killed after."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = sorted(int(p.name.split("-")[1]) for p in checkpoints.glob("step-*")) if checkpoints.is_dir() else []
        if done and done[-1] >= step:
            process.send_signal(signal.SIGKILL)
            process.wait()
            return done[-1]
        if process.poll() is not None:
            pytest.fail(
                f"the stage ended (rc {process.returncode}) before step {step}: {process.stderr.read()[-2000:]}"
            )
        time.sleep(0.02)
    process.kill()
    pytest.fail(f"no checkpoint of step {step} within {timeout} s")


@pytest.mark.parametrize("stage", ["sft", "reward", "ppo"])
def test_a_stage_killed_mid_run_resumes_and_ends_byte_identical(inputs, tmp_path, stage):
    root, common = inputs
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    uninterrupted = run_cli(stage, stage_argv(stage, root, common, whole))
    assert uninterrupted.wait() == 0, uninterrupted.stderr.read()[-3000:]
    assert not whole.with_name("whole.checkpoint").exists()  # removed once the outputs are in place
    total = {"sft": 10, "reward": 8, "ppo": 8}[stage]  # at least this many steps in the tiny config
    target = random.Random(f"{stage}-kill").randint(2, total - 3)

    after = kill_at_step(
        run_cli(stage, stage_argv(stage, root, common, killed)), killed.with_name("killed.checkpoint"), target
    )

    assert not killed.exists()  # nothing a rerun (or Snakemake) would trust
    rerun = run_cli(stage, stage_argv(stage, root, common, killed))
    assert rerun.wait() == 0, rerun.stderr.read()[-3000:]
    assert f"resuming from step {after}" in rerun.stderr.read()
    provenance = json.loads((killed / "provenance.json").read_text())
    assert provenance["resumed_from_step"] == after > 0
    for name in COMPARED[stage]:
        assert (killed / name).read_bytes() == (whole / name).read_bytes(), name
    assert not killed.with_name("killed.checkpoint").exists()
    if stage == "ppo":  # the resumed policy evaluates exactly as the uninterrupted one
        for out in (whole, killed):
            argv = [*stage_argv("ppo", root, common, out.with_name(out.name + "-eval")), "--ppo", str(out)]
            assert evaluate.main(argv) == 0
        metrics = [(tmp_path / f"{n}-eval" / "metrics.json").read_bytes() for n in ("whole", "killed")]
        assert metrics[0] == metrics[1]


def test_a_checkpoint_of_another_job_is_refused(inputs, tmp_path, capsys):
    """A checkpoint left by another config (here: another learning rate) is never used, and says so."""
    from rlhf_bench.train import ppo

    root, common = inputs
    out = tmp_path / "ppo"
    process = run_cli("ppo", stage_argv("ppo", root, common, out))
    kill_at_step(process, out.with_name("ppo.checkpoint"), 2)
    config = resume_config()
    config["experiments"][EXPERIMENT]["ppo"]["learning_rate"] = 3e-4
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(config))
    argv = stage_argv("ppo", root, ["--config", str(other), "--experiment", EXPERIMENT], out)
    capsys.readouterr()
    assert ppo.main(argv) == 2
    err = capsys.readouterr().err
    assert "a checkpoint of another job (config_sha256 differ)" in err and "Traceback" not in err
    assert not out.exists()


def test_a_damaged_checkpoint_falls_back_to_the_one_before(inputs, tmp_path, capsys):
    from rlhf_bench.train import ppo

    root, common = inputs
    out = tmp_path / "ppo"
    kill_at_step(run_cli("ppo", stage_argv("ppo", root, common, out)), out.with_name("ppo.checkpoint"), 3)
    newest, before = sorted(out.with_name("ppo.checkpoint").glob("step-*"), reverse=True)[:2]
    tensors = newest / "tensors.safetensors"
    tensors.write_bytes(tensors.read_bytes()[:-16])
    capsys.readouterr()
    assert ppo.main(stage_argv("ppo", root, common, out)) == 0
    err = capsys.readouterr().err
    assert f"{newest}: damaged checkpoint" in err and f"resuming from step {int(before.name[5:])}" in err
    whole = tmp_path / "whole"
    assert ppo.main(stage_argv("ppo", root, common, whole)) == 0
    for name in COMPARED["ppo"]:
        assert (out / name).read_bytes() == (whole / name).read_bytes(), name
    shutil.rmtree(whole)
