"""The PPO benchmarks' --tiny modes run on a CPU and print every field they report (nothing here is timed)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def run_benchmark(*args: str) -> str:
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_ppo_throughput_tiny(tmp_path):
    out = run_benchmark("benchmarks/ppo_throughput.py", "--tiny", "--json", str(tmp_path / "result.json"))
    for field in ("harness samples/s:", "bare trl samples/s:", "ratio harness/bare:", "harness step:"):
        assert field in out
    for part in ("generate", "decode", "reward", "trl_step", "finite_checks", "logging", "other"):
        assert f"  {part} " in out
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["same_rewards_in_both_arms"], "the two arms did different work"
    assert set(result["harness_step_breakdown_seconds"]) >= {"generate", "trl_step", "other"}


def test_gpu_ppo_tiny_without_tokenizers(tmp_path):
    """The GPU script's path on the lent machine: tokenizers hidden, the slow GPT-2 tokenizer, k processes."""
    out = run_benchmark(
        "benchmarks/gpu_ppo.py", "--tiny", "--hide-tokenizers", "yes", "--threads", "1", "--out", str(tmp_path)
    )
    assert "ratio harness/bare:" in out and "k=2:" in out
    report = json.loads((tmp_path / "gpu_ppo.json").read_text())
    assert report["stack"]["tokenizers_hidden"] and report["setup"]["tokenizer"] == "GPT2Tokenizer"
    assert report["harness_vs_bare"]["same_rewards_in_both_arms"]
    assert [run["k"] for run in report["seeds_at_once"]] == [1, 2]
    for run in report["seeds_at_once"]:
        assert run["processes_ok"] == run["k"], run["errors"]
        assert run["total_samples_per_s"] > 0
    assert (tmp_path / "gpu_ppo.txt").read_text().startswith("stack:")
