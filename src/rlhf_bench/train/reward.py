"""Stage 3, reward: a one-logit encoder trained on preference pairs, and the rewards PPO uses.

Loss (objective `pairwise`): -log sigmoid(r_chosen - r_rejected), the pairwise ranking loss of InstructGPT
(Ouyang et al. 2022, eq. 1) with one comparison per prompt; the reward is the logit. Objective `binary` (seeds/002,
"binary classifier trained on preference pairs"): each text classified on its own, chosen 1 and rejected 0,
with binary cross-entropy; the reward is the probability of 1. Accuracy, either way: the fraction of held-out
pairs with r_chosen > r_rejected (a tie counts as wrong).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import get_linear_schedule_with_warmup

from rlhf_bench import tracking
from rlhf_bench.analysis.metrics import word_count
from rlhf_bench.io import StageError, write_json
from rlhf_bench.runtime import Stage
from rlhf_bench.settings import Experiment, RewardModelSettings
from rlhf_bench.train import baseline, models
from rlhf_bench.train.checkpoint import Checkpoints, EpochLoop
from rlhf_bench.train.data import load_records


def pairwise_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """InstructGPT's ranking loss; logsigmoid keeps it finite for large margins."""
    return -F.logsigmoid(r_chosen - r_rejected).mean()


def binary_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """Each text on its own: chosen labelled 1, rejected 0, binary cross-entropy on the logits."""
    logits = torch.cat([r_chosen, r_rejected])
    labels = torch.cat([torch.ones_like(r_chosen), torch.zeros_like(r_rejected)])
    return F.binary_cross_entropy_with_logits(logits, labels)


LOSSES = {"pairwise": pairwise_loss, "binary": binary_loss}


def pairwise_accuracy(r_chosen, r_rejected) -> tuple[int, int]:
    """(correct, total): a pair is correct when the chosen text scores strictly higher."""
    chosen, rejected = np.asarray(r_chosen, dtype=float), np.asarray(r_rejected, dtype=float)
    return int((chosen > rejected).sum()), int(chosen.size)


def negative_word_count(texts: list[str]) -> list[float]:
    """The instruct-short reward (seed 000 part 2): minus the response's word count."""
    return [-float(word_count(t)) for t in texts]


class RewardScorer:
    """Scores texts with a trained reward model (batched, truncated as in training)."""

    def __init__(self, model, tokenizer, settings: RewardModelSettings, batch_size: int = 64):
        self.model, self.tokenizer, self.batch_size = model.eval(), tokenizer, batch_size
        self.max_length = settings.max_length
        self.tokenizer.truncation_side = settings.truncation_side
        self.probability = settings.objective == "binary"  # a classifier's reward is its probability

    @classmethod
    def load(cls, model_dir: str | Path, settings: RewardModelSettings) -> RewardScorer:
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").exists():
            raise StageError(f"{model_dir}: no reward model here. Fix: run the reward rule first.")
        tokenizer = models.load_tokenizer(str(model_dir))
        model = models.load_reward_encoder(str(model_dir), tokenizer, new_head=False).to(models.device())
        return cls(model, tokenizer, settings)

    def encode(self, texts: list[str]) -> dict:
        # No token_type_ids: DistilBERT takes none, and a single text needs none.
        return self.tokenizer(
            texts,
            truncation=True,
            max_length=self.max_length,
            padding=True,
            return_tensors="pt",
            return_token_type_ids=False,
        )

    @torch.no_grad()
    def __call__(self, texts: list[str]) -> list[float]:
        scores = []
        on = next(self.model.parameters()).device
        for start in range(0, len(texts), self.batch_size):
            enc = self.encode(texts[start : start + self.batch_size]).to(on)
            logits = self.model(**enc).logits[:, 0].float()
            scores += (torch.sigmoid(logits) if self.probability else logits).tolist()
        return scores


def build(settings: RewardModelSettings, texts: list[str]):
    if settings.init == "scratch":
        tokenizer = models.train_tokenizer(texts, settings.vocab_size, for_encoder=True)
        return models.scratch_reward_model(settings, tokenizer), tokenizer
    tokenizer = models.load_tokenizer(settings.init)
    return models.load_reward_encoder(settings.init, tokenizer, new_head=True), tokenizer


def evaluate_pairs(scorer: RewardScorer, pairs: list[dict]) -> dict:
    chosen = scorer([p["chosen"] for p in pairs])
    rejected = scorer([p["rejected"] for p in pairs])
    correct, total = pairwise_accuracy(chosen, rejected)
    return {
        "n_pairs": total,
        "n_correct": correct,
        "accuracy": correct / total,
        "mean_margin": float(np.mean(np.subtract(chosen, rejected))),
    }


def train(
    settings: RewardModelSettings,
    train_pairs: list[dict],
    test_pairs: list[dict],
    out_dir: Path,
    checkpoints: Checkpoints | None = None,
    log: tracking.Log = tracking.no_log,
) -> dict:
    """Train (resuming from the newest checkpoint of this job, if any), evaluate on both splits, save the model;
    `log(values, step)` gets each step's loss and accuracy on its batch, each epoch's loss and the final accuracies
    (rlhf_bench.tracking)."""
    texts = [p[side] for p in train_pairs for side in ("chosen", "rejected")]
    model, tokenizer = build(settings, texts)
    on = models.device()
    model.to(on)
    if settings.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    autocast, scaler, precision = models.autocast(settings.mixed_precision, on)
    scorer = RewardScorer(model, tokenizer, settings)
    loss_fn = LOSSES[settings.objective]
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    steps_per_epoch = -(-len(train_pairs) // settings.batch_size)
    warmup = int(settings.warmup_fraction * steps_per_epoch)
    schedule = get_linear_schedule_with_warmup(optimizer, warmup, settings.epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(settings.seed)
    loop = EpochLoop(model, optimizer, schedule, generator, checkpoints, scaler)
    loop.resume(settings.epochs * steps_per_epoch)
    loss_curve = loop.history
    started = time.time()
    model.train()
    bar = tqdm(total=settings.epochs * steps_per_epoch, initial=loop.step, desc="reward model", unit="step",
               mininterval=5)  # fmt: skip
    with bar:
        for epoch, order in loop.epochs(len(train_pairs), settings.epochs):
            for batch in loop.batches(order.split(settings.batch_size)):
                pairs = [train_pairs[i] for i in batch.tolist()]
                # One forward pass over chosen and rejected together: the same padding for both sides.
                enc = scorer.encode([p["chosen"] for p in pairs] + [p["rejected"] for p in pairs]).to(on)
                with autocast():
                    rewards = model(**enc).logits[:, 0].float()
                loss = loss_fn(rewards[: len(pairs)], rewards[len(pairs) :])
                models.check_finite({"loss": loss.item()}, f"reward model epoch {epoch} step {loop.step}")
                learning_rate = optimizer.param_groups[0]["lr"]
                models.optimizer_step(loss, model, optimizer, schedule, scaler)
                correct, total = pairwise_accuracy(*(side.detach().cpu() for side in rewards.split(len(pairs))))
                log({"reward/loss": loss.item(), "reward/accuracy": correct / total,
                     "reward/learning_rate": learning_rate}, loop.step)  # fmt: skip
                loop.done(loss.item())
                bar.update()
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
            loss_curve.append(sum(loop.losses) / len(loop.losses))
            log({"reward/epoch_loss": loss_curve[-1]}, loop.step - 1)
    train_seconds = time.time() - started
    models.check_finite_weights(model, "reward model after training")
    model.eval()
    metrics = {
        "model": settings.init if settings.init != "scratch" else f"{settings.architecture} (scratch)",
        "n_parameters": models.count_parameters(model),
        "train": evaluate_pairs(scorer, train_pairs),
        "test": evaluate_pairs(scorer, test_pairs),
        "loss_curve": loss_curve,
        # Timings go to provenance.json, so that this file is byte-identical across reruns.
        "throughput": {
            "train_seconds": train_seconds,
            "pairs_per_second": settings.epochs * len(train_pairs) / train_seconds,
        },
        "precision": {
            "device": on.type,
            "mixed_precision": settings.mixed_precision,
            "ran_as": precision,
            "gradient_checkpointing": bool(getattr(model, "is_gradient_checkpointing", False)),
        },
    }
    log({f"reward/{split}_accuracy": metrics[split]["accuracy"] for split in ("train", "test")}, loop.step - 1)
    models.save(model, tokenizer, out_dir / "model")
    if settings.baselines:
        metrics["baselines"] = {
            name: baseline.run(name, train_pairs, test_pairs, settings.seed, evaluate_pairs)
            for name in settings.baselines
        }
    return metrics


def reward_function(experiment: Experiment, reward_dir: str | Path | None):
    """texts (prompt + response) and responses -> rewards, as configured for PPO and evaluation."""
    if experiment.ppo.reward == "negative_word_count":
        return lambda full_texts, responses: negative_word_count(responses)
    scorer = RewardScorer.load(Path(reward_dir) / "model", experiment.reward)
    return lambda full_texts, responses: scorer(full_texts)


def main(argv=None) -> int:
    stage = Stage("reward", "Train a reward model on preference pairs with the pairwise ranking loss.",
                  experiment=True, data=True, seed=lambda experiment: experiment.reward.seed)  # fmt: skip
    stage.add_out_arg("…/<experiment>/reward")

    def body(run):
        train_pairs, test_pairs = (load_records(run.data / f"pairs_{split}.jsonl") for split in ("train", "test"))
        settings = run.experiment.reward
        job = tracking.Job(run.config, run.experiment.name, "reward", settings.seed)
        with Checkpoints(run, "reward", run.experiment.checkpoint) as checkpoints, job.tracker() as log:
            metrics = train(settings, train_pairs, test_pairs, run.out, checkpoints, log)
        run.provenance["throughput"] = metrics.pop("throughput")
        run.provenance["precision"] = metrics.pop("precision")
        for name, result in metrics.get("baselines", {}).items():
            run.provenance["throughput"][f"{name}_seconds"] = result.pop("seconds")
        write_json(run.out / "rm_metrics.json", {"experiment": run.experiment.name, **metrics})
        return run.out

    return stage.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
