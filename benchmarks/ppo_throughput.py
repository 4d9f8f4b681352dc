"""The harness's PPO loop against a bare trl 0.7.4 loop, side by side: samples/s of each, their ratio, and where a
harness step goes. Target: harness / bare >= 0.97.

    python benchmarks/ppo_throughput.py [--profile imdb-cpu|smoke] [--pairs 3] [--steps 6] [--threads 1]
    python benchmarks/ppo_throughput.py --tiny        # seconds: a toy model, to check that it runs

Both arms train the same random-init GPT-2 of the imdb-cpu policy's shape and vocabulary (4 layers, 256 wide, 8,192
byte-level BPE tokens trained on IMDB reviews from ../shared/data, or on the project's synthetic reviews where that
is absent), with config/imdb-cpu.yaml's PPO and generation settings (batch 32, 32 new tokens, whole policy
trained) or, with --profile smoke, the smoke profile's (2 layers, 64 wide, 1,024 tokens; batch 32, 20 new tokens,
LoRA r16),
the same prompts (2-8 word review prefixes), the same reward (a random-init DistilBERT scorer, the harness's
RewardScorer) and the same seed, interleaved H/B/B/H... in one process so that machine noise cancels.

- harness: `rlhf_bench.train.ppo.train`, the ppo stage's own function (checkpoints off: their cost is
  benchmarks/checkpoint_overhead.py's); its loop is timed from the first step to the last, so model loading and
  saving are left out (benchmarks/stage_overhead.py has them).
- bare: the loop of TRL v0.7.4's gpt2-sentiment example (examples/scripts/ppo.py): prompts tokenized up front (the
  example's dataset.map), then per step generate the batch, decode, score, `trainer.step`. It generates the batch
  in one call, as the harness does (the example's default, 4 prompts a call, would only slow the bare arm), and
  leaves out the example's reference-model rollouts and log_stats, which the harness does not do either.

Both arms draw the same prompts and seed torch alike before building, so they do the same work: the per-step mean
rewards of the two are compared and printed. The harness's per-step breakdown comes from wrapping the trainer's
generate and step, the decoder, the reward, the finite checks and the progress bar and log writer ("logging");
"other" is the rest of the step (prompt sampling and tokenizing, the row, the guard counters).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

TARGET_RATIO = 0.97
PARTS = ("generate", "decode", "reward", "trl_step", "finite_checks", "logging")


def shared_data() -> Path | None:
    """../shared/data (or $RLHF_BENCH_SHARED_DATA) where it holds the IMDB files, else None."""
    for candidate in (
        os.environ.get("RLHF_BENCH_SHARED_DATA"),
        ROOT.parent / "shared" / "data",
        ROOT / "shared" / "data",
    ):
        if candidate and (Path(candidate) / "imdb" / "imdb_train_small1000.jsonl").exists():
            return Path(candidate)
    return None


def review_texts(n: int, path: Path | None = None) -> tuple[list[str], str]:
    """n review texts: a jsonl of them, or real IMDB (the small train subset) where ../shared/data has it, else
    synthetic ones."""
    if path is None and shared_data() is not None:
        path = shared_data() / "imdb" / "imdb_train_small1000.jsonl"
    if path is not None:
        with open(path, encoding="utf-8") as handle:  # by line: str.splitlines also splits at U+2028 inside reviews
            texts = [json.loads(line)["text"] for line in handle][:n]
        return texts, f"IMDB ({Path(path).name})"
    from rlhf_bench.train import synthetic

    return [r["text"] for r in synthetic.make_unlabelled_reviews(n, 0)], "synthetic reviews (no ../shared/data)"


def review_prompts(texts: list[str], words: tuple[int, int], seed: int = 0) -> list[str]:
    """TRL's gpt2-sentiment example's queries: the first 2-8 words of each review."""
    rng = random.Random(seed)
    return [" ".join(t.split()[: rng.randint(*words)]) for t in texts]


def experiment_settings(config: Path, name: str, **ppo_overrides):
    """One experiment of a profile, with PPO fields overridden (steps, batch sizes) and generation's max_new_tokens."""
    import yaml

    from rlhf_bench.config import from_dict

    raw = yaml.safe_load(Path(config).read_text())
    raw = {k: v for k, v in raw.items() if not k.startswith("_")}
    raw["experiments"] = {name: copy.deepcopy(raw["experiments"][name])}
    exp = raw["experiments"][name]
    exp.pop("frontier", None)  # the PPO loop alone: no policies kept along its path
    new_tokens = ppo_overrides.pop("max_new_tokens", None)
    if new_tokens is not None:
        exp["generation"] = {**exp["generation"], "max_new_tokens": new_tokens}
    exp["ppo"] = {**exp["ppo"], "reward": "reward_model", **ppo_overrides}
    return from_dict(raw, str(config)).experiment(name)


@dataclass
class Setup:
    """What both arms read: the policy folder (weights + tokenizer), prompts_train.jsonl, the reward model."""

    experiment: object
    policy: Path
    data: Path
    reward: Path
    prompts: list[str]
    describe: dict = field(default_factory=dict)


def make_setup(root: Path, experiment, tokenizer, policy_config, prompts: list[str], reward_shape: dict) -> Setup:
    """Save a random-init GPT-2 (policy_config) with `tokenizer`, the prompts, and a random-init DistilBERT reward
    model of `reward_shape` that reads the same tokenizer (right-padded with the end token)."""
    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification, GPT2LMHeadModel

    from rlhf_bench.train import models

    torch.manual_seed(0)
    policy = GPT2LMHeadModel(policy_config)
    models.save(policy, tokenizer, root / "policy")
    width, depth, heads = reward_shape["dim"], reward_shape["n_layers"], reward_shape["n_heads"]
    reward_config = DistilBertConfig(
        vocab_size=len(tokenizer),
        dim=width,
        hidden_dim=4 * width,
        n_layers=depth,
        n_heads=heads,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
        max_position_embeddings=max(512, experiment.reward.max_length + 2),
    )
    models.save(DistilBertForSequenceClassification(reward_config), tokenizer, root / "reward" / "model")
    (root / "data").mkdir()
    lines = "".join(json.dumps({"prompt": p}) + "\n" for p in prompts)
    (root / "data" / "prompts_train.jsonl").write_text(lines, encoding="utf-8")
    describe = {
        "policy_parameters": models.count_parameters(policy),
        "policy_shape": {
            k: getattr(policy_config, k) for k in ("n_layer", "n_head", "n_embd", "n_positions", "vocab_size")
        },
        "reward_parameters": sum(p.numel() for p in DistilBertForSequenceClassification(reward_config).parameters()),
    }
    return Setup(experiment, root / "policy", root / "data", root / "reward", prompts, describe)


def seed_all(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


class Clock:
    """Seconds spent in named parts; `wrap` times a callable (synchronizing CUDA so that a part owns its kernels)."""

    def __init__(self):
        self.seconds = dict.fromkeys(PARTS, 0.0)

    @contextlib.contextmanager
    def part(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            synchronize()
            self.seconds[name] += time.perf_counter() - started

    def wrap(self, name: str, function):
        def timed(*args, **kwargs):
            with self.part(name):
                return function(*args, **kwargs)

        return timed


class TimedProgress:
    """Stands in for tqdm in the ppo module: times the loop from its first step to the end, and tqdm's own work."""

    def __init__(self, clock: Clock, real_tqdm, on_step=None):
        self.clock, self.real_tqdm, self.on_step = clock, real_tqdm, on_step
        self.loop_started = self.loop_ended = self.cpu_started = self.cpu_ended = None
        self.step_ends: list[float] = []

    def __call__(self, iterable, **kwargs):
        with self.clock.part("logging"):
            bar = self.real_tqdm(iterable, **kwargs)
        return self._iterate(iter(bar))

    def _iterate(self, bar):
        index = 0
        while True:
            if self.on_step is not None:
                self.on_step(index)
            now = time.perf_counter()
            if self.loop_started is None:
                self.loop_started, self.cpu_started = now, time.process_time()
            else:
                self.step_ends.append(now)
            with self.clock.part("logging"):
                try:
                    step = next(bar)
                except StopIteration:
                    break
            index += 1
            yield step
        self.loop_ended, self.cpu_ended = time.perf_counter(), time.process_time()


@dataclass
class ArmResult:
    arm: str
    steps: int
    samples: int
    seconds: float
    rewards: list[float]
    cpu_seconds: float
    parts: dict = field(default_factory=dict)
    peak_memory_gib: float | None = None
    step_ends: list[float] = field(default_factory=list)

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds


def _reset_peak_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_memory_gib() -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None


def run_harness(setup: Setup, seed: int, out: Path, on_step=None) -> ArmResult:
    """The ppo stage's train() with its trainer's parts timed (model load and save outside the timed loop)."""
    from rlhf_bench.train import models, ppo

    clock = Clock()
    progress = TimedProgress(clock, ppo.tqdm, on_step)
    build, reward_function, write_table = ppo.build_trainer, ppo.reward_function, ppo.write_table
    check_finite, check_finite_weights = models.check_finite, models.check_finite_weights

    def timed_build(*args, **kwargs):
        trainer = build(*args, **kwargs)
        trainer.generate = clock.wrap("generate", trainer.generate)
        trainer.step = clock.wrap("trl_step", trainer.step)
        trainer.tokenizer.batch_decode = clock.wrap("decode", trainer.tokenizer.batch_decode)
        return trainer

    patches = {
        (ppo, "tqdm"): progress,
        (ppo, "build_trainer"): timed_build,
        (ppo, "reward_function"): lambda *a, **k: clock.wrap("reward", reward_function(*a, **k)),
        (ppo, "write_table"): clock.wrap("logging", write_table),
        (models, "check_finite"): clock.wrap("finite_checks", check_finite),
        (models, "check_finite_weights"): clock.wrap("finite_checks", check_finite_weights),
    }
    originals = {key: getattr(*key) for key in patches}
    _reset_peak_memory()
    seed_all(seed)
    out.mkdir(parents=True, exist_ok=True)
    try:
        for (module, name), value in patches.items():
            setattr(module, name, value)
        ppo.train(setup.experiment, str(setup.policy), setup.data, setup.reward, seed, out)
    finally:
        for (module, name), value in originals.items():
            setattr(module, name, value)
    import csv

    with open(out / "train_log.csv", newline="") as handle:
        rewards = [float(row["reward_mean"]) for row in csv.DictReader(handle)]
    settings = setup.experiment.ppo
    seconds, cpu = progress.loop_ended - progress.loop_started, progress.cpu_ended - progress.cpu_started
    return ArmResult(
        "harness",
        settings.steps,
        settings.steps * settings.batch_size,
        seconds,
        rewards,
        cpu,
        dict(clock.seconds),
        _peak_memory_gib(),
        progress.step_ends,
    )


def run_bare(setup: Setup, seed: int) -> ArmResult:
    """TRL v0.7.4's example loop (examples/scripts/ppo.py), on the same model, prompts, settings and reward."""
    import numpy as np
    import torch
    from peft import LoraConfig
    from transformers import AutoTokenizer
    from transformers.utils import is_tokenizers_available
    from trl import AutoModelForCausalLMWithValueHead, PPOConfig, PPOTrainer

    from rlhf_bench.train.reward import RewardScorer

    settings, generation = setup.experiment.ppo, setup.experiment.generation
    _reset_peak_memory()
    seed_all(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(setup.policy), use_fast=is_tokenizers_available())  # as the harness
    tokenizer.pad_token = tokenizer.eos_token
    config = PPOConfig(
        model_name=str(setup.policy),
        learning_rate=settings.learning_rate,
        batch_size=settings.batch_size,
        mini_batch_size=settings.mini_batch_size,
        ppo_epochs=settings.ppo_epochs,
        init_kl_coef=settings.init_kl_coef,
        adap_kl_ctrl=settings.adap_kl_ctrl,
        target=settings.target,
        horizon=settings.horizon,
        gamma=settings.gamma,
        lam=settings.lam,
        cliprange=settings.cliprange,
        cliprange_value=settings.cliprange_value,
        vf_coef=settings.vf_coef,
        ratio_threshold=settings.ratio_threshold,
        use_score_scaling=settings.use_score_scaling,
        use_score_norm=settings.use_score_norm,
        score_clip=settings.score_clip,
        seed=seed,
        accelerator_kwargs={"mixed_precision": settings.mixed_precision},
    )
    peft_config = None
    if settings.lora.enabled:
        lora = settings.lora
        peft_config = LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            bias="none",
            target_modules=list(lora.target_modules),
            task_type="CAUSAL_LM",
        )
    os.environ["ACCELERATE_MIXED_PRECISION"] = settings.mixed_precision
    model = AutoModelForCausalLMWithValueHead.from_pretrained(str(setup.policy), peft_config=peft_config)
    if settings.gradient_checkpointing:
        model.pretrained_model.gradient_checkpointing_enable()
        if settings.lora.enabled:
            model.pretrained_model.enable_input_require_grads()
    trainer = PPOTrainer(config, model, ref_model=None, tokenizer=tokenizer)
    scorer = RewardScorer.load(setup.reward / "model", setup.experiment.reward)
    query_tensors_all = [tokenizer(p, return_tensors="pt").input_ids[0] for p in setup.prompts]  # dataset.map
    generation_kwargs = {
        "min_length": -1,
        "top_k": generation.top_k,
        "top_p": generation.top_p,
        "do_sample": True,
        "pad_token_id": tokenizer.eos_token_id,
        "max_new_tokens": generation.max_new_tokens,
    }
    rng = np.random.default_rng(seed)
    means = []
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(settings.steps):
        index = rng.choice(len(setup.prompts), settings.batch_size, replace=False)
        queries, query_tensors = [setup.prompts[i] for i in index], [query_tensors_all[i] for i in index]
        response_tensors = trainer.generate(
            query_tensors, batch_size=len(query_tensors), return_prompt=False, **generation_kwargs
        )
        responses = tokenizer.batch_decode(response_tensors, skip_special_tokens=True)
        scores = scorer([q + r for q, r in zip(queries, responses, strict=True)])
        rewards = [torch.tensor(s, dtype=torch.float32) for s in scores]
        trainer.step(query_tensors, response_tensors, rewards)
        means.append(float(np.mean(scores)))
    synchronize()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    peak = _peak_memory_gib()
    del trainer, model, scorer
    return ArmResult("bare", settings.steps, settings.steps * settings.batch_size, seconds, means, cpu, {}, peak)


def release() -> None:
    gc.collect()
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def interleaved(setup: Setup, root: Path, pairs: int, seed: int) -> dict[str, list[ArmResult]]:
    """H B B H H B ...: each arm first in half of the pairs. A one-step warm-up of each arm runs first."""
    import dataclasses as dc

    runs = {"harness": [], "bare": []}
    warm = dc.replace(setup, experiment=dc.replace(setup.experiment, ppo=dc.replace(setup.experiment.ppo, steps=1)))
    run_harness(warm, seed, root / "warm-harness")
    run_bare(warm, seed)
    release()
    for pair in range(pairs):
        for arm in ("harness", "bare") if pair % 2 == 0 else ("bare", "harness"):
            if arm == "harness":
                result = run_harness(setup, seed, root / f"harness-{pair}")
            else:
                result = run_bare(setup, seed)
            runs[arm].append(result)
            release()
    return runs


def summary(runs: dict[str, list[ArmResult]]) -> dict:
    """Samples/s of each arm (all its samples over all its loop seconds), the ratio, the harness's breakdown."""
    rate = {arm: sum(r.samples for r in rs) / sum(r.seconds for r in rs) for arm, rs in runs.items()}
    # Per CPU-second of this process: on a CPU with a fixed thread count, what other processes on a shared machine
    # take does not count against an arm (on a GPU, wall time is what counts).
    cpu_rate = {arm: sum(r.samples for r in rs) / sum(r.cpu_seconds for r in rs) for arm, rs in runs.items()}
    harness = runs["harness"]
    steps = sum(r.steps for r in harness)
    step_seconds = sum(r.seconds for r in harness) / steps
    parts = {name: sum(r.parts[name] for r in harness) / steps for name in PARTS}
    parts["other"] = step_seconds - sum(parts.values())
    same = all(h.rewards == b.rewards for h, b in zip(harness, runs["bare"], strict=True))
    return {
        "samples_per_s": rate,
        "per_run_samples_per_s": {arm: [round(r.samples_per_s, 3) for r in rs] for arm, rs in runs.items()},
        "ratio_harness_to_bare": rate["harness"] / rate["bare"],
        "samples_per_cpu_s": cpu_rate,
        "ratio_harness_to_bare_cpu_time": cpu_rate["harness"] / cpu_rate["bare"],
        "target_ratio": TARGET_RATIO,
        "harness_step_seconds": step_seconds,
        "harness_step_breakdown_seconds": parts,
        "same_rewards_in_both_arms": same,
        "peak_gpu_memory_gib": {arm: max((r.peak_memory_gib or 0.0) for r in rs) or None for arm, rs in runs.items()},
    }


def format_summary(result: dict) -> str:
    rate, parts = result["samples_per_s"], result["harness_step_breakdown_seconds"]
    step = result["harness_step_seconds"]
    lines = [
        f"harness samples/s: {rate['harness']:.3f}   (runs: {result['per_run_samples_per_s']['harness']})",
        f"bare trl samples/s: {rate['bare']:.3f}   (runs: {result['per_run_samples_per_s']['bare']})",
        f"ratio harness/bare: {result['ratio_harness_to_bare']:.3f} (target >= {result['target_ratio']})",
        f"per CPU-second of the process: harness {result['samples_per_cpu_s']['harness']:.3f}, bare "
        f"{result['samples_per_cpu_s']['bare']:.3f}, ratio {result['ratio_harness_to_bare_cpu_time']:.3f}",
        f"same per-step rewards in both arms: {'yes' if result['same_rewards_in_both_arms'] else 'no'}",
        f"harness step: {1000 * step:.1f} ms, of which:",
        *(f"  {name:<14}{1000 * seconds:9.2f} ms {100 * seconds / step:6.2f}%" for name, seconds in parts.items()),
    ]
    memory = result.get("peak_gpu_memory_gib") or {}
    if any(memory.values()):
        lines.append("peak GPU memory (GiB): " + ", ".join(f"{k} {v:.2f}" for k, v in memory.items() if v))
    return "\n".join(lines)


PROFILES = {"imdb-cpu": "imdb-cpu.yaml", "smoke": "config.yaml"}


def cpu_setup(root: Path, profile: str, tiny: bool, steps: int):
    """A profile's imdb-negative policy shape, vocabulary and PPO settings; (tiny) the smoke one with a toy batch."""
    from transformers import GPT2Config

    from rlhf_bench.train import models

    exp_config = ROOT / "config" / PROFILES["smoke" if tiny else profile]
    if tiny:
        experiment = experiment_settings(
            exp_config, "imdb-negative", steps=steps, batch_size=8, mini_batch_size=4, ppo_epochs=1, max_new_tokens=8
        )
    else:
        experiment = experiment_settings(exp_config, "imdb-negative", steps=steps)
    texts, source = review_texts(300 if tiny else 1000)
    sft = experiment.sft
    tokenizer = models.train_tokenizer(texts, sft.vocab_size, for_encoder=False)
    if len(tokenizer) < sft.vocab_size:  # synthetic reviews have too few words for 8,192 tokens: pad the vocabulary
        tokenizer.add_tokens([f"<unused{i}>" for i in range(sft.vocab_size - len(tokenizer))])
    policy_config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=sft.max_length,
        n_embd=sft.n_embd,
        n_layer=sft.n_layer,
        n_head=sft.n_head,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    prompts = review_prompts(texts, tuple(experiment.data.prompt_words))
    setup = make_setup(root, experiment, tokenizer, policy_config, prompts, {"dim": 64, "n_layers": 2, "n_heads": 2})
    setup.describe["texts"] = source
    return setup


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="imdb-cpu",
        help="whose imdb-negative policy shape and PPO settings (default imdb-cpu)",
    )
    parser.add_argument("--pairs", type=int, default=3, help="interleaved harness/bare pairs")
    parser.add_argument("--steps", type=int, default=6, help="PPO steps per run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (imdb-cpu runs one per job)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true", help="a toy model, 2 steps, one pair: seconds")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    if args.tiny:
        args.pairs, args.steps = 1, 2
    import torch

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    with tempfile.TemporaryDirectory(prefix="ppo-throughput-") as folder:
        root = Path(folder)
        setup = cpu_setup(root, args.profile, args.tiny, args.steps)
        runs = interleaved(setup, root, args.pairs, args.seed)
    result = summary(runs)
    settings = setup.experiment.ppo
    result["setup"] = {
        "profile": "tiny" if args.tiny else args.profile,
        **setup.describe,
        "batch_size": settings.batch_size,
        "mini_batch_size": settings.mini_batch_size,
        "ppo_epochs": settings.ppo_epochs,
        "max_new_tokens": setup.experiment.generation.max_new_tokens,
        "lora": settings.lora.enabled,
        "steps_per_run": args.steps,
        "pairs": args.pairs,
        "threads": args.threads,
    }
    print(f"ppo throughput: {json.dumps(result['setup'])}")
    print(format_summary(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0 if args.tiny or result["ratio_harness_to_bare"] >= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
