"""Same seed twice, same bytes: every metrics file of one experiment's chain (CPU, same thread count)."""

from __future__ import annotations

import pandas as pd
import pytest

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
