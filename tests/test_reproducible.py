"""Same seed twice, same bytes: every metrics file of one experiment's chain (CPU, same thread count)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import tiny_config
from rlhf_bench.runtime import PORTABLE_CPU_KERNELS
from rlhf_bench.train import data, evaluate, ppo, reward, sft

pytestmark = pytest.mark.slow

METRICS_FILES = (
    "data/checksums.json",
    "sft/sft_metrics.json",
    "reward/rm_metrics.json",
    "evaluate/seed3/metrics.json",
    "evaluate/seed3/samples.parquet",
)


def run_chain(config_file, root, experiment="imdb-negative", seed=3):
    common = ["--config", str(config_file), "--experiment", experiment]
    d = str(root / "data")
    assert data.main([*common, "--out", d]) == 0
    assert sft.main([*common, "--data", d, "--out", str(root / "sft")]) == 0
    assert reward.main([*common, "--data", d, "--out", str(root / "reward")]) == 0
    models = ["--sft", str(root / "sft"), "--reward", str(root / "reward")]
    assert ppo.main([*common, "--seed", str(seed), "--data", d, *models, "--out", str(root / f"ppo/seed{seed}")]) == 0
    assert (
        evaluate.main(
            [
                *common,
                "--seed",
                str(seed),
                "--data",
                d,
                *models,
                "--ppo",
                str(root / f"ppo/seed{seed}"),
                "--out",
                str(root / f"evaluate/seed{seed}"),
            ]
        )
        == 0
    )


def test_same_seed_gives_byte_identical_metrics(tiny_config_file, tmp_path):
    run_chain(tiny_config_file, tmp_path / "first")
    run_chain(tiny_config_file, tmp_path / "second")
    for name in METRICS_FILES:
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes(), name
    # The training log too, byte for byte: wall-clock times go to timings.csv beside it.
    logs = [(tmp_path / run / "ppo/seed3/train_log.csv").read_bytes() for run in ("first", "second")]
    assert logs[0] == logs[1]
    samples = pd.read_parquet(tmp_path / "first/evaluate/seed3/samples.parquet")
    assert set(samples.policy) == {"base", "rlhf"} and samples.response.str.len().gt(0).any()


def sft_in_a_fresh_process(root: Path, portable: bool) -> tuple[bytes, dict]:
    """One tiny sft stage in its own interpreter (as Snakemake starts it): the weights' bytes and its hardware."""
    config = {**tiny_config(), "portable_cpu_kernels": portable}
    (root / "tiny.yaml").parent.mkdir(parents=True, exist_ok=True)
    (root / "tiny.yaml").write_text(yaml.safe_dump(config))
    common = ["--config", str(root / "tiny.yaml"), "--experiment", "imdb-negative"]
    env = {k: v for k, v in os.environ.items() if k not in PORTABLE_CPU_KERNELS}
    for module, extra in (("data", []), ("sft", ["--data", str(root / "data")])):
        command = [sys.executable, "-m", f"rlhf_bench.train.{module}", *common, *extra, "--out", str(root / module)]
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
    provenance = json.loads((root / "sft" / "provenance.json").read_text())
    return (root / "sft" / "model" / "model.safetensors").read_bytes(), provenance["hardware"]


def test_portable_cpu_kernels_run_the_avx2_paths_and_stay_deterministic(tmp_path):
    """portable_cpu_kernels: every library on its AVX2 code path (recorded in provenance), same bytes twice; on a
    CPU whose own widest kernels are wider (AVX-512), other bytes than without it: the switch does change kernels."""
    native_bytes, native = sft_in_a_fresh_process(tmp_path / "native", portable=False)
    first, hardware = sft_in_a_fresh_process(tmp_path / "portable", portable=True)
    again, _ = sft_in_a_fresh_process(tmp_path / "again", portable=True)
    assert hardware["cpu_capability"] == "AVX2" and hardware["mkl_cbwr"] == "AVX2"
    assert first == again
    if native["cpu_capability"] == "AVX512":
        assert first != native_bytes


def test_portable_cpu_kernels_refused_where_torch_already_chose_its_kernels():
    code = (
        "import torch; torch.ones(64) @ torch.ones(64)\n"
        "from rlhf_bench.runtime import pin_cpu_kernels\n"
        "from rlhf_bench.io import StageError\n"
        "try:\n    pin_cpu_kernels()\nexcept StageError as e:\n    print(e)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in PORTABLE_CPU_KERNELS}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120).stdout
    import torch

    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "DEFAULT"):
        assert out == ""  # nothing wider to leave
    else:
        assert "portable_cpu_kernels: torch already runs its" in out and "Fix: start the stage in a fresh" in out
