"""Frontier arm ppo_path (one job per experiment, every seed): PPO's policy at the steps of `frontier.ppo_path`,
measured as evaluate measures its final policy (same prompts, judge, base policy and random stream), so PPO traces
a curve of reward against KL rather than a point. The ppo stage saved those policies (ppo/seed<k>/path/step-<n>/)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from tqdm import tqdm

from rlhf_bench.config import path_step
from rlhf_bench.io import write_parquet
from rlhf_bench.layout import ppo_path_dir
from rlhf_bench.runtime import Stage
from rlhf_bench.train.evaluate import Evaluator, rlhf_policy
from rlhf_bench.train.policy import policy_path

ARM, SETTING = "ppo", "step"


def ppo_path(experiment, start_from: str, ppo_dirs: dict[int, Path], data_dir: Path, reward_dir) -> pd.DataFrame:
    """Samples of PPO's policy at every step of `frontier.ppo_path`, for each seed's ppo folder in `ppo_dirs`."""
    steps = [path_step(f, experiment.ppo.steps) for f in experiment.frontier.ppo_path]
    frames = []
    for seed, ppo_dir in ppo_dirs.items():
        evaluator = Evaluator(experiment, start_from, data_dir, reward_dir, seed)
        for step in tqdm(steps, desc=f"ppo_path {experiment.name} seed {seed}", unit="policy"):
            policy = rlhf_policy(start_from, ppo_path_dir(ppo_dir, step), seed).to(evaluator.device).eval()
            frames.append(evaluator.arm_frame(policy, ARM, SETTING, step))
    return pd.concat(frames, ignore_index=True)


def main(argv=None) -> int:
    stage = Stage("ppo_path", "PPO's policy along its path, measured as evaluate does, every seed (a frontier arm).",
                  experiment=True, data=True, seed=lambda experiment: experiment.data.seed)  # fmt: skip
    stage.add_models_args()
    stage.parser.add_argument("--ppo-seeds", required=True, help="the ppo stage's folder, with seed<k>/ for each seed")
    stage.add_out_arg("…/<experiment>/ppo_path")

    def body(run):
        args = run.args
        ppo_dirs = run.seed_folders(args.ppo_seeds, "ppo")
        reward = args.reward and Path(args.reward)
        samples = ppo_path(run.experiment, policy_path(run.experiment, args.sft), ppo_dirs, run.data, reward)
        write_parquet(run.out / "samples.parquet", samples)
        return run.out

    return stage.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
