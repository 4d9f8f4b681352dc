"""Experiment tracking (config `tracking`, settings.TrackingSettings): TensorBoard or W&B, through trl's and
accelerate's own tracker support, never a logging layer of ours.

ppo: trl's PPOTrainer builds its Accelerator's tracker from PPOConfig (`Job.ppo_config_kwargs`: log_with,
tracker_project_name, project_kwargs, tracker_kwargs) and the loop logs each train_log.csv row through
`trainer.accelerator.log`. sft and reward, plain torch loops, log through accelerate.tracking's TensorBoardTracker
or WandBTracker (`Job.tracker`). Every run is named `<run_name>-<experiment>-<stage>-seed<k>`, holds the resolved
config as hyperparameters (`Job.hyperparameters`), and lies under `tracking.dir` (default
results/<profile>/tracking). W&B runs offline where the hub is (`hf_hub_offline`), or as `tracking.offline` says:
nothing reaches the network, and `wandb sync` uploads later. The tracker only reads what the loops computed: the
CSV files and metrics are the same whatever the backend.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rlhf_bench.layout import Layout
from rlhf_bench.settings import Config

Log = Callable[[dict, int], None]  # log(values, step)


def no_log(values: dict, step: int) -> None:
    """The log of a job with `tracking.backend: none` (the CSV files are written regardless)."""


def flat(value, prefix: str = "", into: dict | None = None) -> dict:
    """Nested config blocks as `block/key` entries; lists as JSON text: TensorBoard's hparams take only scalars."""
    into = {} if into is None else into
    for key, item in value.items():
        if isinstance(item, dict):
            flat(item, f"{prefix}{key}/", into)
        else:
            into[f"{prefix}{key}"] = json.dumps(item) if isinstance(item, list) else item
    return into


@dataclass(frozen=True)
class Job:
    """One tracked job: a stage of an experiment, at a seed (PPO's, or the sft/reward block's own)."""

    config: Config
    experiment: str
    stage: str
    seed: int

    @property
    def tracking(self):
        return self.config.tracking

    @property
    def on(self) -> bool:
        return self.tracking.backend != "none"

    @property
    def name(self) -> str:
        return f"{self.tracking.run_name or self.config.profile}-{self.experiment}-{self.stage}-seed{self.seed}"

    @property
    def directory(self) -> Path:
        return Path(Layout(self.config.raw).tracking)

    def hyperparameters(self) -> dict:
        """The resolved config of this job (the top level and its experiment's blocks), flattened."""
        raw = self.config.raw
        resolved = {key: value for key, value in raw.items() if key != "experiments"}
        return flat(
            {**resolved, **raw["experiments"][self.experiment]},
            into={
                "experiment": self.experiment,
                "stage": self.stage,
                "seed": self.seed,
                "config_sha256": self.config.sha256,
            },
        )

    def wandb_kwargs(self) -> dict:
        """wandb.init's arguments besides the project; offline unless told otherwise or the hub is online."""
        offline = self.tracking.offline if self.tracking.offline is not None else self.config.hf_hub_offline
        # Absolute: W&B writes the run's files from its wandb-core service, which another process may have started
        # in another folder (it is shared through WANDB_SERVICE), and a relative dir would be read from there.
        directory = self.directory.resolve()
        return {"name": self.name, "dir": str(directory), "mode": "offline" if offline else "online"}

    def ppo_config_kwargs(self) -> dict:
        """trl PPOConfig's tracker fields, with which PPOTrainer's own Accelerator starts the run; {} when off."""
        if self.tracking.backend == "tensorboard":  # accelerate: <logging_dir>/<project name> is the run's folder
            return {"log_with": "tensorboard", "tracker_project_name": self.name,
                    "project_kwargs": {"logging_dir": str(self.directory)}}  # fmt: skip
        if self.tracking.backend == "wandb":
            return {"log_with": "wandb", "tracker_project_name": self.tracking.project,
                    "tracker_kwargs": {"wandb": self.wandb_kwargs()}}  # fmt: skip
        return {}

    def describe(self, trackers: list) -> None:
        """Store the resolved config as each tracker's hyperparameters (trl adds its PPOConfig beside them)."""
        for tracker in trackers:
            tracker.store_init_configuration(self.hyperparameters())

    @contextmanager
    def tracker(self) -> Iterator[Log]:
        """sft and reward: the job's accelerate tracker as its `log(values, step)`, finished on the way out."""
        if not self.on:
            yield no_log
            return
        from accelerate import PartialState
        from accelerate.tracking import TensorBoardTracker, WandBTracker

        PartialState()  # accelerate's trackers log through its logger, which wants the process state set up
        if self.tracking.backend == "tensorboard":
            tracker = TensorBoardTracker(self.name, self.directory)
        else:
            tracker = WandBTracker(self.tracking.project, **self.wandb_kwargs())
        self.describe([tracker])
        try:
            yield tracker.log
        finally:
            tracker.finish()
