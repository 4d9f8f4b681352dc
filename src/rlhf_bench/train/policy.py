"""The policy as ppo and evaluate both use it: where it starts from, and how it samples responses."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rlhf_bench.settings import Experiment, GenerationSettings, LoraSettings


def policy_path(experiment: Experiment, sft_dir: str | Path | None) -> str:
    """The policy PPO starts from: the sft stage's model, or the configured hub id / directory."""
    return str(Path(sft_dir) / "model") if experiment.policy == "sft" else experiment.policy


def generation_kwargs(settings: GenerationSettings, tokenizer) -> dict:
    """generate() keyword arguments: sampling, with the settings' fields under their own (transformers') names."""
    # trl 0.7.4 estimates KL from sampled tokens: anything but plain sampling (top_k=0, top_p=1, T=1, no
    # min_new_tokens) biases it, and it can go negative (TRL docs, "PPO Trainer: generation settings").
    return {"do_sample": True, **dataclasses.asdict(settings), "pad_token_id": tokenizer.eos_token_id}


def lora_config(settings: LoraSettings):
    """peft's LoraConfig for the policy (ppo and dpo alike), or None where the whole policy trains."""
    if not settings.enabled:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
