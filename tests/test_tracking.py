"""Tracking (config `tracking`): the tracker's own files, read back with its own readers, hold what train_log.csv and
the metrics files hold, for the same steps; and turning a tracker on changes no output of any stage."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import SEED, snakemake, tiny_config
from rlhf_bench import config as cfg
from rlhf_bench.layout import Layout
from rlhf_bench.tracking import Job
from rlhf_bench.train import ppo, reward, sft

FAKE_KEY = "not-a-real-key-0123456789abcdef0123456789abcdef"  # W&B API keys are 40+ characters


def tracked_config(**tracking) -> cfg.Config:
    return cfg.from_dict({**tiny_config(), "tracking": tracking})


# ------------------------------------------------------------------------------------------- config


def test_tracking_is_off_by_default_and_lies_under_the_results():
    loaded = cfg.from_dict(tiny_config())
    assert loaded.tracking.backend == "none"
    assert Layout(loaded.raw).tracking == "results/smoke/tracking"
    assert not Job(loaded, "imdb-negative", "ppo", 3).ppo_config_kwargs()


@pytest.mark.parametrize(
    ("tracking", "names"),
    [
        ({"backend": "tensorbord"}, ["tracking.backend", "'tensorbord' is not one of", "'tensorboard'", "'wandb'"]),
        ({"backend": None}, ["tracking.backend", "None is not one of"]),
        ({"backend": "wandb", "project": "team/project"}, ["tracking.project", "does not match"]),
        ({"run_name": "my run"}, ["tracking.run_name", "does not match"]),
        ({"backends": "wandb"}, ["tracking", "unknown key 'backends'", "allowed: backend, dir, offline, project"]),
    ],
    ids=["misspelt", "null", "project-with-slash", "run-name-with-space", "unknown-key"],
)
def test_a_bad_tracking_value_is_one_line(tracking, names):
    with pytest.raises(cfg.ConfigError) as info:
        tracked_config(**tracking)
    message = str(info.value)
    assert "\n" not in message
    for name in names:
        assert name in message, message


def test_run_names_directory_and_wandb_mode(tmp_path):
    loaded = tracked_config(backend="wandb", dir=str(tmp_path / "runs"))
    job = Job(loaded, "imdb-negative", "ppo", 3)
    assert job.name == "smoke-imdb-negative-ppo-seed3"
    kwargs = job.ppo_config_kwargs()
    assert kwargs["log_with"] == "wandb" and kwargs["tracker_project_name"] == "rlhf-bench"
    assert kwargs["tracker_kwargs"]["wandb"] == {"name": job.name, "dir": str(tmp_path / "runs"), "mode": "offline"}
    online_hub = cfg.from_dict({**tiny_config(), "hf_hub_offline": False, "tracking": {"backend": "wandb"}})
    assert Job(online_hub, "imdb-negative", "sft", 0).wandb_kwargs()["mode"] == "online"
    forced = cfg.from_dict(
        {**tiny_config(), "hf_hub_offline": False, "tracking": {"backend": "wandb", "offline": True, "run_name": "ab"}}
    )
    job = Job(forced, "hh-positive", "reward", 0)
    assert job.wandb_kwargs()["mode"] == "offline" and job.name == "ab-hh-positive-reward-seed0"
    tensorboard = Job(tracked_config(backend="tensorboard"), "imdb-negative", "ppo", 1).ppo_config_kwargs()
    assert tensorboard == {"log_with": "tensorboard", "tracker_project_name": "smoke-imdb-negative-ppo-seed1",
                           "project_kwargs": {"logging_dir": "results/smoke/tracking"}}  # fmt: skip


def test_hyperparameters_are_the_resolved_config_flattened():
    loaded = tracked_config(backend="tensorboard")
    params = Job(loaded, "imdb-negative", "ppo", 3).hyperparameters()
    experiment = loaded.raw["experiments"]["imdb-negative"]
    assert params["experiment"] == "imdb-negative" and params["stage"] == "ppo" and params["seed"] == 3
    assert params["ppo/learning_rate"] == experiment["ppo"]["learning_rate"]
    assert params["ppo/lora/r"] == experiment["ppo"]["lora"]["r"]
    assert json.loads(params["data/prompt_words"]) == experiment["data"]["prompt_words"]
    assert params["profile"] == "smoke" and params["tracking/backend"] == "tensorboard"
    assert params["config_sha256"] == loaded.sha256
    assert all(isinstance(v, (str, int, float, bool, type(None))) for v in params.values())  # TensorBoard's hparams


# ----------------------------------------------------------------------------- the stages, tracked


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def run_tracked(chain, tmp_path: Path, backend: str, stages=("sft", "reward", "ppo")) -> tuple[Path, Path]:
    """The chain's stages again, from its data and (ppo) its sft and reward models, with a tracker on."""
    root, _, models = chain
    tracking_dir = tmp_path / "tracking"
    config = tmp_path / "tracked.yaml"
    config.write_text(yaml.safe_dump({**tiny_config(), "tracking": {"backend": backend, "dir": str(tracking_dir)}}))
    common = ["--config", str(config), "--experiment", "imdb-negative", "--data", str(root / "data")]
    mains = {"sft": sft.main, "reward": reward.main, "ppo": ppo.main}
    for stage in stages:
        extra = ["--seed", str(SEED), *models] if stage == "ppo" else []
        assert mains[stage]([*common, *extra, "--out", str(tmp_path / stage)]) == 0
    return tracking_dir, root


def assert_same_outputs(ours: Path, theirs: Path) -> None:
    """Every output of a stage byte for byte, as provenance.json's sha256 record them, less the timings."""
    recorded = [json.loads((folder / "provenance.json").read_text())["outputs"] for folder in (ours, theirs)]
    for outputs in recorded:
        outputs.pop("timings.csv", None)
    assert recorded[0] == recorded[1]


def tensorboard_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """A run folder's scalars, tag by tag, as TensorBoard's own event reader reads them: (step, value)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0}).Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def f32(values) -> list[float]:
    """TensorBoard stores scalars as float32."""
    return [float(np.float32(float(v))) for v in values]


@pytest.mark.slow
def test_tensorboard_event_files_hold_train_log_and_change_nothing(chain, tmp_path):
    tracking_dir, root = run_tracked(chain, tmp_path, "tensorboard")
    for stage in ("sft", "reward", "ppo"):
        assert_same_outputs(tmp_path / stage, root / stage)
    assert (tmp_path / "ppo" / "train_log.csv").read_bytes() == (root / "ppo" / "train_log.csv").read_bytes()

    def scalars(run: str) -> dict[str, list[tuple[int, float]]]:
        return tensorboard_scalars(tracking_dir / run)

    logged = scalars(f"smoke-imdb-negative-ppo-seed{SEED}")
    rows = read_csv(root / "ppo" / "train_log.csv")
    timings = read_csv(tmp_path / "ppo" / "timings.csv")
    steps = [int(row["step"]) for row in rows]
    assert len(steps) == tiny_config()["experiments"]["imdb-negative"]["ppo"]["steps"]
    for column in ppo.LOG_COLUMNS[1:]:
        assert [step for step, _ in logged[f"ppo/{column}"]] == steps, column
        assert [value for _, value in logged[f"ppo/{column}"]] == f32(row[column] for row in rows), column
    assert [value for _, value in logged["ppo/samples_per_s"]] == f32(row["samples_per_s"] for row in timings)
    hparams = [
        yaml.safe_load(p.read_text())
        for p in (tracking_dir / f"smoke-imdb-negative-ppo-seed{SEED}").glob("*/hparams.yml")
    ]
    ours = next(h for h in hparams if "ppo/learning_rate" in h)  # trl stores its PPOConfig beside it
    assert ours["ppo/learning_rate"] == tiny_config()["experiments"]["imdb-negative"]["ppo"]["learning_rate"]
    assert any(h.get("tracker_project_name") == f"smoke-imdb-negative-ppo-seed{SEED}" for h in hparams)

    rm = json.loads((root / "reward" / "rm_metrics.json").read_text())
    logged = scalars("smoke-imdb-negative-reward-seed0")
    assert [v for _, v in logged["reward/epoch_loss"]] == f32(rm["loss_curve"])
    assert [v for _, v in logged["reward/test_accuracy"]] == f32([rm["test"]["accuracy"]])
    losses = [v for _, v in logged["reward/loss"]]
    assert [s for s, _ in logged["reward/loss"]] == list(range(len(losses)))
    assert np.mean(losses) == pytest.approx(rm["loss_curve"][-1], rel=1e-5)  # one epoch: its mean loss
    assert all(0 <= v <= 1 for _, v in logged["reward/accuracy"])

    history = json.loads((root / "sft" / "sft_metrics.json").read_text())["history"]
    logged = scalars("smoke-imdb-negative-sft-seed0")
    assert [v for _, v in logged["sft/epoch_held_out_perplexity"]] == f32(h["held_out_perplexity"] for h in history)
    losses = [v for _, v in logged["sft/loss"]]
    assert np.mean(losses) == pytest.approx(history[-1]["train_loss"], rel=1e-5)
    assert [v for _, v in logged["sft/perplexity"]] == pytest.approx(np.exp(losses), rel=1e-5)


def wandb_records(run_dir: Path) -> list:
    """The records of an offline run's .wandb file, as W&B's own reader (`wandb leet inspect`) prints them."""
    from google.protobuf import text_format
    from wandb.proto import wandb_internal_pb2

    printed = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", str(run_dir)], capture_output=True,
                             text=True, check=True, timeout=120).stdout  # fmt: skip
    blocks = [block for block in printed.split("\n# record ") if block.strip()]
    return [text_format.Parse(block.split("\n", 1)[1], wandb_internal_pb2.Record()) for block in blocks]


def wandb_runs(tracking_dir: Path) -> dict[str, list]:
    """Every W&B run under a tracking folder, by name: its records. Each must be an offline run."""
    runs = {}
    for run_dir in sorted((tracking_dir / "wandb").glob("*-run-*")):
        assert run_dir.name.startswith("offline-run-"), run_dir  # nothing went to the network
        records = wandb_records(run_dir)
        runs[next(r.run.display_name for r in records if r.WhichOneof("record_type") == "run")] = records
    return runs


def history(records) -> dict[str, list[tuple[int, float]]]:
    """A W&B run's logged values, key by key: (step, value)."""
    logged: dict[str, list] = {}
    for record in records:
        if record.WhichOneof("record_type") == "history":
            items = {"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in record.history.item}
            for key, value in items.items():
                if not key.startswith("_"):
                    logged.setdefault(key, []).append((items["_step"], value))
    return logged


def config(records) -> dict:
    """A W&B run's config (its hyperparameters)."""
    return {u.key: json.loads(u.value_json) for r in records if r.WhichOneof("record_type") == "config"
            for u in r.config.update}  # fmt: skip


@pytest.fixture
def own_wandb_service():
    """wandb exports WANDB_SERVICE for the service it starts in this process: later tests must not inherit it."""
    before = os.environ.get("WANDB_SERVICE")
    yield
    if before is None:
        os.environ.pop("WANDB_SERVICE", None)
    else:
        os.environ["WANDB_SERVICE"] = before


@pytest.mark.slow
def test_wandb_offline_run_holds_train_log_and_no_key(chain, tmp_path, monkeypatch, own_wandb_service):
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    tracking_dir, root = run_tracked(chain, tmp_path, "wandb", stages=("reward", "ppo"))
    for stage in ("reward", "ppo"):
        assert_same_outputs(tmp_path / stage, root / stage)

    runs = wandb_runs(tracking_dir)
    assert set(runs) == {f"smoke-imdb-negative-ppo-seed{SEED}", "smoke-imdb-negative-reward-seed0"}
    records = runs[f"smoke-imdb-negative-ppo-seed{SEED}"]
    logged = history(records)
    rows = read_csv(root / "ppo" / "train_log.csv")
    for column in ppo.LOG_COLUMNS[1:]:  # W&B keeps doubles: the very values of the CSV
        assert logged[f"ppo/{column}"] == [(int(row["step"]), float(row[column])) for row in rows], column
    timings = read_csv(tmp_path / "ppo" / "timings.csv")
    assert logged["ppo/samples_per_s"] == [(int(row["step"]), float(row["samples_per_s"])) for row in timings]
    hyperparameters = config(records)
    assert hyperparameters["ppo/learning_rate"] == tiny_config()["experiments"]["imdb-negative"]["ppo"]["learning_rate"]
    assert hyperparameters["seed"] == SEED and "trl_ppo_trainer_config" in hyperparameters

    rm = json.loads((root / "reward" / "rm_metrics.json").read_text())
    logged = history(runs["smoke-imdb-negative-reward-seed0"])
    assert [v for _, v in logged["reward/epoch_loss"]] == rm["loss_curve"]
    assert [v for _, v in logged["reward/test_accuracy"]] == [rm["test"]["accuracy"]]
    assert np.mean([v for _, v in logged["reward/loss"]]) == pytest.approx(rm["loss_curve"][-1], rel=1e-12)

    for path in [*tracking_dir.rglob("*"), *tmp_path.glob("*/provenance.json")]:
        if path.is_file():
            assert FAKE_KEY.encode() not in path.read_bytes(), path


@pytest.mark.dag
@pytest.mark.parametrize("backend", ["tensorboard", "wandb"])
def test_the_dag_tracks_its_jobs(tmp_path, backend):
    """Snakemake hands `tracking` to the jobs through their config.json: sft, reward and ppo of one seed each write a
    run into results/<profile>/tracking whose PPO scalars are train_log.csv's."""
    raw = {**tiny_config(seeds=(0,)), "tracking": {"backend": backend}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(raw))
    log = "results/smoke/imdb-negative/ppo/seed0/train_log.csv"
    result = snakemake(tmp_path, log, "--cores", "1", "--configfile", str(tmp_path / "tiny.yaml"))
    assert result.returncode == 0, result.stderr[-4000:]
    rows = read_csv(tmp_path / log)
    tracking_dir = tmp_path / "results" / "smoke" / "tracking"
    names = [f"smoke-imdb-negative-{stage}" for stage in ("sft-seed0", "reward-seed0", "ppo-seed0")]
    if backend == "tensorboard":
        assert {p.name for p in tracking_dir.iterdir()} == set(names)
        logged = tensorboard_scalars(tracking_dir / names[-1])
        expected = [(int(row["step"]), value) for row, value in zip(rows, f32(r["kl"] for r in rows), strict=True)]
    else:
        runs = wandb_runs(tracking_dir)
        assert set(runs) == set(names)
        logged = history(runs[names[-1]])
        expected = [(int(row["step"]), float(row["kl"])) for row in rows]
    assert logged["ppo/kl"] == expected


@pytest.mark.parametrize("hidden", [True, False])
def test_wandb_is_hidden_from_the_libraries_unless_it_tracks(hidden):
    """RLHF_BENCH_WANDB=off (a job whose config does not track with W&B) keeps trl from importing W&B (3 s of
    every trl job) and accelerate from offering it; otherwise both see it as installed."""
    env = {k: v for k, v in os.environ.items() if k != "RLHF_BENCH_WANDB"}
    if hidden:
        env["RLHF_BENCH_WANDB"] = "off"
    code = (
        "import sys, rlhf_bench.train, trl, accelerate.tracking as t; "
        "print(trl.is_wandb_available(), t.LoggerType.WANDB in t._available_trackers, "
        "sys.modules.get('wandb') is not None)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == [str(not hidden)] * 3


@pytest.mark.parametrize("backend", ["none", "tensorboard", "wandb"])
def test_jobs_hide_wandb_unless_the_config_tracks_with_it(tmp_path, backend):
    raw = {**tiny_config(seeds=(0,)), "tracking": {"backend": backend}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(raw))
    target = "results/smoke/imdb-negative/ppo/seed0/train_log.csv"
    result = snakemake(tmp_path, target, "--dry-run", "--printshellcmds", "--configfile", str(tmp_path / "tiny.yaml"))
    assert result.returncode == 0, result.stderr[-4000:]
    commands = [line for line in result.stdout.splitlines() if "python -m rlhf_bench.train." in line]
    assert {"sft", "reward", "ppo"} <= {line.split("rlhf_bench.train.")[1].split()[0] for line in commands}
    assert all(("RLHF_BENCH_WANDB=off " in line) == (backend != "wandb") for line in commands), commands
