"""What `portable_cpu_kernels: true` costs and changes: a training and a sampling workload of the imdb-cpu policy's
shape, run alternately with each library's own widest kernels (native) and pinned to AVX2 (portable), each in a
fresh interpreter (the pins are read when a library first computes).

    python benchmarks/portable_kernels.py [--pairs 3] [--steps 20] [--threads 1]

The workload: a random-init GPT-2 of 4 layers, 256 wide, 8,192 tokens (config/imdb-cpu.yaml's policy) trained for
--steps AdamW steps on batches of 16 x 128 tokens (its sft batch), then sampling 32 new tokens for 32 prompts (its
PPO rollout). Prints seconds per arm, the portable / native time ratio, the CPU's native kernel level and the
sha256 of the trained weights per arm: the same within an arm (deterministic), and different between arms wherever
the native kernels are wider than AVX2. Writes benchmarks/out/portable_kernels.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from rlhf_bench.runtime import PORTABLE_CPU_KERNELS  # noqa: E402


def workload(steps: int, threads: int) -> dict:
    """One arm, in this process: train, then sample; seconds and the weights' sha256."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    model = GPT2LMHeadModel(
        GPT2Config(n_layer=4, n_head=4, n_embd=256, vocab_size=8192, n_positions=160, bos_token_id=0, eos_token_id=0)
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    tokens = torch.randint(0, 8192, (steps, 16, 128), generator=torch.Generator().manual_seed(1))
    started = time.perf_counter()
    for batch in tokens:
        model(batch, labels=batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    trained = time.perf_counter()
    with torch.inference_mode():
        prompts = torch.randint(0, 8192, (32, 8), generator=torch.Generator().manual_seed(2))
        model.generate(prompts, do_sample=True, max_new_tokens=32, min_new_tokens=32, pad_token_id=0)
    done = time.perf_counter()
    weights = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest()
    return {
        "train_s": trained - started,
        "sample_s": done - trained,
        "seconds": done - started,
        "weights_sha256": weights,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def arm(portable: bool, steps: int, threads: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in PORTABLE_CPU_KERNELS}
    if portable:
        env.update(PORTABLE_CPU_KERNELS)
    command = [sys.executable, __file__, "--arm", "--steps", str(steps), "--threads", str(threads)]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3, help="native/portable pairs, alternated")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--arm", action="store_true", help=argparse.SUPPRESS)  # one arm, in this process
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "portable_kernels.json")
    args = parser.parse_args(argv)
    if args.arm:
        print(json.dumps(workload(args.steps, args.threads)))
        return 0
    runs = {"native": [], "portable": []}
    for index in range(args.pairs):
        order = ("native", "portable") if index % 2 == 0 else ("portable", "native")
        for name in order:
            runs[name].append(arm(name == "portable", args.steps, args.threads))
    summary = {}
    for name, results in runs.items():
        summary[name] = {
            "seconds_median": statistics.median(r["seconds"] for r in results),
            "train_s_median": statistics.median(r["train_s"] for r in results),
            "sample_s_median": statistics.median(r["sample_s"] for r in results),
            "cpu_capability": results[0]["cpu_capability"],
            "weights_sha256": sorted({r["weights_sha256"] for r in results}),
        }
    ratio = summary["portable"]["seconds_median"] / summary["native"]["seconds_median"]
    record = {
        "cpu": platform.processor() or platform.machine(),
        "pairs": args.pairs,
        "steps": args.steps,
        "threads": args.threads,
        "arms": summary,
        "portable_over_native_time": round(ratio, 3),
        "deterministic_within_each_arm": all(len(s["weights_sha256"]) == 1 for s in summary.values()),
        "same_bits_native_and_portable": summary["native"]["weights_sha256"] == summary["portable"]["weights_sha256"],
    }
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            record["cpu"] = line.split(":", 1)[1].strip()
            break
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    for name, s in summary.items():
        weights = ", ".join(h[:12] for h in s["weights_sha256"])
        print(f"{name:8s} ({s['cpu_capability']}): {s['seconds_median']:.2f} s (train {s['train_s_median']:.2f}, "
              f"sample {s['sample_s_median']:.2f}), weights {weights}")  # fmt: skip
    print(f"portable / native time: {ratio:.3f}; same bits: {record['same_bits_native_and_portable']}; "
          f"deterministic within each arm: {record['deterministic_within_each_arm']}; {record['cpu']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
