"""Stage 2 (optional), sft: the policy's language model, trained on the experiment's corpus.

`init: scratch` trains a byte-level BPE tokenizer and a GPT-2 from scratch (the smoke profile: no pretrained
GPT-2 can be had offline); otherwise it fine-tunes the named causal LM. Plain causal-LM training: texts
joined by <|endoftext|> and cut into blocks (the run_clm recipe of transformers' examples), so the policy
also learns where a text ends, which instruct-short's PPO needs to shorten answers.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from tqdm import tqdm
from transformers import get_linear_schedule_with_warmup

from rlhf_bench import tracking
from rlhf_bench.io import write_json
from rlhf_bench.runtime import Stage
from rlhf_bench.settings import SFTSettings
from rlhf_bench.train import models
from rlhf_bench.train.checkpoint import Checkpoints, EpochLoop
from rlhf_bench.train.data import load_records

HELD_OUT_FRACTION = 0.05


def blocks(tokenizer, texts: list[str], length: int) -> torch.Tensor:
    """Token blocks of `length` from the texts joined by eos (remainder dropped)."""
    stream: list[int] = []
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        stream += ids + [tokenizer.eos_token_id]
    usable = len(stream) // length * length
    return torch.tensor(stream[:usable], dtype=torch.long).view(-1, length)


@torch.no_grad()
@torch.inference_mode()  # no autograd graph for the held-out loss: same values, less time and memory
def mean_loss(model, data: torch.Tensor, batch_size: int) -> float:
    model.eval()
    on = next(model.parameters()).device
    losses = [model(input_ids=b.to(on), labels=b.to(on)).loss.item() for b in data.split(batch_size)]
    model.train()
    return sum(losses) / max(len(losses), 1)


def perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 700 else math.inf  # exp overflows a float past ~709


def train(
    settings: SFTSettings,
    texts: list[str],
    out_dir: Path,
    checkpoints: Checkpoints | None = None,
    log: tracking.Log = tracking.no_log,
) -> dict:
    """Train (resuming from the newest checkpoint of this job, if any) and save the model into out_dir/model;
    `log(values, step)` gets each step's loss and perplexity, and each epoch's (rlhf_bench.tracking)."""
    if settings.init == "scratch":
        tokenizer = models.train_tokenizer(texts, settings.vocab_size, for_encoder=False)
        model = models.scratch_policy(settings, tokenizer)
        length = settings.max_length
    else:
        tokenizer = models.load_tokenizer(settings.init)
        model = models.load_causal_lm(settings.init)
        length = min(settings.max_length, model.config.n_positions)

    data = blocks(tokenizer, texts, length)
    generator = torch.Generator().manual_seed(settings.seed)
    data = data[torch.randperm(len(data), generator=generator)]
    n_held_out = max(1, int(len(data) * HELD_OUT_FRACTION))
    held_out, train_data = data[:n_held_out], data[n_held_out:]

    on = models.device()
    model.to(on)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=0.01)
    steps_per_epoch = math.ceil(len(train_data) / settings.batch_size)
    total_steps = settings.epochs * steps_per_epoch
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.05 * total_steps), total_steps)
    loop = EpochLoop(model, optimizer, schedule, generator, checkpoints)
    loop.resume(total_steps)
    history = loop.history
    model.train()
    started = time.time()
    with tqdm(total=total_steps, initial=loop.step, desc="sft", unit="step", mininterval=5) as bar:
        for epoch, order in loop.epochs(len(train_data), settings.epochs):
            for batch in loop.batches(train_data[order].split(settings.batch_size)):
                batch = batch.to(on)
                loss = model(input_ids=batch, labels=batch).loss
                models.check_finite({"loss": loss.item()}, f"sft epoch {epoch} step {loop.step}")
                learning_rate = optimizer.param_groups[0]["lr"]
                models.optimizer_step(loss, model, optimizer, schedule)
                log({"sft/loss": loss.item(), "sft/perplexity": perplexity(loss.item()),
                     "sft/learning_rate": learning_rate}, loop.step)  # fmt: skip
                loop.done(loss.item())
                bar.update()
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
            held_out_loss = mean_loss(model, held_out, settings.batch_size)
            history.append(
                {
                    "epoch": epoch,
                    "train_loss": sum(loop.losses) / len(loop.losses),
                    "held_out_perplexity": math.exp(held_out_loss),
                }
            )
            log({f"sft/epoch_{k}": v for k, v in history[-1].items() if k != "epoch"}, loop.step - 1)
    seconds = time.time() - started
    models.save(model, tokenizer, out_dir / "model")
    return {
        "init": settings.init,
        "n_parameters": models.count_parameters(model),
        "vocab_size": len(tokenizer),
        "n_texts": len(texts),
        "n_train_tokens": int(train_data.numel()),
        "history": history,
        "held_out_perplexity": history[-1]["held_out_perplexity"],
        "throughput": {"train_seconds": seconds, "tokens_per_second": settings.epochs * train_data.numel() / seconds},
    }


def main(argv=None) -> int:
    stage = Stage("sft", "Train the policy's language model on the experiment's corpus.", experiment=True,
                  data=True, seed=lambda experiment: experiment.sft.seed)  # fmt: skip
    stage.add_out_arg("…/<experiment>/sft")

    def body(run):
        texts = [r["text"] for r in load_records(run.data / "corpus.jsonl")]
        settings = run.experiment.sft
        job = tracking.Job(run.config, run.experiment.name, "sft", settings.seed)
        with Checkpoints(run, "sft", run.experiment.checkpoint) as checkpoints, job.tracker() as log:
            metrics = train(settings, texts, run.out, checkpoints, log)
        run.provenance["throughput"] = metrics.pop("throughput")  # timings stay out of the metrics file
        write_json(run.out / "sft_metrics.json", metrics)
        return run.out

    return stage.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
