"""Stage 5, evaluate (one job per seed): base and RLHF policy answer the same held-out prompts.

Per sample: reward (as in PPO), judge score and label (independent of the reward model), word count, and the
log-probability of the response under both policies. Per policy (metrics.json):
  reward_mean/std     mean/std of the PPO reward
  judge_*             mean positivity and the negative/positive ratios by the judge label
  length_mean/median  words per response
  kl_mean             mean of log pi_rlhf(y) - log pi_base(y) over RLHF samples y: the Monte-Carlo estimate of
                      KL(pi_rlhf || pi_base) per response, as trl's objective/kl (0 for the base policy)
  perplexity          exp(-sum log pi_base(y) / tokens) of the policy's responses: fluency under the base
  distinct_2          distinct word bigrams / all word bigrams (Li et al. 2016): diversity
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from peft import PeftModel
from tqdm import tqdm

from rlhf_bench.analysis.metrics import policy_metrics, word_count
from rlhf_bench.io import StageError, write_json, write_parquet
from rlhf_bench.runtime import Stage
from rlhf_bench.settings import Experiment, GenerationSettings
from rlhf_bench.train import models
from rlhf_bench.train.data import load_records
from rlhf_bench.train.judge import make_judge
from rlhf_bench.train.policy import generation_kwargs, policy_path
from rlhf_bench.train.reward import reward_function

POLICIES = ("base", "rlhf")


def cut_at_eos(ids: torch.Tensor, eos: int) -> torch.Tensor:
    """A generated continuation up to and including its first eos (the rest is padding)."""
    hits = (ids == eos).nonzero()
    return ids[: hits[0, 0] + 1] if len(hits) else ids


@torch.no_grad()
def generate(model, tokenizer, prompts: list[str], settings: GenerationSettings, batch_size: int) -> tuple[list, list]:
    """Query and response token ids per prompt, the whole batch in one generate call."""
    tokenizer.padding_side = tokenizer.truncation_side = "left"
    limit = models.prompt_token_limit(model.config, settings.max_new_tokens)
    queries, responses = [], []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        enc = tokenizer(
            batch, return_tensors="pt", padding=True, truncation=True, max_length=limit, return_token_type_ids=False
        )
        out = model.generate(**enc.to(model.device), **generation_kwargs(settings, tokenizer)).cpu()
        for row, mask in zip(out, enc.attention_mask.cpu(), strict=True):
            queries.append(row[(1 - mask).sum() : enc.input_ids.shape[1]])
            responses.append(cut_at_eos(row[enc.input_ids.shape[1] :], tokenizer.eos_token_id))
    return queries, responses


@torch.no_grad()
def response_logprobs(model, queries: list, responses: list, pad_id: int, batch_size: int) -> list[float]:
    """Summed log-probability of each response given its query (right padding, so positions start at 0)."""
    sums = []
    for start in range(0, len(queries), batch_size):
        pairs = list(zip(queries[start : start + batch_size], responses[start : start + batch_size], strict=True))
        width = max(len(q) + len(r) for q, r in pairs)
        ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, (q, r) in enumerate(pairs):
            ids[i, : len(q) + len(r)] = torch.cat([q, r])
            mask[i, : len(q) + len(r)] = 1
        logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1).cpu()
        for i, (q, r) in enumerate(pairs):
            positions = torch.arange(len(q) - 1, len(q) + len(r) - 1)
            sums.append(float(logprobs[i, positions, r].sum()))
    return sums


def rlhf_policy(start_from: str, adapter: Path, seed: int):
    """The trained policy: base + LoRA adapter, or (ppo.lora.enabled: false) the whole trained model."""
    if (adapter / "adapter_config.json").exists():
        # peft 0.5.0 falls back to adapter_model.bin (a pickle) when the safetensors file is absent: never.
        weights = adapter / "adapter_model.safetensors"
        if not weights.is_file():
            raise StageError(f"{weights}: missing (a pickle is never loaded instead). Fix: rerun the ppo rule.")
        try:
            return PeftModel.from_pretrained(models.load_causal_lm(start_from), str(adapter))
        except models.LOAD_ERRORS as exc:
            raise StageError(
                f"{weights}: cannot load the LoRA adapter ({type(exc).__name__}). Fix: rerun the ppo rule."
            ) from None
    if (adapter / "config.json").exists():
        return models.load_causal_lm(str(adapter))
    raise StageError(f"{adapter}: no trained policy here. Fix: run the ppo rule for seed {seed} first.")


class Evaluator:
    """What every policy of an experiment is measured with, so that points of every arm are comparable: the same
    held-out prompts, reward, judge and base policy, and the same random stream per seed."""

    def __init__(self, experiment: Experiment, start_from: str, data_dir: Path, reward_dir, seed: int, prompts=None):
        """`prompts`: others than the held-out ones (a user's own, evaluation.prompts_file)."""
        self.experiment, self.settings, self.seed = experiment, experiment.evaluate, seed
        self.device = models.device()
        self.tokenizer = models.load_tokenizer(start_from)
        self.base = models.load_causal_lm(start_from).to(self.device).eval()
        held_out = [r["prompt"] for r in load_records(data_dir / "prompts_eval.jsonl")][: self.settings.num_samples]
        self.prompts = list(prompts) if prompts is not None else held_out
        self.score = reward_function(experiment, reward_dir)
        self.judge = make_judge(self.settings, self.device)

    def logprobs(self, policy, queries: list, responses: list) -> list[float]:
        return response_logprobs(policy, queries, responses, self.tokenizer.eos_token_id, self.settings.batch_size)

    def answers(self, policy, prompts: list[str] | None = None) -> tuple[list, list, list[str]]:
        """Query and response ids and texts of `policy` for the held-out prompts (or `prompts`), sampled from the
        seed's stream: every policy of a seed draws the same random numbers, a paired comparison."""
        torch.manual_seed(self.seed)
        queries, responses = generate(
            policy, self.tokenizer, prompts or self.prompts, self.settings.generation, self.settings.batch_size
        )
        return queries, responses, self.tokenizer.batch_decode(responses, skip_special_tokens=True)

    def frame(self, texts: list[str], responses: list, kl, logprob_base: list[float]) -> pd.DataFrame:
        """Per-sample measurements of one policy's answers to the held-out prompts; `kl` is each answer's
        log pi(y) - log pi_base(y) (whose mean estimates KL(pi || pi_base)), or an arm's own estimate."""
        prompts, settings = self.prompts, self.settings
        full_texts = [p + t for p, t in zip(prompts, texts, strict=True)]
        judged = (
            self.judge([p + t if settings.judge_input == "full" else t for p, t in zip(prompts, texts, strict=True)])
            if self.judge
            else None
        )
        return pd.DataFrame(
            {
                "experiment": self.experiment.name,
                "seed": self.seed,
                "prompt_id": np.arange(len(prompts)),
                "prompt": prompts,
                "response": texts,
                "reward": np.asarray(self.score(full_texts, texts), dtype=float),
                "judge_score": [s for s, _ in judged] if judged else np.nan,
                "judge_label": [label for _, label in judged] if judged else "",
                "word_count": [word_count(t) for t in texts],
                "n_tokens": [len(r) for r in responses],
                "kl": np.asarray(kl, dtype=float),
                "logprob_base": logprob_base,
            }
        )

    def measure(self, policy) -> pd.DataFrame:
        """`policy` answers the held-out prompts; each answer measured as `frame` says."""
        queries, responses, texts = self.answers(policy)
        logprob_base = self.logprobs(self.base, queries, responses)
        # The base policy's own answers: its log-probabilities are the base's, one scoring pass instead of two.
        logprob = logprob_base if policy is self.base else self.logprobs(policy, queries, responses)
        return self.frame(texts, responses, np.subtract(logprob, logprob_base), logprob_base)

    def arm_frame(self, policy, arm: str, setting: str, value: float) -> pd.DataFrame:
        """`measure` for a point of a frontier arm (e.g. arm dpo, setting beta, value 0.1)."""
        return with_setting(self.measure(policy), arm, setting, value)


def with_setting(frame: pd.DataFrame, arm: str, setting: str, value: float) -> pd.DataFrame:
    """A frontier arm's samples: which arm and which point of its sweep, before the per-sample columns."""
    for position, (name, item) in enumerate((("arm", arm), ("setting", setting), ("value", float(value)))):
        frame.insert(2 + position, name, item)
    return frame


def evaluate(experiment: Experiment, start_from: str, adapter: Path, data_dir: Path, reward_dir, seed: int):
    evaluator = Evaluator(experiment, start_from, data_dir, reward_dir, seed)
    policies = {"base": evaluator.base, "rlhf": rlhf_policy(start_from, adapter, seed).to(evaluator.device).eval()}
    frames = []
    for name in tqdm(POLICIES, desc=f"evaluate {experiment.name} seed {seed}", unit="policy"):
        frame = evaluator.measure(policies[name])
        frame.insert(2, "policy", name)
        frames.append(frame)
    samples = pd.concat(frames, ignore_index=True)
    has_judge = evaluator.judge is not None
    metrics = {
        "experiment": experiment.name,
        "seed": seed,
        "n_prompts": len(evaluator.prompts),
        "policies": {name: policy_metrics(samples[samples.policy == name], has_judge) for name in POLICIES},
    }
    return samples, metrics


def main(argv=None) -> int:
    stage = Stage("evaluate", "Base vs RLHF policy on held-out prompts, one seed.", experiment=True, seeded=True,
                  data=True)  # fmt: skip
    stage.add_models_args()
    stage.parser.add_argument("--ppo", required=True, help="the ppo stage's directory for this seed")
    stage.add_out_arg("…/<experiment>/evaluate/seed<k>")

    def body(run):
        args = run.args
        samples, metrics = evaluate(
            run.experiment,
            policy_path(run.experiment, args.sft),
            Path(args.ppo) / "adapter",
            run.data,
            args.reward and Path(args.reward),
            args.seed,
        )
        write_parquet(run.out / "samples.parquet", samples)
        write_json(run.out / "metrics.json", metrics)
        return run.out

    return stage.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
