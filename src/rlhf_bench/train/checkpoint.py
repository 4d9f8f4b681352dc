"""Exact resume for the long stages (sft, reward, ppo): a checkpoint every N steps or M minutes, whichever comes
first, and on SIGTERM, SIGUSR1 or SIGINT (SLURM's warning before a time limit or a preemption, scancel, Ctrl-C);
a rerun of the same job resumes from the newest valid checkpoint and ends byte-identical to an uninterrupted run
(on a CPU; see docs/cluster.md for why a GPU may not).

A checkpoint holds everything the loop's future depends on: the trainable weights, the optimizer's and the LR
schedule's state, every random stream (python, numpy's global one and the stage's own generators, torch's CPU and
CUDA ones), the step and the stage's own counters and logs so far. Each stage says what that is (its `capture` and
`restore`); this module stores it, finds it again and decides when.

Where: `<out>.checkpoint/` beside the stage's folder (ppo/seed0.checkpoint/), which Snakemake neither declares nor
deletes when the job fails; removed once the stage's outputs are in place (`checkpoint.keep` keeps it).

Format, with no pickle anywhere (loading a checkpoint cannot run code):

    step-<n>/tensors.safetensors   every tensor: weights, optimizer moments, torch RNG states (uint8)
    step-<n>/state.json            the rest: step, counters, log rows, optimizer hyperparameters and per-parameter
                                   scalars, the schedule, python's and numpy's RNG states (integers), the job
    step-<n>/checksums.json        sha256 of the two files above

A checkpoint is written into a hidden temporary folder and renamed into place, and the previous one is kept until
the new one is whole: a kill while writing leaves the previous checkpoint, and a damaged one (its checksums) is
passed over for the one before it. A checkpoint of another job (config, data, inputs or seed differ) is refused.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from rlhf_bench.io import StageError, read_json, sha256_file, write_json
from rlhf_bench.settings import CheckpointSettings

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)
KEPT = 2  # the newest checkpoint and the one before it, in case the newest is damaged


class Interrupted(StageError):
    """A stop signal arrived; the checkpoint of the step it arrived in is written. Exit code 2: Snakemake (or SLURM's
    requeue) reruns the job, which resumes."""


@dataclass
class Checkpoint:
    step: int
    tensors: dict[str, torch.Tensor]
    state: dict


def job_identity(run, stage: str) -> dict:
    """What a checkpoint must share with the job that resumes from it: the config, the data and trained inputs
    it read (their sha256), the stage and the seed."""
    return {
        "stage": stage,
        "experiment": run.args.experiment,
        "seed": getattr(run.args, "seed", None),
        "config_sha256": run.provenance["config_sha256"],
        "data_checksums": run.provenance.get("data_checksums", {}),
        "inputs": run.provenance.get("inputs", {}),
    }


class Checkpoints:
    """The checkpoints of one job: `latest()` to resume, `after_step()` in the loop, `finished()` at the end."""

    def __init__(self, run, stage: str, settings: CheckpointSettings):
        out = Path(run.args.out)
        self.folder = out.with_name(f"{out.name}.checkpoint")
        self.identity = job_identity(run, stage)
        self.settings = settings
        self.every = settings.every_steps or 1
        self.seconds = 60 * settings.every_minutes
        self.keep = settings.keep
        self.provenance = run.provenance
        self.stage = stage
        self.last_saved = time.monotonic()
        self.stop_signal: int | None = None
        run.after_success.append(self.finished)

    # --- reading ------------------------------------------------------------------------------------------

    def begin(self, total_steps: int) -> Checkpoint | None:
        """A loop of `total_steps` steps starts: the checkpoint to resume from, if any (see `latest`)."""
        self.every = self.settings.every_steps or max(1, round(0.1 * total_steps))
        return self.latest()

    def latest(self) -> Checkpoint | None:
        """The newest whole checkpoint of this job, or None; a damaged one is passed over (with a line saying so),
        one of another job is refused."""
        for folder in sorted(self.folder.glob("step-*"), key=_step_of, reverse=True):
            try:
                checkpoint = self._read(folder)
            except (OSError, ValueError, SafetensorError, StageError) as exc:
                print(f"{self.stage}: {folder}: damaged checkpoint ({exc}); trying the one before.", file=sys.stderr)
                continue
            if checkpoint.state["job"] != self.identity:
                differs = sorted(k for k in self.identity if checkpoint.state["job"].get(k) != self.identity[k])
                raise StageError(
                    f"{folder}: a checkpoint of another job ({', '.join(differs)} differ), never used for this one. "
                    f"Fix: delete {self.folder} to start this job from step 0, or rerun it with what made it."
                )
            print(f"{self.stage}: resuming from step {checkpoint.step} ({folder})", file=sys.stderr)
            self.provenance["resumed_from_step"] = checkpoint.step
            return checkpoint
        return None

    def _read(self, folder: Path) -> Checkpoint:
        sums = read_json(folder / "checksums.json")
        for name in ("tensors.safetensors", "state.json"):
            if sha256_file(folder / name) != sums.get(name):
                raise StageError(f"{name}'s sha256 is not the one checksums.json records")
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        return Checkpoint(int(state["step"]), load_file(folder / "tensors.safetensors"), state)

    # --- writing ------------------------------------------------------------------------------------------

    def after_step(self, step: int, capture: Callable[[], tuple[dict[str, torch.Tensor], dict]]) -> None:
        """After `step` steps: a checkpoint when one is due (every N steps, every M minutes, or a stop signal);
        then, on a signal, stop."""
        due = step % self.every == 0 or time.monotonic() - self.last_saved >= self.seconds
        if due or self.stop_signal is not None:
            self.save(step, *capture())
        if self.stop_signal is not None:
            name = signal.Signals(self.stop_signal).name
            raise Interrupted(
                f"{self.stage}: stopped by {name} after step {step}; its checkpoint is in {self.folder}. "
                "Fix: rerun the same command (or Snakemake) to resume from it."
            )

    def save(self, step: int, tensors: dict[str, torch.Tensor], state: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"step-{step:08d}"
        partial = self.folder / f".step-{step:08d}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        # Contiguous copies: safetensors refuses views and tensors that share memory (GPT-2's tied embeddings).
        copies = {name: tensor.detach().cpu().contiguous().clone() for name, tensor in tensors.items()}
        save_file(copies, partial / "tensors.safetensors")
        state = {**state, "step": step, "job": self.identity}
        (partial / "state.json").write_text(json.dumps(state, sort_keys=True), encoding="utf-8")
        files = ("tensors.safetensors", "state.json")
        write_json(partial / "checksums.json", {name: sha256_file(partial / name) for name in files})
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
        for old in sorted(self.folder.glob("step-*"), key=_step_of)[:-KEPT]:
            shutil.rmtree(old, ignore_errors=True)
        self.last_saved = time.monotonic()

    def snapshot(self, final: Path, write: Callable[[Path], None]) -> None:
        """Something the stage outputs at the end but makes on the way (PPO's policy at a step of its path), into
        `final` under the checkpoint folder: written by `write(folder)` whole or not at all, and kept with the
        checkpoints so that a resumed job still has it."""
        partial = final.with_name(f".{final.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        write(partial)
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)

    def finished(self) -> None:
        """The stage's outputs are in place: its checkpoints are no longer needed (unless `keep`)."""
        if not self.keep:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Checkpoints:
        """While the stage trains, a stop signal only asks for a checkpoint at the end of the current step."""

        def ask_to_stop(number, frame):
            self.stop_signal = number

        self._previous = {number: signal.signal(number, ask_to_stop) for number in STOP_SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


def _step_of(folder: Path) -> int:
    return int(folder.name.split("-")[1])


# --- what every loop saves: random streams, optimizer, schedule ---------------------------------------------


def rng_state(generators: dict[str, torch.Generator] | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """Every random stream but a stage's numpy Generator (its `bit_generator.state` is JSON already)."""
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors |= {f"rng/cuda/{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
    for name, generator in (generators or {}).items():
        tensors[f"rng/{name}"] = generator.get_state()
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "numpy_global": [kind, keys.tolist(), position, has_gauss, gauss],
        "python": [version, list(internal), gauss_next],
    }
    return tensors, state


def restore_rng(tensors: dict[str, torch.Tensor], state: dict, generators: dict[str, torch.Generator] | None = None):
    torch.set_rng_state(tensors["rng/torch"])
    if torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[f"rng/cuda/{i}"] for i in range(torch.cuda.device_count())])
    for name, generator in (generators or {}).items():
        generator.set_state(tensors[f"rng/{name}"])
    kind, keys, position, has_gauss, gauss = state["numpy_global"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer's state_dict split into tensors (moments) and JSON (hyperparameters, scalars)."""
    saved = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in saved["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optimizer/{index}/{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": saved["param_groups"], "scalars": scalars}


def restore_optimizer(optimizer: torch.optim.Optimizer, checkpoint: Checkpoint) -> None:
    state: dict[int, dict] = {}
    for key, value in checkpoint.tensors.items():
        if key.startswith("optimizer/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value
    for index, values in checkpoint.state["optimizer"]["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": checkpoint.state["optimizer"]["param_groups"]})


def training_state(
    optimizer: torch.optim.Optimizer, schedule=None, generators: dict[str, torch.Generator] | None = None
) -> tuple[dict[str, torch.Tensor], dict]:
    """Optimizer, LR schedule and random streams: the part of a checkpoint every loop shares."""
    tensors, rngs = rng_state(generators)
    optimizer_tensors, optimizer_json = optimizer_state(optimizer)
    state = {"rng": rngs, "optimizer": optimizer_json, "schedule": schedule.state_dict() if schedule else None}
    return tensors | optimizer_tensors, state


def restore_training(checkpoint: Checkpoint, optimizer: torch.optim.Optimizer, schedule=None, generators=None) -> None:
    restore_optimizer(optimizer, checkpoint)
    if schedule is not None:
        schedule.load_state_dict(checkpoint.state["schedule"])
    restore_rng(checkpoint.tensors, checkpoint.state["rng"], generators)


class EpochLoop:
    """The epoch and batch loop of sft and reward, resumable mid-epoch. Each epoch's order is drawn from the
    stage's `generator`; a checkpoint holds the model's weights, the optimizer, schedule (and grad scaler), every
    random stream, the epoch's order and position in it, its losses so far and `history` (one entry an epoch).

        loop = EpochLoop(...); loop.resume()
        for epoch, order in loop.epochs(n_items, n_epochs):
            for batch in loop.batches(data[order].split(size)):
                ...optimizer step...; loop.done(loss)
            loop.history.append(...)
    """

    def __init__(self, model, optimizer, schedule, generator, checkpoints, scaler=None):
        self.model, self.optimizer, self.schedule, self.scaler = model, optimizer, schedule, scaler
        self.generator, self.checkpoints = generator, checkpoints
        self.step, self.epoch, self.position = 0, 0, 0
        self.order: torch.Tensor | None = None
        self.losses: list[float] = []
        self.history: list = []

    def resume(self, total_steps: int) -> None:
        checkpoint = self.checkpoints.begin(total_steps) if self.checkpoints else None
        if checkpoint is None:
            return
        on = next(self.model.parameters()).device
        weights = {k.removeprefix("model/"): v.to(on) for k, v in checkpoint.tensors.items() if k.startswith("model/")}
        self.model.load_state_dict(weights)
        restore_training(checkpoint, self.optimizer, self.schedule, {"order": self.generator})
        if self.scaler is not None:
            self.scaler.load_state_dict(checkpoint.state["scaler"])
        loop = checkpoint.state["loop"]
        self.step, self.epoch, self.position = checkpoint.step, loop["epoch"], loop["position"]
        self.losses, self.history = loop["losses"], loop["history"]
        self.order = checkpoint.tensors["loop/order"]

    def epochs(self, n_items: int, n_epochs: int) -> Iterator[tuple[int, torch.Tensor]]:
        for epoch in range(self.epoch, n_epochs):
            self.epoch = epoch
            if self.order is None:  # a resumed epoch keeps the order it was drawn with
                self.order, self.position, self.losses = torch.randperm(n_items, generator=self.generator), 0, []
            yield self.epoch, self.order
            self.order = None

    def batches(self, batches) -> Iterator[torch.Tensor]:
        yield from list(batches)[self.position :]

    def done(self, loss: float) -> None:
        """One optimizer step is done: count it, and checkpoint when one is due."""
        self.losses.append(loss)
        self.step += 1
        self.position += 1
        if self.checkpoints:
            self.checkpoints.after_step(self.step, self._capture)

    def _capture(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors, state = training_state(self.optimizer, self.schedule, {"order": self.generator})
        tensors |= {f"model/{k}": v for k, v in self.model.state_dict().items()} | {"loop/order": self.order}
        state["scaler"] = self.scaler.state_dict() if self.scaler is not None else None
        state["loop"] = {"epoch": self.epoch, "position": self.position, "losses": self.losses, "history": self.history}
        return tensors, state
