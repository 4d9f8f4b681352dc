"""Frontier arm ppo_path (one job per seed): PPO's policy at the steps of `frontier.ppo_path`, measured as evaluate
measures its final policy (same prompts, judge, base policy and random stream), so PPO traces a curve of
reward against KL rather than a point. The ppo stage saved those policies (ppo/seed<k>/path/step-<n>/)."""

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


def ppo_path(experiment, start_from: str, ppo_dir: Path, data_dir: Path, reward_dir, seed: int) -> pd.DataFrame:
    evaluator = Evaluator(experiment, start_from, data_dir, reward_dir, seed)
    steps = [path_step(f, experiment.ppo.steps) for f in experiment.frontier.ppo_path]
    frames = []
    for step in tqdm(steps, desc=f"ppo_path {experiment.name} seed {seed}", unit="policy"):
        policy = rlhf_policy(start_from, ppo_path_dir(ppo_dir, step), seed).to(evaluator.device).eval()
        frames.append(evaluator.arm_frame(policy, ARM, SETTING, step))
    return pd.concat(frames, ignore_index=True)


def main(argv=None) -> int:
    stage = Stage("ppo_path", "PPO's policy along its path, measured as evaluate does, one seed (a frontier arm).",
                  experiment=True, seeded=True, data=True)  # fmt: skip
    stage.add_models_args()
    stage.parser.add_argument("--ppo", required=True, help="the ppo stage's directory for this seed")
    stage.add_out_arg("…/<experiment>/ppo_path/seed<k>")

    def body(run):
        args = run.args
        samples = ppo_path(
            run.experiment, policy_path(run.experiment, args.sft), Path(args.ppo), run.data,
            args.reward and Path(args.reward), args.seed,
        )  # fmt: skip
        write_parquet(run.out / "samples.parquet", samples)
        return run.out

    return stage.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
