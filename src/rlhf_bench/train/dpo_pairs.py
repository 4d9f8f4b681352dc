"""Frontier stage dpo_pairs (one job per experiment, `frontier.dpo.pairs: policy`): preference pairs that share a
prompt, built as the DPO paper built IMDB's (Rafailov et al. 2023, section 6.1): two base-policy answers to each
PPO prompt, the one of higher reward chosen. Pairs whose answers tie are left out (they teach nothing), and
counted. pairs.jsonl holds prompt, chosen and rejected answers (without the prompt) and both rewards; its sha256 is
in provenance.json, as every stage's outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from rlhf_bench.io import atomic_write_text
from rlhf_bench.runtime import Stage
from rlhf_bench.train import models
from rlhf_bench.train.data import load_records
from rlhf_bench.train.evaluate import generate
from rlhf_bench.train.policy import policy_path
from rlhf_bench.train.reward import reward_function

PAIRS = "pairs.jsonl"


def policy_pairs(experiment, start_from: str, data_dir: Path, reward_dir, seed: int) -> tuple[list[dict], dict]:
    """(pairs, counts): two answers per PPO prompt from the base policy, ranked by the experiment's reward."""
    settings = experiment.evaluate
    tokenizer = models.load_tokenizer(start_from)
    policy = models.load_causal_lm(start_from).to(models.device()).eval()
    prompts = [r["prompt"] for r in load_records(data_dir / "prompts_train.jsonl")]
    twice = [p for p in prompts for _ in range(2)]
    torch.manual_seed(seed)
    _, responses = generate(policy, tokenizer, twice, experiment.generation, settings.batch_size)
    texts = tokenizer.batch_decode(responses, skip_special_tokens=True)
    score = reward_function(experiment, reward_dir)
    rewards = np.asarray(score([p + t for p, t in zip(twice, texts, strict=True)], texts), dtype=float).reshape(-1, 2)
    pairs, ties = [], 0
    for i, prompt in enumerate(prompts):
        (a, b), (ra, rb) = texts[2 * i : 2 * i + 2], rewards[i]
        if ra == rb:
            ties += 1
            continue
        chosen, rejected = (a, b) if ra > rb else (b, a)
        pairs.append({"prompt": prompt, "chosen": chosen, "rejected": rejected,
                      "reward_chosen": float(max(ra, rb)), "reward_rejected": float(min(ra, rb))})  # fmt: skip
    return pairs, {"prompts": len(prompts), "pairs": len(pairs), "tied_left_out": ties}


def main(argv=None) -> int:
    stage = Stage("dpo_pairs", "DPO preference pairs from two base-policy answers per PPO prompt (the DPO paper's).",
                  experiment=True, data=True, seed=lambda experiment: experiment.data.seed)  # fmt: skip
    stage.add_models_args()
    stage.add_out_arg("…/<experiment>/dpo_pairs")

    def body(run):
        args = run.args
        pairs, counts = policy_pairs(
            run.experiment, policy_path(run.experiment, args.sft), run.data, args.reward and Path(args.reward),
            run.experiment.data.seed,
        )  # fmt: skip
        lines = "".join(json.dumps(p, ensure_ascii=False, sort_keys=True) + "\n" for p in pairs)
        atomic_write_text(run.out / PAIRS, lines)
        run.provenance["pairs"] = counts
        return run.out

    return stage.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
