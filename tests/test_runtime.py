"""The frame every stage shares: pinned versions, one-line errors, provenance; and the DAG's layout."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import tiny_config
from rlhf_bench import runtime
from rlhf_bench.config import ConfigError, validate
from rlhf_bench.layout import Layout
from rlhf_bench.train import data


def test_the_installed_stack_is_the_documented_one():
    assert runtime.version_drift(runtime.installed_versions()) == []


def test_version_drift_refuses_unless_allowed(monkeypatch):
    drifted = {**runtime.installed_versions(), "trl": "0.8.0", "peft": None}
    monkeypatch.setattr(runtime, "installed_versions", lambda: drifted)
    with pytest.raises(ConfigError) as info:
        runtime.check_versions(allow_drift=False)
    assert "trl: expected 0.7.4, found 0.8.0" in str(info.value)
    assert "peft: expected 0.5.0, found not installed" in str(info.value)
    assert "--allow-version-drift" in str(info.value)
    assert runtime.check_versions(allow_drift=True) == [
        "trl: expected 0.7.4, found 0.8.0",
        "peft: expected 0.5.0, found not installed",
    ]


def test_allowed_drift_is_recorded_in_provenance(monkeypatch, tiny_config_file, tmp_path):
    drifted = {**runtime.installed_versions(), "accelerate": "0.99.0"}
    monkeypatch.setattr(runtime, "installed_versions", lambda: drifted)
    common = ["--config", str(tiny_config_file), "--experiment", "hh-positive", "--out", str(tmp_path)]
    assert data.main(common) == 2
    assert data.main([*common, "--allow-version-drift"]) == 0
    provenance = json.loads((tmp_path / "provenance.json").read_text())
    assert provenance["version_drift"] == ["accelerate: expected 0.28.0, found 0.99.0"]
    assert provenance["data_checksums"] == json.loads((tmp_path / "checksums.json").read_text())
    assert len(provenance["config_sha256"]) == 64 and provenance["hardware"]["cpu_count"] >= 1


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "rlhf_bench.train.data", "--config", str(tmp_path / "nope.yaml"),
         "--experiment", "x", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"rlhf_bench.train.data: error: {tmp_path / 'nope.yaml'}: cannot read the config (No such file or directory). "
        "Fix: check the path."
    ]
    assert not (tmp_path / "out").exists()


def test_unknown_experiment_is_named(tiny_config_file, tmp_path, capsys):
    args = ["--config", str(tiny_config_file), "--experiment", "imdb-positive", "--out", str(tmp_path)]
    assert data.main(args) == 2
    assert (
        f"{tiny_config_file}: --experiment 'imdb-positive' is not one of its experiments "
        "(hh-positive, imdb-negative, instruct-short)" in capsys.readouterr().err
    )


def test_layout_wires_optional_inputs_from_config():
    layout = Layout(validate(tiny_config()))
    assert set(layout.policy_inputs("imdb-negative")) == {"sft", "reward"}
    assert set(layout.policy_inputs("instruct-short")) == {"sft"}  # minus word count needs no reward model
    assert layout.policy_args("instruct-short") == "--sft results/smoke/instruct-short/sft"
    assert layout.per_seed("evaluate", "metrics.json")[0] == "results/smoke/imdb-negative/evaluate/seed0/metrics.json"
    assert len(layout.per_seed("evaluate", "metrics.json")) == 3 * 2


def test_a_slurm_job_records_its_job_partition_and_node(monkeypatch, tiny_config_file, tmp_path):
    """Under SLURM every stage's provenance.json says so (issue 13), from sbatch's output variables."""
    import json

    from rlhf_bench.runtime import scheduler

    for name in ("SLURM_JOB_ID", "SLURM_JOB_PARTITION", "SLURMD_NODENAME", "SLURM_RESTART_COUNT"):
        monkeypatch.delenv(name, raising=False)
    assert scheduler() is None
    monkeypatch.setenv("SLURM_JOB_ID", "4711")
    monkeypatch.setenv("SLURM_JOB_PARTITION", "gpu")
    monkeypatch.setenv("SLURMD_NODENAME", "node7")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    out = tmp_path / "data"
    assert data.main(["--config", str(tiny_config_file), "--experiment", "imdb-negative", "--out", str(out)]) == 0
    recorded = json.loads((out / "provenance.json").read_text())["scheduler"]
    assert recorded | {"job_name": None, "account": None, "gpus": None} == {
        "name": "slurm", "job_id": "4711", "partition": "gpu", "node": "node7", "restart_count": "1",
        "job_name": None, "account": None, "gpus": None,
    }  # fmt: skip
