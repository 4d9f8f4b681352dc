"""What every stage does first and last: pinned-version check, seeding, provenance, one-line errors."""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import platform
import random
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from rlhf_bench.config import Config, ConfigError, load

# The documented stack (seeds/000 "Dependencies"). envs/requirements.in pins the same versions.
PINNED = {"transformers": "4.33.1", "trl": "0.7.4", "peft": "0.5.0", "accelerate": "0.28.0"}
RECORDED = ("torch", "datasets", "tokenizers", "numpy", "pandas", "scipy", "safetensors", "huggingface-hub")


class StageError(RuntimeError):
    """A stage cannot go on (bad data file, missing input, NaN in training); the message is one line."""


def installed_versions() -> dict[str, str | None]:
    versions = {}
    for name in (*PINNED, *RECORDED):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def version_drift(versions: dict[str, str | None]) -> list[str]:
    return [
        f"{name}: expected {want}, found {versions.get(name) or 'not installed'}"
        for name, want in PINNED.items()
        if versions.get(name) != want
    ]


def check_versions(allow_drift: bool) -> list[str]:
    """Refuse to run on another stack than the documented one, unless the user says so deliberately."""
    drift = version_drift(installed_versions())
    if drift and not allow_drift:
        raise ConfigError(
            "the documented libraries are not at their pinned versions ("
            + "; ".join(drift)
            + "). Fix: `make install` (envs/requirements.lock), or pass --allow-version-drift "
            "(config: allow_version_drift: true) to run anyway; the report then lists the drift."
        )
    return drift


def seed_everything(seed: int, threads: int) -> None:
    """Same seed, same machine, same thread count: same bytes out (CPU)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    # warn_only: a few CUDA kernels have no deterministic version; CPU ones all do.
    torch.use_deterministic_algorithms(True, warn_only=True)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("RLHF_BENCH_GIT_COMMIT", "unknown")


def hardware() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    record = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "container_image": os.environ.get("RLHF_BENCH_IMAGE") or None,
    }
    # Inside a container: what the image is, and which runtime. The project's image (Dockerfile) sets
    # RLHF_BENCH_IMAGE and writes RLHF_BENCH_IMAGE_INFO at build time: its reference, git revision and a digest
    # of its software (the Debian package list and every installed Python file). Apptainer sets
    # APPTAINER_CONTAINER (or SINGULARITY_CONTAINER) to the image file; podman sets `container` and docker leaves
    # /.dockerenv, which alone proves little (some hosts were made from docker images): only the variables above
    # add the container keys.
    apptainer = os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER")
    info: dict = {}
    info_path = os.environ.get("RLHF_BENCH_IMAGE_INFO")
    if info_path:
        try:
            loaded = json.loads(Path(info_path).read_text())
            info = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            info = {"digest": f"unreadable: {info_path}"}
    if apptainer or record["container_image"] or info:
        if os.environ.get("APPTAINER_CONTAINER"):
            runtime = "apptainer"
        elif os.environ.get("SINGULARITY_CONTAINER"):
            runtime = "singularity"
        elif os.environ.get("container"):  # podman sets container=podman (so do systemd-nspawn, lxc)
            runtime = os.environ["container"]
        elif Path("/run/.containerenv").exists():
            runtime = "podman"
        elif Path("/.dockerenv").exists():
            runtime = "docker"
        else:
            runtime = None
        record["container_image"] = record["container_image"] or info.get("reference") or apptainer
        record["container_digest"] = info.get("digest")
        record["container_revision"] = info.get("revision")
        record["container_runtime"] = runtime
    return record


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write via a temporary name, so an interrupted job never leaves a file a rerun would trust."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write_json(path: str | Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, allow_nan=True) + "\n")


class Stage:
    """The frame of a stage's CLI: parse arguments, load and check the config, seed, time, write provenance.

    Every stage's `main` builds one, adds its own arguments, and calls `run(body)`. Errors that a user can fix
    (ConfigError, StageError) become one line on stderr and exit code 2.
    """

    def __init__(self, name: str, description: str):
        self.name = name
        self.parser = argparse.ArgumentParser(prog=f"python -m rlhf_bench.{name}", description=description)
        self.parser.add_argument("--config", required=True, help="config file (YAML, or the resolved JSON)")
        self.parser.add_argument(
            "--allow-version-drift",
            action="store_true",
            help="run even if transformers/trl/peft/accelerate differ from the pinned versions",
        )

    def add_experiment_args(self, seed: bool = False) -> None:
        self.parser.add_argument("--experiment", required=True, help="experiment name in the config")
        if seed:
            self.parser.add_argument("--seed", required=True, type=int, help="PPO seed")

    def run(self, body: Callable[[argparse.Namespace, Config, dict], Path | None], argv=None) -> int:
        """Run `body(args, config, provenance)`; it returns its output directory, where provenance.json goes."""
        args = self.parser.parse_args(argv)
        started = time.time()
        try:
            config = load(args.config)
            if config.hf_hub_offline:
                os.environ["HF_HUB_OFFLINE"] = "1"
                os.environ["TRANSFORMERS_OFFLINE"] = "1"
                os.environ["HF_DATASETS_OFFLINE"] = "1"
            drift = check_versions(args.allow_version_drift or config.allow_version_drift)
            if getattr(args, "experiment", None) is not None:
                config.experiment(args.experiment)
            provenance = {
                "stage": self.name,
                "experiment": getattr(args, "experiment", None),
                "seed": getattr(args, "seed", None),
                "versions": installed_versions(),
                "version_drift": drift,
                "git_commit": git_commit(),
                "config_sha256": config.sha256,
                "command": shlex.join([*self.parser.prog.split(), *(sys.argv[1:] if argv is None else argv)]),
                "started_utc": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
                "data_checksums": {},
            }
            out_dir = body(args, config, provenance)
            if out_dir is not None:
                provenance["hardware"] = hardware()
                provenance["seconds"] = round(time.time() - started, 3)
                write_json(Path(out_dir) / "provenance.json", provenance)
        except (ConfigError, StageError) as exc:
            print(f"rlhf_bench.{self.name}: error: {exc}", file=sys.stderr)
            return 2
        return 0


def read_checksums(data_dir: str | Path) -> dict[str, str]:
    path = Path(data_dir) / "checksums.json"
    if not path.exists():
        raise StageError(f"{path}: missing. Fix: run the prepare_data rule first (snakemake ... prepare_data).")
    return json.loads(path.read_text())
