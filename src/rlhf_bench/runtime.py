"""The stage frame every CLI runs through: pinned-version check, seeding, provenance, one-line errors."""

from __future__ import annotations

import argparse
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rlhf_bench.config import ConfigError, load
from rlhf_bench.io import (
    StageError,
    checksum_tree,
    describe_os_error,
    input_dir,
    output_dir,
    output_file,
    output_lock,
    read_checksums,
    sha256_file,
    staged_dir,
    staged_outputs,
    verified_outputs,
    verify_checksums,
    write_json,
)
from rlhf_bench.layout import MODULES, output_record
from rlhf_bench.settings import Config, Experiment

# The documented stack (seeds/000 "Dependencies"). envs/requirements.in pins the same versions.
PINNED = {"transformers": "4.33.1", "trl": "0.7.4", "peft": "0.5.0", "accelerate": "0.28.0"}
RECORDED = ("torch", "datasets", "tokenizers", "numpy", "pandas", "scipy", "safetensors", "huggingface-hub")


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


# The instruction-set pins of `portable_cpu_kernels`. Each library picks the widest kernels the CPU has, and a
# different kernel sums in another order: on one machine a 10-step GPT-2 training changed its bits with each one
# alone (torch's own AVX-512 vs AVX2 kernels; MKL's GEMM). Read when each library first computes, not at import.
PORTABLE_CPU_KERNELS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def pin_cpu_kernels() -> None:
    """Take the AVX2 code paths of torch, MKL and oneDNN (PORTABLE_CPU_KERNELS); before any tensor is computed."""
    import torch

    os.environ.update(PORTABLE_CPU_KERNELS)
    found = torch.backends.cpu.get_cpu_capability()
    if found not in ("AVX2", "DEFAULT"):  # already fixed by an earlier computation in this process
        raise StageError(
            f"portable_cpu_kernels: torch already runs its {found} kernels in this process. Fix: start the stage in "
            "a fresh process (as Snakemake does), or set ATEN_CPU_CAPABILITY=avx2 before Python starts."
        )


def seed_everything(seed: int, threads: int, portable_cpu_kernels: bool = False) -> None:
    """Same seed, same machine, same thread count: same bytes out (CPU); with portable_cpu_kernels, the same AVX2
    code paths on any x86-64 machine (see settings.Config)."""
    import numpy as np
    import torch

    if portable_cpu_kernels:
        pin_cpu_kernels()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    # warn_only: a few CUDA kernels have no deterministic version; CPU ones all do.
    torch.use_deterministic_algorithms(True, warn_only=True)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


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
        # Which kernels ran: what makes two CPUs' bits differ (portable_cpu_kernels pins both to AVX2).
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkl_cbwr": os.environ.get("MKL_CBWR") or None,
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


def seed_argument(text: str) -> int:
    """--seed: an integer >= 0 (numpy and torch refuse negative seeds deep inside a run)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; seeds are integers >= 0")
    return value


def needed_models(experiment: Experiment) -> dict[str, str]:
    """The trained models a policy stage needs besides its data, each with the setting that asks for it."""
    needed = {}
    if experiment.policy == "sft":
        needed["sft"] = f"experiments.{experiment.name}.policy is 'sft'"
    if experiment.ppo.reward == "reward_model":
        needed["reward"] = f"experiments.{experiment.name}.ppo.reward is 'reward_model'"
    return needed


# What SLURM tells a job about itself (sbatch's output environment variables), as provenance.json records it.
SLURM_VARIABLES = {
    "job_id": "SLURM_JOB_ID",
    "job_name": "SLURM_JOB_NAME",
    "partition": "SLURM_JOB_PARTITION",
    "account": "SLURM_JOB_ACCOUNT",
    "node": "SLURMD_NODENAME",
    "restart_count": "SLURM_RESTART_COUNT",
    "gpus": "SLURM_JOB_GPUS",
}


def scheduler() -> dict | None:
    """The batch scheduler this job ran under (SLURM: its job id, partition, node, restarts), else None."""
    if "SLURM_JOB_ID" not in os.environ:
        return None
    return {"name": "slurm", **{key: os.environ.get(var) for key, var in SLURM_VARIABLES.items()}}


@dataclass
class Run:
    """What a stage's body gets from the frame: its arguments, the validated config (None for a stage without
    one), its experiment, and the provenance record the frame writes beside its outputs."""

    args: argparse.Namespace
    config: Config | None
    provenance: dict
    staging: Path | None = None  # where the body writes; the frame renames it to --out once all is written
    started: float = 0.0  # time.time() when the stage began
    after_success: list[Callable[[], None]] = field(default_factory=list)  # once the outputs are in place

    @property
    def experiment(self) -> Experiment:
        return self.config.experiment(self.args.experiment)

    @property
    def out(self) -> Path:
        """The folder the body writes its outputs into: a staging sibling of --out (see io.staged_dir)."""
        return self.staging or Path(self.args.out)

    @property
    def data(self) -> Path:
        return Path(self.args.data)

    def seed_folders(self, root: str | Path, stage: str) -> dict[int, Path]:
        """Every seed's folder of a seeded stage under `root` (…/<experiment>/<stage>), each checked against what its
        provenance.json records, as a single --<stage> folder is; recorded in provenance `inputs`."""
        folders = {seed: Path(root, f"seed{seed}") for seed in self.config.seeds}
        for seed, folder in folders.items():
            self.provenance.setdefault("inputs", {})[f"{stage}/seed{seed}"] = verified_outputs(folder, stage)
        return folders


class Stage:
    """The frame of every stage CLI, training or analysis: parse arguments, load the validated config, check the
    pinned versions, start the stage, and turn a StageError into one line on stderr and exit code 2.

    A stage of one experiment (`experiment=True`) gets --experiment, and the hub pointed at the config's cache.
    One that runs models (`seeded`: --seed is PPO's seed; or `seed(experiment)` names it) stops at once where a
    GPU profile has no GPU and seeds everything; one that reads the data stage's files (`data`) gets --data and
    records their checksums. Where the body returns a folder, provenance.json is written into it.
    """

    def __init__(
        self,
        rule: str,
        description: str,
        *,
        config: bool = True,
        experiment: bool = False,
        seeded: bool = False,
        data: bool = False,
        seed: Callable[[Experiment], int] | None = None,
    ):
        self.rule, self.module = rule, MODULES[rule]
        self.per_experiment, self.seeded, self.reads_data, self.seed = experiment, seeded, data, seed
        self.writes_folder = False  # add_out_arg: the body's outputs are staged and renamed into --out
        self.results_out: str | None = None  # add_results_args: the option that names where to write
        self.runs_models = seeded or seed is not None
        self.parser = argparse.ArgumentParser(prog=f"python -m {self.module}", description=description)
        self.uses_config = config
        if config:
            self.parser.add_argument("--config", required=True, help="config file (YAML, or the resolved JSON)")
            self.parser.add_argument(
                "--allow-version-drift",
                action="store_true",
                help="run even if transformers/trl/peft/accelerate differ from the pinned versions",
            )
        if experiment:
            self.parser.add_argument("--experiment", required=True, help="experiment name in the config")
        if seeded:
            self.parser.add_argument("--seed", required=True, type=seed_argument, help="PPO seed (an integer >= 0)")
        if self.reads_data:
            self.parser.add_argument("--data", required=True, help="the experiment's data directory")

    def add_models_args(self) -> None:
        """--sft and --reward: the trained policy and reward model a stage starts from, where the config uses them."""
        self.parser.add_argument("--sft", help="the sft stage's directory (when policy: sft)")
        self.parser.add_argument("--reward", help="the reward stage's directory (when ppo.reward: reward_model)")

    def add_results_args(self, out: str = "--out-dir") -> None:
        """--results-dir (results/<profile>) and where to write (`--out-dir` a folder, `--out` a file), as the
        analysis stages take them; both are checked before the stage reads or writes anything."""
        self.parser.add_argument("--results-dir", type=Path, required=True, help="results/<profile>")
        self.parser.add_argument(out, type=Path, required=True, help="where to write the outputs")
        self.results_out = out

    def add_out_arg(self, where: str) -> None:
        """--out, the stage's own folder: written whole or not at all, by one live copy of the job at a time."""
        self.parser.add_argument("--out", required=True, help=f"output directory ({where})")
        self.writes_folder = True

    def run(self, body: Callable[[Run], Path | int | None], argv=None) -> int:
        """Run `body(run)`. A training body writes into `run.out` and returns it (provenance.json goes there, then
        the folder is renamed to --out); an analysis body returns its exit code (None: 0).

        A StageError or OSError ends the stage with one line on stderr and exit code 2
        (RLHF_BENCH_TRACEBACK=1 re-raises it, for whoever debugs the frame itself)."""
        args = self.parser.parse_args(argv)
        started = time.time()
        try:
            config = self._load_config(args) if self.uses_config else None
            provenance = self._provenance(args, config, started, argv) if config is not None else {}
            run = Run(args, config, provenance, started=started)
            if self.per_experiment:
                self._start(run)
            if self.results_out:
                self._check_results_args(args)
            if not self.writes_folder:
                result = body(run)
                if isinstance(result, (str, Path)) and config is not None:
                    self._finish(run, Path(result), started)
                return 0 if isinstance(result, (str, Path)) else int(result or 0)
            with output_lock(Path(args.out)), staged_dir(Path(args.out)) as run.staging:
                self._finish(run, Path(body(run)), started)
            for step in run.after_success:
                step()
        except (StageError, OSError) as exc:
            if os.environ.get("RLHF_BENCH_TRACEBACK"):
                raise
            message = describe_os_error(exc) if isinstance(exc, OSError) else exc
            print(f"{self.module}: error: {message}", file=sys.stderr)
            return 2
        return 0

    def _check_results_args(self, args: argparse.Namespace) -> None:
        input_dir(args.results_dir, "--results-dir", "the run's folder (results/<profile>)")
        where = getattr(args, self.results_out.lstrip("-").replace("-", "_"))
        if self.results_out == "--out-dir":
            output_dir(where, self.results_out, "a folder (results/<profile>, reports/<profile>)")
        else:
            output_file(where, self.results_out, "a file (e.g. results/<profile>/claims.csv)")

    def _finish(self, run: Run, folder: Path, started: float) -> None:
        """provenance.json beside the outputs, with the sha256 of each: what every reader verifies."""
        self._write_provenance(run, folder / "provenance.json", checksum_tree(folder), started)

    def write_tables(self, run: Run, tables: dict) -> None:
        """A profile-wide stage's CSV tables (name -> DataFrame) into --out-dir: all of them or none
        (io.staged_outputs), their sha256 recorded (`record`), and a line saying what was written."""
        out = run.args.out_dir
        with staged_outputs(out) as staging:
            for name, table in tables.items():
                table.to_csv(staging / name, index=False)
        self.record(run, [out / name for name in tables])
        n_rows = ", ".join(f"{name} ({len(table)} rows)" for name, table in tables.items())
        print(f"{self.module}: wrote {n_rows} to {out}")

    def record(self, run: Run, files: list[Path]) -> None:
        """For a profile-wide stage that shares its folder (aggregate, claims): the sha256 of the files it wrote,
        in `<rule>.provenance.json` beside them (layout.output_record), which their readers verify."""
        outputs = {Path(f).name: sha256_file(f) for f in files}
        self._write_provenance(run, output_record(files[0]), outputs, run.started)

    def _write_provenance(self, run: Run, record: Path, outputs: dict[str, str], started: float) -> None:
        from rlhf_bench.train import download

        provenance = run.provenance
        provenance.setdefault("hub", download.resolved())
        provenance["hardware"] = hardware()
        provenance["seconds"] = round(time.time() - started, 3)
        provenance["outputs"] = outputs
        write_json(record, provenance)

    def _load_config(self, args: argparse.Namespace) -> Config:
        config = load(args.config)
        if config.hf_hub_offline:
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            os.environ["HF_DATASETS_OFFLINE"] = "1"
        if getattr(args, "experiment", None) is not None and args.experiment not in config.experiments:
            raise ConfigError(
                f"{args.config}: --experiment '{args.experiment}' is not one of its experiments "
                f"({', '.join(sorted(config.experiments))}). Fix: pass one of those."
            )
        return config

    def _provenance(self, args: argparse.Namespace, config: Config, started: float, argv) -> dict:
        return {
            "stage": self.rule,
            "experiment": getattr(args, "experiment", None),
            "seed": getattr(args, "seed", None),
            "versions": installed_versions(),
            "version_drift": check_versions(args.allow_version_drift or config.allow_version_drift),
            "git_commit": git_commit(),
            "config_sha256": config.sha256,
            "command": shlex.join([*self.parser.prog.split(), *(sys.argv[1:] if argv is None else argv)]),
            "started_utc": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
            "data_checksums": {},
            "scheduler": scheduler(),
        }

    def _start(self, run: Run) -> None:
        """The start-up every training stage shares, in this order: fail fast, then cache, seed, and the inputs
        verified against the checksums their producers recorded."""
        from rlhf_bench.train import download

        if self.runs_models:
            from rlhf_bench.train import models  # torch and transformers only where a stage runs models

            where = " ".join([self.rule, run.args.experiment, *([f"seed {run.args.seed}"] if self.seeded else [])])
            models.require_gpu(run.config.require_gpu, where)
        cache = Path(run.config.hub_cache).expanduser() if run.config.hub_cache else None
        if cache is not None and cache.exists() and not cache.is_dir():
            raise StageError(
                f"{run.args.config}: hub_cache: '{cache}' is a file, not a folder. Fix: point it at a folder."
            )
        download.use_cache(run.config.hub_cache)
        if self.runs_models:
            seed = run.args.seed if self.seeded else self.seed(run.experiment)
            seed_everything(seed, run.config.threads, run.config.portable_cpu_kernels)
        if self.reads_data:
            record = run.data / "checksums.json"
            run.provenance["data_checksums"] = verify_checksums(run.data, read_checksums(run.data), record)
        # The trained models a stage starts from, checked against what their stage recorded writing.
        for name in ("sft", "reward", "ppo", "dpo_pairs"):
            folder = getattr(run.args, name, None)
            if folder:
                run.provenance.setdefault("inputs", {})[name] = verified_outputs(folder, name)
            elif name in vars(run.args) and name in needed_models(run.experiment):
                raise StageError(
                    f"--{name}: missing, but {run.args.config} needs it ({needed_models(run.experiment)[name]}). "
                    f"Fix: pass --{name} results/<profile>/{run.args.experiment}/{name}."
                )
