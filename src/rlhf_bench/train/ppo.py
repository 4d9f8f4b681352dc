"""Stage 4, ppo (one job per seed): trl.PPOTrainer with a peft LoRA adapter on the policy.

The loop is TRL v0.7.4's gpt2-sentiment example (examples/scripts/ppo.py): sample a batch of prompts,
generate the whole batch at once, score query + response, `trainer.step`. With LoRA the reference model is
the policy with its adapter disabled (trl does this itself for a peft model), so no second copy is held;
without (`ppo.lora.enabled: false`, the example's default) trl keeps a frozen copy and the whole policy trains.

Guards: trl skips a mini-batch whose mean policy ratio exceeds `ratio_threshold` (the loss spikes that very
short responses cause, trl PR #488) and only warns; every skip is counted (train_log.csv `skipped`, and in
provenance.json with the steps where every mini-batch was skipped and the responses that were only an end
token). A NaN or inf in a logged value or a trained weight stops the job with its step.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from tqdm import tqdm
from trl import AutoModelForCausalLMWithValueHead, PPOConfig, PPOTrainer
from trl.core import convert_to_scalar

from rlhf_bench import tracking
from rlhf_bench.analysis.metrics import TIMING_COLUMNS, word_count
from rlhf_bench.config import path_step
from rlhf_bench.io import StageError
from rlhf_bench.layout import PPO_PATH, ppo_path_dir
from rlhf_bench.runtime import Stage
from rlhf_bench.settings import Experiment, PPOSettings
from rlhf_bench.train import checkpoint, download, models
from rlhf_bench.train.data import load_records
from rlhf_bench.train.policy import generation_kwargs, lora_config, policy_path
from rlhf_bench.train.reward import reward_function

LOG_COLUMNS = (
    "step", "reward_mean", "reward_std", "kl", "kl_coef", "entropy", "policy_loss", "value_loss",
    "response_words_mean", "skipped", "skipped_total",
)  # fmt: skip


def write_table(path: Path, rows: list[dict], columns: tuple[str, ...]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def trl_ppo_config(settings: PPOSettings, model_name: str, seed: int, **tracker) -> PPOConfig:
    """trl's PPOConfig from ours: every field of PPOSettings that PPOConfig has, under the same name; `tracker`:
    its tracker fields (rlhf_bench.tracking.Job.ppo_config_kwargs)."""
    trl_fields = {f.name for f in dataclasses.fields(PPOConfig)}
    ours = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings) if f.name in trl_fields}
    return PPOConfig(
        **ours, model_name=model_name, seed=seed, accelerator_kwargs={"mixed_precision": settings.mixed_precision},
        **tracker,
    )  # fmt: skip


def build_trainer(experiment: Experiment, start_from: str, seed: int, tracker: dict | None = None) -> PPOTrainer:
    settings = experiment.ppo
    start = str(download.resolve(start_from, "model", "policy"))
    tokenizer = models.load_tokenizer(start)
    lora = lora_config(settings.lora)
    # trl's from_pretrained first builds a throwaway Accelerator(), which fixes the process's precision from the
    # environment (what `accelerate launch --mixed_precision` sets); PPOTrainer's own must agree with it, or
    # accelerate refuses ("AcceleratorState has already been initialized").
    os.environ["ACCELERATE_MIXED_PRECISION"] = settings.mixed_precision
    try:
        model = AutoModelForCausalLMWithValueHead.from_pretrained(start, peft_config=lora, use_safetensors=True)
    except models.LOAD_ERRORS as exc:
        raise StageError(f"{start}: cannot load the policy ({type(exc).__name__}: {str(exc)[:160]}).") from None
    if settings.gradient_checkpointing:
        model.pretrained_model.gradient_checkpointing_enable()
        if settings.lora.enabled:
            model.pretrained_model.enable_input_require_grads()  # LoRA freezes the embeddings: grads need a path
    config = trl_ppo_config(settings, start_from, seed, **(tracker or {}))
    return PPOTrainer(config, model, ref_model=None, tokenizer=tokenizer)


@dataclass
class Progress:
    """What the loop accumulates: train_log.csv's rows, each step's timing (timings.csv: kept apart so that the log
    is byte-identical across reruns and resumes) and the guard counts. A checkpoint holds it."""

    rows: list[dict] = field(default_factory=list)
    timings: list[dict] = field(default_factory=list)
    skipped_total: int = 0
    fully_skipped: int = 0
    end_token_only: int = 0


def checkpoint_state(trainer: PPOTrainer, rng: np.random.Generator, progress: Progress) -> tuple[dict, dict]:
    """Everything the loop's future depends on: trainable weights (LoRA adapter or whole policy, value head),
    Adam's moments, the adaptive KL coefficient, trl's running reward moments, every random stream, the progress."""
    tensors, state = checkpoint.training_state(trainer.optimizer, trainer.lr_scheduler)
    tensors |= {f"model/{name}": p for name, p in trainer.model.named_parameters() if p.requires_grad}
    moments = {name: getattr(trainer.running, name) for name in ("mean", "std", "var", "count")}
    tensors |= {f"running/{name}": value for name, value in moments.items() if torch.is_tensor(value)}
    kl = trainer.kl_ctl.value
    state["ppo"] = {
        "kl_coef": float(kl),  # exact for float32 and float64 alike
        "kl_coef_dtype": kl.dtype.name if isinstance(kl, np.generic) else None,  # trl's update makes it np.float32
        "running": {name: value for name, value in moments.items() if not torch.is_tensor(value)},
        "current_step": trainer.current_step,
        # trl leaves the policy in train mode after a step, so later rollouts sample with dropout on; a resumed
        # run must too (a freshly loaded model is in eval mode, its new value head in train mode).
        "training_modules": [name for name, module in trainer.model.named_modules() if module.training],
        "prompt_rng": rng.bit_generator.state,
        "progress": dataclasses.asdict(progress),
    }
    return tensors, state


def restore(trainer: PPOTrainer, rng: np.random.Generator, saved: checkpoint.Checkpoint) -> Progress:
    parameters = dict(trainer.model.named_parameters())
    with torch.no_grad():
        for key, value in saved.tensors.items():
            if key.startswith("model/"):
                parameters[key.removeprefix("model/")].copy_(value)
    checkpoint.restore_training(saved, trainer.optimizer, trainer.lr_scheduler)
    state = saved.state["ppo"]
    dtype = state["kl_coef_dtype"]
    trainer.kl_ctl.value = np.dtype(dtype).type(state["kl_coef"]) if dtype else state["kl_coef"]
    for name, value in state["running"].items():
        setattr(trainer.running, name, value)
    for key, value in saved.tensors.items():
        if key.startswith("running/"):
            setattr(trainer.running, key.removeprefix("running/"), value)
    trainer.current_step = state["current_step"]
    training = set(state["training_modules"])
    for name, module in trainer.model.named_modules():
        module.training = name in training
    rng.bit_generator.state = state["prompt_rng"]
    return Progress(**state["progress"])


def save_policy(trainer: PPOTrainer, folder: Path) -> None:
    """The trained policy as evaluate loads it: the LoRA adapter, or (no LoRA) the whole policy; safetensors only
    (trl's own save_pretrained pickles the value head)."""
    trainer.model.pretrained_model.save_pretrained(folder, safe_serialization=True)


def train(
    experiment: Experiment,
    start_from: str,
    data_dir: Path,
    reward_dir: Path | None,
    seed: int,
    out: Path,
    checkpoints: checkpoint.Checkpoints | None = None,
    job: tracking.Job | None = None,
) -> dict:
    """Train (resuming from the newest checkpoint of this job, if any); write the adapter (or, without LoRA, the
    whole policy), value head, train_log.csv and timings.csv; return the guard counts and the precision that ran,
    for provenance.json. With a tracked `job`, trl's own Accelerator also logs each row (and samples/s)."""
    settings = experiment.ppo
    trainer = build_trainer(experiment, start_from, seed, job.ppo_config_kwargs() if job else None)
    if job:
        job.describe(trainer.accelerator.trackers)
    tokenizer = trainer.tokenizer
    score = reward_function(experiment, reward_dir)
    prompts = [r["prompt"] for r in load_records(data_dir / "prompts_train.jsonl")]
    rng = np.random.default_rng(seed)
    gen = generation_kwargs(experiment.generation, tokenizer)
    prompt_limit = models.prompt_token_limit(
        trainer.model.pretrained_model.config, experiment.generation.max_new_tokens
    )
    encoded = {}

    def encode(index: int) -> torch.Tensor:  # each prompt tokenized once, when first drawn (a slow tokenizer is slow)
        if index not in encoded:
            encoded[index] = tokenizer(prompts[index], return_tensors="pt").input_ids[0][-prompt_limit:]
        return encoded[index]

    saved = checkpoints.begin(settings.steps) if checkpoints else None
    progress = restore(trainer, rng, saved) if saved else Progress()
    # The policy along the way (frontier.ppo_path), kept beside the checkpoints so that a resumed job has them.
    path_steps = [path_step(f, settings.steps) for f in experiment.frontier.ppo_path]
    kept = checkpoints.folder if checkpoints else out
    if saved is None:  # from step 0: every one is made anew, none of an earlier job is left to be copied
        shutil.rmtree(kept / PPO_PATH, ignore_errors=True)
    done = len(progress.rows) if saved else 0
    missing = [n for n in path_steps if n <= done and not ppo_path_dir(kept, n).is_dir()]
    if missing:
        raise StageError(
            f"{ppo_path_dir(kept, missing[0])}: the policy at step {missing[0]} (frontier.ppo_path) is missing from "
            f"the checkpoint resumed at step {len(progress.rows)}. Fix: delete {kept} to train this seed from step 0."
        )
    minibatches_per_step = settings.ppo_epochs * (settings.batch_size // settings.mini_batch_size)
    steps = range(len(progress.rows), settings.steps)
    for step in tqdm(steps, desc=f"ppo {experiment.name} seed {seed}", unit="step", mininterval=5,
                     initial=steps.start, total=settings.steps):  # fmt: skip
        started = time.time()
        drawn = rng.choice(len(prompts), settings.batch_size, replace=False)
        batch = [prompts[i] for i in drawn]
        queries = [encode(i) for i in drawn]
        # One generate call for the whole batch (trl's default batch_size=4 would loop).
        responses = trainer.generate(queries, batch_size=len(queries), return_prompt=False, **gen)
        texts = tokenizer.batch_decode(responses, skip_special_tokens=True)
        rewards = score([p + t for p, t in zip(batch, texts, strict=True)], texts)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            stats = trainer.step(queries, responses, [torch.tensor(r, dtype=torch.float32) for r in rewards])
        stats = convert_to_scalar(stats)  # as trl does itself unless it logs to W&B (which takes the arrays)
        # trl zeroes the loss of a mini-batch whose policy ratio explodes and only warns: count them.
        skipped = sum("Skipping batch" in str(w.message) for w in caught)
        progress.skipped_total += skipped
        progress.fully_skipped += int(skipped >= minibatches_per_step)
        progress.end_token_only += sum(len(r) <= 1 for r in responses)
        row = {
            "step": step,
            "reward_mean": float(np.mean(rewards)),
            "reward_std": float(np.std(rewards)),
            "kl": float(stats["objective/kl"]),
            "kl_coef": float(stats["objective/kl_coef"]),
            "entropy": float(stats["objective/entropy"]),
            "policy_loss": float(stats["ppo/loss/policy"]),
            "value_loss": float(stats["ppo/loss/value"]),
            "response_words_mean": float(np.mean([word_count(t) for t in texts])),
            "skipped": skipped,
            "skipped_total": progress.skipped_total,
        }
        where = f"ppo {experiment.name} seed {seed} step {step}"
        models.check_finite({k: v for k, v in row.items() if k != "step"}, where)
        models.check_finite_weights(trainer.model, where)
        seconds = time.time() - started
        progress.rows.append(row)
        progress.timings.append({"step": step, "seconds": round(seconds, 4),
                                 "samples_per_s": round(len(batch) / seconds, 3)})  # fmt: skip
        logged = {**row, "samples_per_s": progress.timings[-1]["samples_per_s"]}
        trainer.accelerator.log({f"ppo/{k}": v for k, v in logged.items() if k != "step"}, step=step)
        if step + 1 in path_steps:
            if checkpoints:
                checkpoints.snapshot(ppo_path_dir(kept, step + 1), lambda folder: save_policy(trainer, folder))
            else:
                save_policy(trainer, ppo_path_dir(out, step + 1))
        if checkpoints:
            checkpoints.after_step(step + 1, lambda: checkpoint_state(trainer, rng, progress))
    trainer.accelerator.end_training()  # closes the tracker's run (nothing without one)
    write_table(out / "train_log.csv", progress.rows, LOG_COLUMNS)
    write_table(out / "timings.csv", progress.timings, TIMING_COLUMNS)
    # Without LoRA `adapter/` holds the whole trained policy (config + model.safetensors), which evaluate loads as such.
    save_policy(trainer, out / "adapter")
    (out / PPO_PATH).mkdir(exist_ok=True)  # a rule output, empty without frontier.ppo_path
    if kept != out:
        for n in path_steps:
            shutil.copytree(ppo_path_dir(kept, n), ppo_path_dir(out, n))
    save_file({k: v.contiguous() for k, v in trainer.model.v_head.state_dict().items()}, out / "value_head.safetensors")
    policy = trainer.model.pretrained_model
    return {
        "guards": {
            "ratio_threshold": settings.ratio_threshold,
            "skipped_minibatches": progress.skipped_total,
            "minibatches": settings.steps * minibatches_per_step,
            "fully_skipped_steps": progress.fully_skipped,
            "end_token_only_responses": progress.end_token_only,
            "responses": settings.steps * settings.batch_size,
        },
        "precision": {
            "device": trainer.accelerator.device.type,
            "mixed_precision": settings.mixed_precision,
            "ran_as": trainer.accelerator.mixed_precision if trainer.accelerator.native_amp else "no",
            "gradient_checkpointing": bool(getattr(policy, "is_gradient_checkpointing", False)),
            "lora": settings.lora.enabled,
            "trainable_parameters": models.count_parameters(policy, trainable_only=True),
            "parameters": models.count_parameters(policy),
        },
    }


def main(argv=None) -> int:
    stage = Stage("ppo", "PPO with a LoRA adapter on the policy, one seed.", experiment=True, seeded=True, data=True)
    stage.add_models_args()
    stage.add_out_arg("…/<experiment>/ppo/seed<k>")

    def body(run):
        args = run.args
        with checkpoint.Checkpoints(run, "ppo", run.experiment.checkpoint) as checkpoints:
            run.provenance |= train(
                run.experiment, policy_path(run.experiment, args.sft), run.data, args.reward and Path(args.reward),
                args.seed, run.out, checkpoints, tracking.Job(run.config, run.experiment.name, "ppo", args.seed),
            )  # fmt: skip
        return run.out

    return stage.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
