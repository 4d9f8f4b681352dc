"""Frontier arm dpo (one job per seed): trl 0.7.4's DPOTrainer (Rafailov et al. 2023) for every beta of
`frontier.dpo.beta`, each from the same starting policy, then measured as evaluate measures PPO's policy.

The loss is DPOTrainer's own ("sigmoid"): -log sigmoid(beta * ((log pi(y_w) - log ref(y_w)) - (log pi(y_l) -
log ref(y_l)))), with the reference the starting policy (LoRA: the policy with its adapter disabled, as PPO's). The
pairs share a prompt: the data stage's (pairwise, hh: answers after a common prompt; pairs whose prompts differ or
whose answers are identical are left out and counted), or the dpo_pairs stage's (`pairs: policy`).
"""

from __future__ import annotations

import csv
import math
import tempfile
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from rlhf_bench.io import StageError, write_parquet
from rlhf_bench.runtime import Stage
from rlhf_bench.train import models
from rlhf_bench.train.data import load_records
from rlhf_bench.train.dpo_pairs import PAIRS
from rlhf_bench.train.evaluate import Evaluator
from rlhf_bench.train.policy import lora_config, policy_path

ARM, SETTING = "dpo", "beta"
LOG_COLUMNS = ("beta", "step", "loss", "rewards_accuracy", "rewards_margin", "learning_rate")


def beta_name(beta: float) -> str:
    return f"beta-{beta:g}"


def data_pairs(records: list[dict]) -> tuple[list[dict], dict]:
    """The data stage's pairs as DPO reads them (prompt, and the chosen and rejected answers after it): only pairs
    whose texts both start with their prompt and differ after it."""
    pairs, counts = [], {"pairs": len(records), "prompt_differs": 0, "identical": 0}
    for record in records:
        prompt, chosen, rejected = record["prompt"], record["chosen"], record["rejected"]
        if not (chosen.startswith(prompt) and rejected.startswith(prompt)):
            counts["prompt_differs"] += 1
        elif chosen == rejected:
            counts["identical"] += 1
        else:
            pairs.append({"prompt": prompt, "chosen": chosen[len(prompt) :], "rejected": rejected[len(prompt) :]})
    return pairs, {**counts, "used": len(pairs)}


def build_trainer(experiment, start_from: str, pairs: list[dict], beta: float, seed: int, workdir: str):
    """DPOTrainer on `pairs` for one beta, from a freshly seeded copy of the starting policy."""
    import datasets
    import transformers
    from trl import DPOTrainer

    settings = experiment.frontier.dpo
    transformers.set_seed(seed)  # each beta from the same start, whatever ran before it
    on_gpu = torch.cuda.is_available()
    precision = experiment.ppo.mixed_precision if on_gpu else "no"
    args = transformers.TrainingArguments(
        output_dir=workdir,
        max_steps=settings.steps,
        per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        warmup_steps=settings.warmup_steps,
        lr_scheduler_type="linear",
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=seed,
        data_seed=seed,
        remove_unused_columns=False,  # DPOTrainer's collator reads prompt/chosen/rejected itself
        fp16=precision == "fp16",
        bf16=precision == "bf16",
        no_cuda=not on_gpu,
        disable_tqdm=True,
        log_level="warning",
    )
    tokenizer = models.load_tokenizer(start_from)
    dataset = datasets.Dataset.from_dict({key: [p[key] for p in pairs] for key in ("prompt", "chosen", "rejected")})
    return DPOTrainer(
        models.load_causal_lm(start_from),
        ref_model=None,  # LoRA: the adapter disabled; else trl's frozen copy (create_reference_model)
        beta=beta,
        args=args,
        train_dataset=dataset,
        tokenizer=tokenizer,
        max_length=settings.max_length,
        max_prompt_length=settings.max_prompt_length,
        peft_config=lora_config(experiment.ppo.lora),
        padding_value=tokenizer.pad_token_id,
    )


def log_rows(trainer, beta: float) -> list[dict]:
    rows = []
    for entry in trainer.state.log_history:
        if "loss" not in entry:
            continue
        row = {"beta": beta, "step": entry["step"], "loss": entry["loss"],
               "rewards_accuracy": entry.get("rewards/accuracies"), "rewards_margin": entry.get("rewards/margins"),
               "learning_rate": entry.get("learning_rate")}  # fmt: skip
        if not all(v is None or math.isfinite(v) for v in row.values()):
            raise StageError(f"dpo {trainer.args.seed} beta {beta} step {row['step']}: non-finite training log {row}.")
        rows.append(row)
    return rows


def load_pairs(experiment, data_dir: Path, pairs_dir: Path | None) -> tuple[list[dict], dict]:
    if experiment.frontier.dpo.pairs == "policy":
        pairs = load_records(pairs_dir / PAIRS)
        return pairs, {"source": f"dpo_pairs/{PAIRS}", "used": len(pairs)}
    pairs, counts = data_pairs(load_records(data_dir / "pairs_train.jsonl"))
    return pairs, {"source": "data/pairs_train.jsonl", **counts}


def dpo(experiment, start_from: str, data_dir: Path, pairs_dir, reward_dir, seed: int, out: Path) -> dict:
    pairs, counts = load_pairs(experiment, data_dir, pairs_dir)
    if not pairs:
        raise StageError(f"{counts['source']}: no pair DPO can use ({counts}). Fix: check the data stage's pairs.")
    evaluator = Evaluator(experiment, start_from, data_dir, reward_dir, seed)
    frames, rows = [], []
    for beta in tqdm(experiment.frontier.dpo.beta, desc=f"dpo {experiment.name} seed {seed}", unit="beta"):
        with tempfile.TemporaryDirectory() as workdir:
            trainer = build_trainer(experiment, start_from, pairs, beta, seed, workdir)
            trainer.train()
        rows += log_rows(trainer, beta)
        policy = trainer.model.eval()
        models.check_finite_weights(policy, f"dpo {experiment.name} seed {seed} beta {beta}")
        policy.save_pretrained(out / beta_name(beta) / "adapter", safe_serialization=True)
        frames.append(evaluator.arm_frame(policy.to(evaluator.device), ARM, SETTING, beta))
    write_parquet(out / "samples.parquet", pd.concat(frames, ignore_index=True))
    with open(out / "train_log.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return {"pairs": counts}


def main(argv=None) -> int:
    stage = Stage("dpo", "DPO (trl DPOTrainer) for every configured beta, one seed (a frontier arm).",
                  experiment=True, seeded=True, data=True)  # fmt: skip
    stage.add_models_args()
    stage.parser.add_argument("--dpo-pairs", help="the dpo_pairs stage's directory (when frontier.dpo.pairs: policy)")
    stage.add_out_arg("…/<experiment>/dpo/seed<k>")

    def body(run):
        args = run.args
        if run.experiment.frontier.dpo is None:
            raise StageError(f"{args.config}: experiments.{args.experiment}.frontier.dpo is absent. Fix: add it.")
        if run.experiment.frontier.dpo.pairs == "policy" and not args.dpo_pairs:
            raise StageError(
                f"--dpo-pairs: missing, but {args.config} has frontier.dpo.pairs: policy. "
                f"Fix: pass --dpo-pairs results/<profile>/{args.experiment}/dpo_pairs."
            )
        run.provenance |= dpo(
            run.experiment, policy_path(run.experiment, args.sft), run.data, args.dpo_pairs and Path(args.dpo_pairs),
            args.reward and Path(args.reward), args.seed, run.out,
        )  # fmt: skip
        return run.out

    return stage.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
