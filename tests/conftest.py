"""Shared fixtures: the project root, a small config for fast runs, and the shared real data (optional)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA_ENV = "RLHF_BENCH_SHARED_DATA"

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in the tests may touch the hub


def snakemake_env() -> dict[str, str]:
    """The environment a test's Snakemake runs in: this interpreter's venv first on PATH (every job's `python` is
    the one with rlhf_bench), and the hub offline."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}


def snakemake_command(workdir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), *args]


def snakemake(workdir: Path, *args: str, timeout: int = 1200) -> subprocess.CompletedProcess:
    """The project's Snakefile run in `workdir` (results/ and .snakemake/ go there), its output captured."""
    return subprocess.run(snakemake_command(workdir, *args), cwd=ROOT, env=snakemake_env(), capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def smoke_config() -> dict:
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def tiny_config(seeds=(0, 1)) -> dict:
    """The smoke profile shrunk to seconds per stage: same code paths, fewer steps and samples."""
    raw = copy.deepcopy(smoke_config())
    raw = {k: v for k, v in raw.items() if not k.startswith("_")}
    raw["seeds"] = list(seeds)
    raw["evaluation"] = {"prompts_file": str(ROOT / raw["evaluation"]["prompts_file"])}  # tests run elsewhere
    for exp in raw["experiments"].values():
        exp["data"].update(n_pairs_train=64, n_pairs_test=32, n_prompts_train=16, n_prompts_eval=8, n_corpus=200)
        exp["sft"] = {**exp["sft"], "epochs": 1, "vocab_size": 400}
        exp["reward"] = {**exp["reward"], "epochs": 1, "vocab_size": 400}
        exp["ppo"] = {**exp["ppo"], "steps": 2, "batch_size": 8, "mini_batch_size": 4, "ppo_epochs": 1}
        exp["generation"] = {**exp["generation"], "max_new_tokens": 8}
        if "frontier" in exp:
            frontier = exp["frontier"] = {**exp["frontier"], "best_of_n": {"n": [1, 2]}}
            frontier["dpo"] = {**frontier["dpo"], "beta": [0.1], "steps": 2, "batch_size": 4}
    return raw


@pytest.fixture
def tiny_config_file(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config()))
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data of ../shared/data: skip where the variable is unset, fail where it is set but empty."""
    location = os.environ.get(SHARED_DATA_ENV)
    if not location:
        pytest.skip(f"{SHARED_DATA_ENV} is unset: no real data here (.ci/run sets it to ../shared/data)")
    path = Path(location)
    if not (path / "imdb").is_dir() or not (path / "gpt2-tokenizer").is_dir():
        pytest.fail(f"{SHARED_DATA_ENV}={location} does not hold imdb/ and gpt2-tokenizer/ (see shared/data/README.md)")
    return path


SEED = 3  # the chain's PPO seed


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """data, sft, reward and ppo of one experiment (imdb-negative) on the tiny config, run once per module that
    asks: (folder, the stage CLIs' common arguments, the --sft/--reward arguments)."""
    from rlhf_bench.train import data, ppo, reward, sft

    root = tmp_path_factory.mktemp("chain")
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config()))
    common = ["--config", str(config), "--experiment", "imdb-negative"]
    assert data.main([*common, "--out", str(root / "data")]) == 0
    assert sft.main([*common, "--data", str(root / "data"), "--out", str(root / "sft")]) == 0
    assert reward.main([*common, "--data", str(root / "data"), "--out", str(root / "reward")]) == 0
    models = ["--sft", str(root / "sft"), "--reward", str(root / "reward")]
    ppo_args = [*common, "--seed", str(SEED), "--data", str(root / "data"), *models]
    assert ppo.main([*ppo_args, "--out", str(root / "ppo")]) == 0
    return root, common, models


def evaluate_args(root, common, models, out):
    return [*common, "--seed", str(SEED), "--data", str(root / "data"), *models, "--ppo", str(root / "ppo"),
            "--out", str(out)]  # fmt: skip
