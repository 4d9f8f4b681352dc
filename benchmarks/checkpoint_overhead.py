"""What checkpointing costs PPO: seconds per step with checkpoints at the default interval (every tenth of the
steps) against none, on the smoke profile, interleaved A/B/A/B in one process so that machine noise cancels.
Target: at most 5% overhead.

    python benchmarks/checkpoint_overhead.py [--experiment imdb-negative] [--pairs 3]

Builds the experiment's data, sft and reward stages once in a temporary folder, then runs the ppo stage (the CLI's
main, in-process: model load, training, saving) alternately with and without checkpoints. "Without" is the same
code with the interval past the last step (checkpoint.every_steps > ppo.steps), so only the writing differs.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time
from pathlib import Path

import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
TARGET_OVERHEAD = 0.05


def main(argv=None) -> int:
    from rlhf_bench.train import data, ppo, reward, sft

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="imdb-negative")
    parser.add_argument("--pairs", type=int, default=3, help="A/B pairs (each: one run with, one without)")
    args = parser.parse_args(argv)
    smoke = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    steps = smoke["experiments"][args.experiment]["ppo"]["steps"]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        configs = {}
        for arm, checkpoint in (("with", {}), ("without", {"every_steps": steps + 1, "every_minutes": 1e9})):
            config = copy.deepcopy(smoke)
            config["experiments"][args.experiment]["checkpoint"] = checkpoint
            configs[arm] = root / f"{arm}.yaml"
            configs[arm].write_text(yaml.safe_dump(config))
        common = ["--config", str(configs["with"]), "--experiment", args.experiment]
        for stage, module in (("data", data), ("sft", sft), ("reward", reward)):
            extra = [] if stage == "data" else ["--data", str(root / "data")]
            assert module.main([*common, *extra, "--out", str(root / stage)]) == 0, stage
        seconds = {"with": [], "without": []}
        for pair in range(args.pairs):
            for arm in ("with", "without") if pair % 2 == 0 else ("without", "with"):
                argv = ["--config", str(configs[arm]), "--experiment", args.experiment, "--seed", "0",
                        "--data", str(root / "data"), "--sft", str(root / "sft"), "--reward", str(root / "reward"),
                        "--out", str(root / f"ppo-{arm}-{pair}")]  # fmt: skip
                started = time.perf_counter()
                assert ppo.main(argv) == 0, arm
                seconds[arm].append(time.perf_counter() - started)
    per_step = {arm: statistics.median(values) / steps for arm, values in seconds.items()}
    overhead = per_step["with"] / per_step["without"] - 1
    print(f"ppo {args.experiment}, {steps} steps, {args.pairs} interleaved pairs (median of each arm):")
    print(f"  with checkpoints (every {max(1, round(0.1 * steps))} steps): {per_step['with']:.3f} s/step")
    print(f"  without:                           {per_step['without']:.3f} s/step")
    print(f"  ratio {per_step['with'] / per_step['without']:.3f}: overhead {100 * overhead:+.1f}% "
          f"(target <= {100 * TARGET_OVERHEAD:.0f}%)")  # fmt: skip
    return 0 if overhead <= TARGET_OVERHEAD else 1


if __name__ == "__main__":
    raise SystemExit(main())
