"""Frontier arm best_of_n (one job per experiment, every seed): the reward picks the best of n base-policy answers,
no training.

For each held-out prompt the base policy answers max(n) times; best-of-n is the answer of highest reward among the
first n (the first of equal ones), so every n of a seed reads the same draws. Its KL to the base policy:

  analytic     log n - (n - 1) / n (Stiennon et al. 2020, appendix; Gao et al. 2022, section 2): exact where
               rewards never tie, an upper bound where they do (Beirami et al. 2024) - what the frontier plots
  monte_carlo  the exact KL of best-of-n over each prompt's own max(n) draws (their empirical distribution,
               ties shared), averaged over prompts: the `kl` of each sample; it converges to the exact KL as the
               draws grow and lies below the analytic value for few draws or tied rewards (negative_word_count)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from rlhf_bench.io import write_parquet
from rlhf_bench.runtime import Stage
from rlhf_bench.train.evaluate import Evaluator, with_setting
from rlhf_bench.train.policy import policy_path

ARM, SETTING = "best_of_n", "n"


def best_indices(rewards: np.ndarray, n: int) -> np.ndarray:
    """Per row (prompt) of `rewards` (prompts x draws), the index of the best of its first n draws (the first of
    equal ones: np.argmax)."""
    return np.argmax(rewards[:, :n], axis=1)


def empirical_kl(rewards: np.ndarray, n: int) -> float:
    """KL(best-of-n || p) where p is uniform over the draws `rewards` (one prompt's): draws of equal reward form
    one level, which best-of-n reaches with probability F(level)^n - F(below)^n, shared evenly by its draws."""
    values, counts = np.unique(np.asarray(rewards, dtype=float), return_counts=True)
    upper = np.cumsum(counts) / counts.sum()
    lower = upper - counts / counts.sum()
    chosen = upper**n - lower**n
    base = counts / counts.sum()
    keep = chosen > 0
    return float(np.sum(chosen[keep] * np.log(chosen[keep] / base[keep])))


def best_of_n(experiment, start_from: str, data_dir: Path, reward_dir, seed: int) -> pd.DataFrame:
    """Samples of every n of `frontier.best_of_n` for one seed (the evaluate stage's columns, plus arm/setting)."""
    evaluator = Evaluator(experiment, start_from, data_dir, reward_dir, seed)
    ns = experiment.frontier.best_of_n
    draws, prompts = max(ns), evaluator.prompts
    # Every prompt `draws` times in a row: one generate pass over them all, from the seed's stream.
    repeated = [p for p in prompts for _ in range(draws)]
    queries, responses, texts = evaluator.answers(evaluator.base, repeated)
    rewards = np.asarray(evaluator.score([p + t for p, t in zip(repeated, texts, strict=True)], texts), dtype=float)
    rewards = rewards.reshape(len(prompts), draws)
    frames = []
    for n in tqdm(ns, desc=f"best_of_n {experiment.name} seed {seed}", unit="n"):
        picked = np.arange(len(prompts)) * draws + best_indices(rewards, n)
        chosen_queries, chosen = [queries[i] for i in picked], [responses[i] for i in picked]
        kl = [empirical_kl(row, n) for row in rewards]
        frame = evaluator.frame(
            [texts[i] for i in picked], chosen, kl, evaluator.logprobs(evaluator.base, chosen_queries, chosen)
        )
        frames.append(with_setting(frame, ARM, SETTING, n))
    return pd.concat(frames, ignore_index=True)


def main(argv=None) -> int:
    stage = Stage("best_of_n", "Best-of-n of the base policy by the reward, every seed (a frontier arm).",
                  experiment=True, data=True, seed=lambda experiment: experiment.data.seed)  # fmt: skip
    stage.add_models_args()
    stage.add_out_arg("…/<experiment>/best_of_n")

    def body(run):
        args = run.args
        reward = args.reward and Path(args.reward)
        start = policy_path(run.experiment, args.sft)
        samples = pd.concat(
            [best_of_n(run.experiment, start, run.data, reward, seed) for seed in run.config.seeds], ignore_index=True
        )
        write_parquet(run.out / "samples.parquet", samples)
        return run.out

    return stage.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
