"""Stage prompts (one job per experiment, every seed, where `evaluation.prompts_file` is set): base and RLHF policy
answer your own prompts (seeds/002's `run_evaluation(config, custom_prompts)`), measured as evaluate measures its
held-out prompts: reward, judge, words, KL per answer. The answers go into the report beside the held-out
evaluation; they change no held-out metric and no claim. The prompts file's sha256 is in provenance.json
(`inputs.prompts`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rlhf_bench.io import sha256_file, write_parquet
from rlhf_bench.runtime import Stage
from rlhf_bench.train.evaluate import POLICIES, Evaluator, rlhf_policy
from rlhf_bench.train.policy import policy_path
from rlhf_bench.train.sources import read_prompts


def answer(experiment, start_from: str, adapter: Path, data_dir: Path, reward_dir, seed: int, prompts: list[str]):
    """One seed's base and RLHF policy (its `adapter`) answering `prompts`, as evaluate's samples."""
    evaluator = Evaluator(experiment, start_from, data_dir, reward_dir, seed, prompts=prompts)
    policies = {"base": evaluator.base, "rlhf": rlhf_policy(start_from, adapter, seed).to(evaluator.device).eval()}
    frames = []
    for name in POLICIES:
        frame = evaluator.measure(policies[name])
        frame.insert(2, "policy", name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def main(argv=None) -> int:
    stage = Stage("prompts", "Base and RLHF policy of every seed answer your prompts (evaluation.prompts_file).",
                  experiment=True, data=True, seed=lambda experiment: experiment.data.seed)  # fmt: skip
    stage.add_models_args()
    stage.parser.add_argument("--ppo-seeds", required=True, help="the ppo stage's folder, with seed<k>/ for each seed")
    stage.parser.add_argument("--prompts", required=True, help="your prompts: .txt (one a line) or .jsonl (`prompt`)")
    stage.add_out_arg("…/<experiment>/prompts")

    def body(run):
        args = run.args
        prompts = read_prompts(Path(args.prompts))
        run.provenance.setdefault("inputs", {})["prompts"] = {Path(args.prompts).name: sha256_file(args.prompts)}
        start, reward = policy_path(run.experiment, args.sft), args.reward and Path(args.reward)
        samples = pd.concat(
            [
                answer(run.experiment, start, folder / "adapter", run.data, reward, seed, prompts)
                for seed, folder in run.seed_folders(args.ppo_seeds, "ppo").items()
            ],
            ignore_index=True,
        )
        write_parquet(run.out / "samples.parquet", samples)
        return run.out

    return stage.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
