"""Is a resumed run bitwise the uninterrupted one on this device? The checkpoint module (rlhf_bench.train.checkpoint:
weights, AdamW, LR schedule, every random stream including CUDA's) on a GPT-2 language-model loop with dropout, the
sft stage's loop (EpochLoop), in fresh processes:

  A: N steps, uninterrupted              B: the same again (is the device deterministic at all?)
  C: stopped after step k (a checkpoint), then a new process resumes from it to N

Prints the sha256 of the final weights of each and the largest difference from A. On a CPU all three agree to the
bit (tests/test_resume.py checks the real stages); on a GPU this is how to find out.

    python benchmarks/resume_on_device.py [--steps 40] [--stop-at 17] [--device cuda]

Needs torch and transformers (any version with GPT2LMHeadModel), safetensors, numpy, and src/ on the path.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


class Stop(Exception):
    pass


def train(args, out: Path, stop_at: int | None) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from rlhf_bench.settings import CheckpointSettings
    from rlhf_bench.train.checkpoint import Checkpoints, EpochLoop

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = torch.device(args.device)
    model = GPT2LMHeadModel(GPT2Config(n_layer=4, n_embd=256, n_head=4, vocab_size=2048, n_positions=128)).to(device)
    generator = torch.Generator().manual_seed(1)
    data = torch.randint(0, 2048, (args.steps * 8 // 2, 128), generator=generator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 10))
    run = SimpleNamespace(
        args=SimpleNamespace(out=str(out), experiment="device-check", seed=0),
        provenance={"config_sha256": "device-check"},
        after_success=[],
    )
    settings = CheckpointSettings(every_steps=10**6, every_minutes=1e9, keep=True)
    with Checkpoints(run, "sft", settings) as checkpoints:
        loop = EpochLoop(model, optimizer, schedule, generator, checkpoints)
        loop.resume(args.steps)
        model.train()
        for _, order in loop.epochs(len(data), 2):
            for batch in loop.batches(data[order].split(8)):
                batch = batch.to(device)
                loss = model(input_ids=batch, labels=batch).loss
                loss.backward()
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                loop.done(loss.item())
                if loop.step == stop_at:
                    checkpoints.save(loop.step, *loop._capture())
                    raise Stop
    from safetensors.torch import save_file

    save_file(
        {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}, out / "weights.safetensors"
    )


def digest(path: Path) -> str:
    from safetensors.torch import load_file

    weights = load_file(path)
    sha = hashlib.sha256()
    for key in sorted(weights):
        sha.update(key.encode())
        sha.update(weights[key].numpy().tobytes())
    return sha.hexdigest()


def max_difference(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    wa, wb = load_file(a), load_file(b)
    return max(float((wa[k].double() - wb[k].double()).abs().max()) for k in wa)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--stop-at", type=int, default=17)
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda where torch sees one)")
    parser.add_argument("--worker", choices=["whole", "stop", "resume"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.worker:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        try:
            train(args, out, args.stop_at if args.worker == "stop" else None)
        except Stop:
            pass
        return 0
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        runs = {"A": ["whole"], "B": ["whole"], "C": ["stop", "resume"]}
        for name, workers in runs.items():
            out = Path(folder) / name
            for worker in workers:
                command = [sys.executable, __file__, "--worker", worker, "--out", str(out), "--steps", str(args.steps),
                           "--stop-at", str(args.stop_at), "--device", args.device]  # fmt: skip
                subprocess.run(command, check=True)
            results[name] = out / "weights.safetensors"
        report = {
            "device": args.device,
            "steps": args.steps,
            "stopped_at": args.stop_at,
            "sha256": {name: digest(path) for name, path in results.items()},
            "max_abs_difference_from_A": {name: max_difference(results["A"], path) for name, path in results.items()},
        }
    report["rerun_bitwise"] = report["sha256"]["A"] == report["sha256"]["B"]
    report["resume_bitwise"] = report["sha256"]["A"] == report["sha256"]["C"]
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
