"""PPO on one GPU at the paper profile's imdb-negative settings: the harness's loop against a bare trl loop, GPU
memory, and total samples/s with k seeds training at once on the one GPU (k processes).

    python benchmarks/gpu_ppo.py --tokenizer ../shared/data/gpt2-tokenizer --out benchmarks/out/gpu_ppo
    python benchmarks/gpu_ppo.py --tiny --out /tmp/gpu_ppo         # CPU, a toy model, seconds (the test)
    bash benchmarks/gpu_ppo_device.sh                                 # on the lent GPU machine (see that file)

The model is GPT-2 124M initialised at random from its config (the GPU machine reaches no hub), with the slow GPT-2
tokenizer (vocab.json + merges.txt); the PPO and generation settings are config/paper.yaml's imdb-negative ones
(batch 128, mini-batch 128, 4 PPO epochs, 32 new tokens, LoRA r16 on c_attn, fp16, gradient checkpointing); the
reward is a random-init DistilBERT of distilbert-base's shape that reads the policy's tokenizer. Prompts are 2-8
word prefixes of IMDB reviews (--imdb, or ../shared/data) or of the project's synthetic reviews.

1. harness vs bare: benchmarks/ppo_throughput.py's two arms, interleaved in this process (samples/s, ratio,
   the harness's per-step breakdown, peak GPU memory of each).
2. k seeds at once: for each k, k fresh processes each run the harness's loop (seeds 0..k-1); each does one
   warm-up step, waits at a barrier, then runs --k-steps timed steps. Total samples/s = all timed samples over
   the time from the barrier's release to the last process's end; each process's peak GPU memory is reported.

Writes gpu_ppo.json and gpu_ppo.txt (what it printed) into --out, including the stack that ran (versions and
where each library was imported from). transformers 4.33.1 checks the tokenizers version only when tokenizers is
importable: where the installed one is not 0.13.x (a newer Python's own), --hide-tokenizers auto (the default)
hides it (and sentencepiece, whose slow T5 tokenizer imports it) from this process before transformers is
imported, and the slow GPT-2 tokenizer is used.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STACK = ("torch", "transformers", "trl", "peft", "accelerate", "huggingface_hub", "datasets", "safetensors", "numpy")


def hide_tokenizers(mode: str) -> bool:
    """Make `tokenizers` unimportable in this process (before transformers is imported) when asked, or (auto)
    where the installed version is not transformers 4.33.1's 0.13.x. Returns whether it is hidden."""
    if mode == "auto":
        try:
            version = importlib.metadata.version("tokenizers")
        except importlib.metadata.PackageNotFoundError:
            return False
        mode = "no" if version.startswith("0.13.") else "yes"
    if mode == "yes":
        # importlib.util.find_spec -> None, so transformers sees neither; `import tokenizers` -> ImportError. With
        # sentencepiece importable, transformers 4.33.1 imports the slow T5 tokenizer, which imports tokenizers
        # unconditionally (convert_slow_tokenizer): it goes too (GPT-2's tokenizer is byte-level BPE, not it).
        sys.modules["tokenizers"] = sys.modules["sentencepiece"] = None
        # transformers 4.33.1's data collators (which trl imports) import BertTokenizerFast whether or not tokenizers
        # is there, and models.bert defines it only when it is: give it transformers' own stand-in (which raises if
        # anything builds one).
        import transformers.models.bert as bert
        from transformers.utils.dummy_tokenizers_objects import BertTokenizerFast

        bert.BertTokenizerFast = BertTokenizerFast
        # Its stand-in for tokenizers.AddedToken has no __str__, so the slow GPT-2 tokenizer's special tokens (saved as
        # AddedToken) would read as "AddedToken(content=...)" and their ids as None: give it the real one's.
        from transformers import tokenization_utils_base

        tokenization_utils_base.AddedToken.__str__ = lambda token: token.content
        return True
    return False


def stack(hidden: bool) -> dict:
    import torch

    versions = {}
    for name in STACK:
        try:
            module = importlib.import_module(name)
            versions[name] = {"version": getattr(module, "__version__", "?"), "from": str(Path(module.__file__).parent)}
        except ImportError as exc:
            versions[name] = {"error": str(exc)[:200]}
    return {
        "python": platform.python_version(),
        "libraries": versions,
        "tokenizers_hidden": hidden,
        "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
    }


def shared_file(*parts: str) -> Path | None:
    """A file of shared/data: $RLHF_BENCH_SHARED_DATA, ../shared/data, shared/data or (carried to the GPU machine by
    benchmarks/gpu_ppo_device.sh) .devwheels/data."""
    candidates = [
        os.environ.get("RLHF_BENCH_SHARED_DATA"),
        ROOT.parent / "shared" / "data",
        ROOT / "shared" / "data",
        ROOT / ".devwheels" / "data",
    ]
    for candidate in candidates:
        if candidate and Path(candidate, *parts).exists():
            return Path(candidate, *parts)
    return None


def settings(args):
    """The paper profile's imdb-negative experiment, with this run's steps (and, --tiny or on a CPU, a toy's)."""
    import torch

    from ppo_throughput import experiment_settings

    overrides = {"steps": args.steps}
    if args.tiny:
        overrides |= {"batch_size": 8, "mini_batch_size": 8, "ppo_epochs": 1, "max_new_tokens": 8}
    if not torch.cuda.is_available():
        overrides["mixed_precision"] = "no"  # accelerate refuses fp16 without a GPU
    return experiment_settings(ROOT / "config" / "paper.yaml", "imdb-negative", **overrides)


def build_setup(args, root: Path):
    """GPT-2 124M (or, --tiny, a toy) from its config, the slow GPT-2 tokenizer, the prompts, the reward model."""
    from transformers import GPT2Config, GPT2Tokenizer

    from ppo_throughput import make_setup, review_prompts, review_texts

    experiment = settings(args)
    tokenizer_dir = Path(args.tokenizer) if args.tokenizer else shared_file("gpt2-tokenizer")
    if tokenizer_dir is None or not (tokenizer_dir / "vocab.json").exists():
        raise SystemExit(f"no GPT-2 tokenizer at {tokenizer_dir}: pass --tokenizer DIR (vocab.json and merges.txt)")
    tokenizer = GPT2Tokenizer.from_pretrained(str(tokenizer_dir))
    tokenizer.pad_token = tokenizer.eos_token
    if args.tiny:
        config = GPT2Config(n_layer=2, n_head=2, n_embd=64, n_positions=128)
        reward_shape = {"dim": 64, "n_layers": 2, "n_heads": 2}
    else:
        config = GPT2Config()  # gpt2: 12 layers, 768 wide, 12 heads, 1,024 positions, 50,257 tokens (124M)
        reward_shape = {"dim": 768, "n_layers": 6, "n_heads": 12}  # distilbert-base
    texts, source = review_texts(
        1000, Path(args.imdb) if args.imdb else shared_file("imdb", "imdb_train_small1000.jsonl")
    )
    prompts = review_prompts(texts, tuple(experiment.data.prompt_words))
    setup = make_setup(root, experiment, tokenizer, config, prompts, reward_shape)
    setup.describe |= {"texts": source, "tokenizer": type(tokenizer).__name__}
    return setup


def load_setup(args, root: Path):
    """A worker's view of the parent's folder: the same settings, paths and prompts."""
    from ppo_throughput import Setup

    prompts = [json.loads(line)["prompt"] for line in (root / "data" / "prompts_train.jsonl").read_text().splitlines()]
    return Setup(settings(args), root / "policy", root / "data", root / "reward", prompts)


def worker(args) -> int:
    """One seed of the k-at-once run: a warm-up step, the barrier, then --steps timed steps; prints one JSON line."""
    import torch

    from ppo_throughput import run_harness

    root, barrier = Path(args.setup_dir), Path(args.barrier)
    setup = load_setup(args, root)
    marks = {}

    def on_step(index: int) -> None:
        if index == 1:  # the warm-up step is done
            (barrier / f"ready{args.seed}").touch()
            while not (barrier / "go").exists():
                time.sleep(0.01)
            marks["start"] = time.time()
        if index == setup.experiment.ppo.steps:
            marks["end"] = time.time()

    result = run_harness(setup, args.seed, root / f"k-seed{args.seed}-{os.getpid()}", on_step)
    peak_reserved = torch.cuda.max_memory_reserved() / 2**30 if torch.cuda.is_available() else None
    timed = setup.experiment.ppo.steps - 1
    print(
        "RESULT "
        + json.dumps(
            {
                "seed": args.seed,
                "start": marks["start"],
                "end": marks["end"],
                "samples": timed * setup.experiment.ppo.batch_size,
                "peak_allocated_gib": result.peak_memory_gib,
                "peak_reserved_gib": peak_reserved,
            }
        )
    )
    return 0


def k_at_once(args, root: Path, k: int, log) -> dict:
    """k processes of the harness's loop on the one device, started together at a barrier."""
    barrier = Path(tempfile.mkdtemp(prefix=f"barrier-k{k}-", dir=root))
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "--setup-dir",
        str(root),
        "--barrier",
        str(barrier),
        "--steps",
        str(args.k_steps + 1),
        "--hide-tokenizers",
        args.hide_tokenizers,
        "--threads",
        str(args.threads),
    ] + (["--tiny"] if args.tiny else [])
    processes = [
        subprocess.Popen([*command, "--seed", str(seed)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for seed in range(k)
    ]
    deadline = time.time() + args.k_timeout
    while len(list(barrier.glob("ready*"))) < k and time.time() < deadline:
        if any(p.poll() not in (None, 0) for p in processes):
            break
        time.sleep(0.05)
    (barrier / "go").touch()
    results, errors = [], []
    for process in processes:
        try:
            out, err = process.communicate(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            errors.append("timed out")
        lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
        if process.returncode == 0 and lines:
            results.append(json.loads(lines[-1].removeprefix("RESULT ")))
        else:
            errors.append(f"exit {process.returncode}: {err.strip().splitlines()[-1] if err.strip() else ''}"[:400])
    record = {"k": k, "processes_ok": len(results), "errors": errors}
    if results:
        window = max(r["end"] for r in results) - min(r["start"] for r in results)
        total = sum(r["samples"] for r in results)
        record |= {
            "total_samples_per_s": total / window,
            "per_process_samples_per_s": [round(r["samples"] / (r["end"] - r["start"]), 3) for r in results],
            "peak_allocated_gib_per_process": [r["peak_allocated_gib"] for r in results],
            "peak_reserved_gib_per_process": [r["peak_reserved_gib"] for r in results],
            "window_seconds": window,
        }
    log(f"k={k}: " + json.dumps(record))
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="folder for gpu_ppo.json and gpu_ppo.txt (required unless --worker)")
    parser.add_argument("--tokenizer", help="slow GPT-2 tokenizer folder (default: shared/data/gpt2-tokenizer)")
    parser.add_argument("--imdb", help="a jsonl of reviews for the prompts (default: shared/data's IMDB subset)")
    parser.add_argument("--pairs", type=int, default=2, help="interleaved harness/bare pairs")
    parser.add_argument("--steps", type=int, default=4, help="PPO steps per harness/bare run")
    parser.add_argument("--k", type=int, nargs="*", default=[1, 2, 4], help="seeds at once")
    parser.add_argument("--k-steps", type=int, default=6, help="timed steps per process in the k runs")
    parser.add_argument("--k-timeout", type=float, default=200, help="seconds a k run may take")
    parser.add_argument("--budget", type=float, default=450, help="skip the k runs not started by then (seconds)")
    parser.add_argument("--threads", type=int, default=4, help="torch CPU threads per process")
    parser.add_argument("--hide-tokenizers", choices=["auto", "yes", "no"], default="auto")
    parser.add_argument("--tiny", action="store_true", help="a toy model on whatever device: seconds")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--setup-dir", help=argparse.SUPPRESS)
    parser.add_argument("--barrier", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    started = time.time()
    hidden = hide_tokenizers(args.hide_tokenizers)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(ROOT / "src"))
    import torch

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)  # as every stage (runtime.seed_everything)
    if args.worker:
        return worker(args)
    if not args.out:
        parser.error("--out is required")
    if args.tiny:
        args.pairs, args.steps, args.k_steps = 1, 2, 1
        args.k = [k for k in args.k if k <= 2]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    printed = []

    def log(line: str) -> None:
        print(line, flush=True)
        printed.append(line)

    from ppo_throughput import format_summary, interleaved, summary

    report = {"stack": stack(hidden)}

    def save() -> None:  # after each part, so that a run stopped at its time limit leaves what it measured
        report["seconds"] = time.time() - started
        (out / "gpu_ppo.json").write_text(json.dumps(report, indent=2))
        (out / "gpu_ppo.txt").write_text("\n".join(printed) + "\n")

    log("stack: " + json.dumps(report["stack"]))
    with tempfile.TemporaryDirectory(prefix="gpu-ppo-") as folder:
        root = Path(folder)
        setup = build_setup(args, root)
        ppo = setup.experiment.ppo
        report["setup"] = {
            **setup.describe,
            "batch_size": ppo.batch_size,
            "mini_batch_size": ppo.mini_batch_size,
            "ppo_epochs": ppo.ppo_epochs,
            "max_new_tokens": setup.experiment.generation.max_new_tokens,
            "lora_r": ppo.lora.r if ppo.lora.enabled else None,
            "mixed_precision": ppo.mixed_precision,
            "gradient_checkpointing": ppo.gradient_checkpointing,
            "steps_per_run": args.steps,
            "pairs": args.pairs,
            "k_steps": args.k_steps,
        }
        log("setup: " + json.dumps(report["setup"]))
        save()
        runs = interleaved(setup, root, args.pairs, seed=0)
        report["harness_vs_bare"] = summary(runs)
        log(format_summary(report["harness_vs_bare"]))
        report["seeds_at_once"] = []
        save()
        for k in args.k:
            if time.time() - started > args.budget:
                log(f"k={k}: skipped (past the --budget of {args.budget:.0f} s)")
                continue
            report["seeds_at_once"].append(k_at_once(args, root, k, log))
            save()
    log(f"total {time.time() - started:.0f} s")
    save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
