"""What every setting means: the config's dataclasses, one docstring per field (cleanrl-style).

config/schema.yaml owns types, bounds and defaults; config.py validates a file and builds these from it;
tests/test_config.py checks that the schema and these classes name the same fields.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from rlhf_bench.io import ConfigError


@dataclass(frozen=True)
class DataSettings:
    format: str
    """Record format of the source: `imdb` (text, label), `pairwise` (prompt, chosen, rejected: Dahoas
    synthetic-instruct-gptj-pairwise) or `hh` (chosen/rejected dialogues: Anthropic/hh-rlhf)."""
    source: str
    """`synthetic` (the project's seeded generator), a hub dataset id, or a local directory/file."""
    prefer: str
    """imdb only: which review of a (negative, positive) pair the reward model should prefer."""
    n_pairs_train: int
    """Preference pairs for reward-model training."""
    n_pairs_test: int
    """Held-out preference pairs for reward-model accuracy."""
    n_prompts_train: int
    """Prompts PPO samples its batches from."""
    n_prompts_eval: int
    """Held-out prompts that base and RLHF policies both answer in `evaluate`."""
    n_corpus: int
    """Texts for the sft stage (language-model training of the policy)."""
    prompt_words: list[int]
    """imdb only: [min, max] words of a review prefix used as prompt (TRL gpt2-sentiment uses 2-8 tokens)."""
    seed: int
    """Seed of data generation, sampling and splitting."""
    test_fraction: float = 0.1
    """Where the source has no test split (a single file of pairs, or Dahoas' train-only dataset): the seeded
    fraction of its records held out as the test split."""
    data_dir: str = ""
    """Subset directory inside the source (Anthropic/hh-rlhf: helpful-base, harmless-base, ...); empty: all of
    it, as `datasets.load_dataset(source)` without data_dir."""
    prompt_tokenizer: str = ""
    """imdb only: when set (hub id@revision or directory), `prompt_words` counts this tokenizer's tokens
    instead of words, as TRL's gpt2-sentiment example cuts reviews to 2-7 GPT-2 tokens."""
    keep_identical_pairs: bool = False
    """Keep preference pairs whose chosen and rejected texts are identical. Such a pair carries no preference:
    it adds a constant to the ranking loss and always counts as wrong (a tie) in pairwise accuracy, so by
    default it is dropped and the pair files hold that many fewer pairs than asked. Either way the data stage
    counts them (provenance `pair_checks`, and the report's setup table)."""


@dataclass(frozen=True)
class SFTSettings:
    enabled: bool
    """Train the policy's language model here; when false `policy` must name a pretrained causal LM."""
    init: str
    """`scratch` (GPT-2 architecture, sizes below, byte-level BPE tokenizer trained on the corpus) or a hub
    id/directory of a causal LM to fine-tune with its own tokenizer."""
    vocab_size: int
    """Tokenizer vocabulary when trained from scratch."""
    n_layer: int
    """GPT-2 layers when trained from scratch."""
    n_head: int
    """GPT-2 attention heads when trained from scratch."""
    n_embd: int
    """GPT-2 width when trained from scratch."""
    max_length: int
    """Tokens per training sequence (also the model's context when trained from scratch)."""
    epochs: int
    """Passes over the corpus."""
    batch_size: int
    """Sequences per optimisation step."""
    learning_rate: float
    """AdamW learning rate (linear decay)."""
    seed: int
    """Seed of initialisation and data order."""


@dataclass(frozen=True)
class RewardModelSettings:
    init: str
    """`scratch` (the architecture below, sizes below, own tokenizer) or a hub id/directory of an encoder,
    which gets a fresh one-logit head (AutoModelForSequenceClassification, num_labels=1)."""
    architecture: str
    """From scratch: `distilbert` (seed 000 part 1 uses distilbert-base-cased) or `deberta-v2` (part 2 uses
    deberta-v3-base, a DeBERTa-v2 architecture)."""
    vocab_size: int
    """Tokenizer vocabulary when trained from scratch."""
    n_layer: int
    """Encoder layers when trained from scratch."""
    n_head: int
    """Attention heads when trained from scratch."""
    hidden_size: int
    """Encoder width when trained from scratch."""
    max_length: int
    """Tokens per scored text; longer texts are truncated on `truncation_side`."""
    truncation_side: str
    """`left` keeps a text's end (sentiment often sits in a review's last sentences), `right` its start."""
    epochs: int
    """Passes over the training pairs."""
    batch_size: int
    """Pairs per optimisation step."""
    learning_rate: float
    """AdamW learning rate (linear decay)."""
    seed: int
    """Seed of initialisation and pair order."""
    objective: str = "pairwise"
    """`pairwise`: -log sigmoid(r_chosen - r_rejected), the reward is the logit (InstructGPT); `binary`: each
    text classified on its own (chosen 1, rejected 0, cross-entropy), the reward is the probability of 1
    (seeds/002: "binary classifier trained on preference pairs", "probability scores")."""
    weight_decay: float = 0.01
    """AdamW weight decay (transformers TrainingArguments, which trl's RewardConfig extends: 0.0)."""
    warmup_fraction: float = 0.1
    """Linear learning-rate warm-up over this fraction of one epoch's steps (0: none, transformers' default)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass (trl RewardConfig's default: true)."""
    mixed_precision: str = "no"
    """`no`, `fp16` (autocast + loss scaling) or `bf16` on a GPU; on a CPU fp16 runs in fp32, as accelerate
    does, and provenance.json records what ran."""
    baselines: list[str] = dataclasses.field(default_factory=list)
    """Classical scorers trained and measured on the same pairs, reported beside the reward model
    (`tfidf_logreg`: TF-IDF + logistic regression, rlhf_bench.train.baseline)."""


@dataclass(frozen=True)
class CheckpointSettings:
    """When the long stages (sft, reward, ppo) write the checkpoint a rerun resumes from
    (rlhf_bench.train.checkpoint); they also write one on SIGTERM, SIGUSR1 and SIGINT."""

    every_steps: int
    """A checkpoint every this many steps of a stage; 0: every tenth of the stage's steps."""
    every_minutes: float
    """And at the latest this many minutes after the last one, whichever comes first."""
    keep: bool
    """Keep `<out>.checkpoint/` after the stage's outputs are complete (default: removed)."""


@dataclass(frozen=True)
class LoraSettings:
    """The LoRA adapter of PPO (peft 0.5.0 LoraConfig(r, lora_alpha, lora_dropout, target_modules))."""

    enabled: bool
    """Train a LoRA adapter (the reference model is the policy with the adapter disabled); false: fine-tune
    the whole policy against a frozen copy, as TRL's example without --use_peft (the fields below unused)."""
    r: int
    """LoRA rank."""
    alpha: int
    """LoRA scaling numerator (peft lora_alpha)."""
    dropout: float
    """LoRA dropout (peft lora_dropout)."""
    target_modules: list[str]
    """Module names LoRA wraps (`c_attn` for GPT-2)."""


@dataclass(frozen=True)
class GenerationSettings:
    """How responses are sampled, in PPO rollouts and in evaluation alike: transformers generate() keyword
    arguments of the same names, always with do_sample=True (rlhf_bench.train.policy.generation_kwargs)."""

    max_new_tokens: int
    """Tokens generated per response (a PPO rollout or an answer to a held-out prompt)."""
    temperature: float
    """Sampling temperature. trl 0.7.4 needs 1.0 with top_k=0/top_p=1.0 during PPO for an unbiased KL."""
    top_k: int
    """Top-k filtering; 0 disables it (required for a correct KL estimate in trl 0.7.4)."""
    top_p: float
    """Nucleus filtering; 1.0 disables it (required for a correct KL estimate in trl 0.7.4)."""


@dataclass(frozen=True)
class PPOSettings:
    """Every field named as a field of trl 0.7.4's PPOConfig means that field and is passed to it as such
    (rlhf_bench.train.ppo.trl_ppo_config); the others (reward, lora, gradient_checkpointing,
    mixed_precision) are ours."""

    reward: str
    """`reward_model`: the trained reward model's score; `negative_word_count`: minus the response's word
    count (seed 000 part 2)."""
    steps: int
    """PPO iterations (one batch of rollouts each); our loop runs them (PPOConfig.steps only names them)."""
    batch_size: int
    """Rollouts per iteration (trl PPOConfig.batch_size)."""
    mini_batch_size: int
    """Rollouts per gradient step inside an iteration."""
    ppo_epochs: int
    """Optimisation passes over each batch of rollouts."""
    learning_rate: float
    """Adam learning rate of the LoRA adapter and value head (TRL examples: 1.41e-5)."""
    init_kl_coef: float
    """Initial KL penalty coefficient."""
    adap_kl_ctrl: bool
    """Adaptive KL control (Ziegler et al. 2019), as trl's AdaptiveKLController."""
    target: float
    """Target KL of the adaptive controller (trl PPOConfig.target; trl's PPOConfig.target_kl is something
    else, early stopping's threshold, which stays off)."""
    horizon: float
    """Horizon of the adaptive controller."""
    gamma: float
    """Discount factor."""
    lam: float
    """GAE lambda."""
    cliprange: float
    """Policy ratio clip range."""
    cliprange_value: float
    """Value clip range."""
    vf_coef: float
    """Value loss coefficient."""
    ratio_threshold: float
    """trl skips a mini-batch whose mean policy ratio exceeds this (loss spikes on very short responses);
    skipped batches are counted in train_log.csv."""
    use_score_scaling: bool
    """Divide rewards by their running std: a reward in words (-30) otherwise swamps the value head; the
    ordering of rewards, hence the objective, is unchanged."""
    use_score_norm: bool
    """With use_score_scaling, also subtract the running mean."""
    score_clip: float | None
    """Clip rewards to [-score_clip, score_clip] after scaling (trl score_clip); null: no clipping."""
    lora: LoraSettings
    """The LoRA adapter PPO trains (peft LoraConfig), or none (`enabled: false`)."""
    gradient_checkpointing: bool
    """Trade compute for memory (needs enable_input_require_grads() with LoRA)."""
    mixed_precision: str
    """`no`, `fp16` or `bf16` (accelerate); fp16 + LoRA can produce NaN weights, which stop the job."""


@dataclass(frozen=True)
class EvalSettings:
    judge: str
    """Independent sentiment judge: `vader` (lexicon, offline), `classifier` (a sequence classifier named by
    `judge_model`) or `none`. Never the reward model."""
    judge_input: str
    """What the judge reads: `full` (prompt + response: a review's prefix and continuation) or `response`
    (the Assistant's reply alone, for dialogues whose Human turns carry their own sentiment)."""
    generation: GenerationSettings
    """How both policies sample their answers: the experiment's `generation`, with any of its keys given here
    replacing its value for evaluation only (e.g. to keep the documented sampling where apply_sound_settings
    makes PPO's plain)."""
    batch_size: int
    """Prompts generated and scored together."""
    judge_model: str = ""
    """judge `classifier`: hub id@revision or directory of a sequence classifier, read by label name."""
    judge_positive_label: str = "POSITIVE"
    """judge `classifier`: the label name (id2label) whose probability is the positivity score."""
    judge_negative_label: str = "NEGATIVE"
    """judge `classifier`: the label name of negative sentiment; any other argmax label counts as neutral."""
    num_samples: int | None = None
    """Held-out prompts each policy answers per seed (the first of prompts_eval.jsonl; seeds/002 evaluate.py
    --num-samples); null: all of them."""


@dataclass(frozen=True)
class DPOSettings:
    """The `dpo` arm: trl 0.7.4's DPOTrainer (Rafailov et al. 2023), LoRA or the whole policy as the experiment's
    `ppo.lora` says, one job per seed training every beta."""

    beta: list[float]
    """KL strengths swept (DPOTrainer beta): each is one point of the frontier per seed."""
    pairs: str
    """`data`: the data stage's preference pairs, which share a prompt (pairwise, hh); `policy`: two base-policy
    completions of each PPO prompt ranked by the trained reward model, as the DPO paper built IMDB's (section 6.1;
    the dpo_pairs rule)."""
    steps: int
    """Optimisation steps (TrainingArguments.max_steps)."""
    batch_size: int
    """Pairs per step (per_device_train_batch_size)."""
    learning_rate: float
    """AdamW learning rate, linear decay (the DPO paper: 1e-6 on the whole model)."""
    warmup_steps: int
    """Linear warm-up steps (the DPO paper: 150)."""
    max_length: int
    """Tokens of prompt + response (DPOTrainer max_length)."""
    max_prompt_length: int
    """Tokens of the prompt, cut from the left (DPOTrainer max_prompt_length)."""


@dataclass(frozen=True)
class FrontierSettings:
    """The reward-vs-KL frontier: which arms run beside PPO (rules/frontier.smk); each is off where absent."""

    ppo_path: list[float] = field(default_factory=list)
    """Fractions of ppo.steps at which each seed's policy is also evaluated, so PPO traces a curve (its final
    policy is always a point)."""
    best_of_n: list[int] = field(default_factory=list)
    """n of best-of-n: the reward picks the best of n base-policy answers to each held-out prompt."""
    dpo: DPOSettings | None = None
    """The DPO arm, or None."""


@dataclass(frozen=True)
class Objective:
    metric: str
    """The per-policy metric PPO is meant to move (see evaluate.py for definitions)."""
    direction: str
    """`increase` or `decrease`: the documented direction of the effect."""


@dataclass(frozen=True)
class Experiment:
    name: str
    """Key of the experiment in `experiments`; names its results directory."""
    description: str
    """One sentence for the report."""
    source: str
    """Where the experiment is documented (seed file and section)."""
    objective: Objective
    """What PPO should achieve, tested base vs RLHF."""
    documented: dict[str, float]
    """Documented numbers: rm_accuracy_train/test or <metric>_base/<metric>_rlhf."""
    data: DataSettings
    """Data preparation."""
    sft: SFTSettings
    """Optional language-model training of the policy."""
    policy: str
    """`sft` (the sft stage's output) or a hub id/directory of a causal LM."""
    reward: RewardModelSettings
    """Reward-model training (the reward stage)."""
    ppo: PPOSettings
    """PPO, with a LoRA adapter or on the whole policy."""
    generation: GenerationSettings
    """How responses are sampled, in PPO's rollouts and (unless `evaluate.generation` says otherwise) in
    evaluation."""
    evaluate: EvalSettings
    """Base vs RLHF evaluation on held-out prompts (the evaluate stage)."""
    checkpoint: CheckpointSettings
    """When sft, reward and ppo checkpoint, for an exact resume after a kill."""
    frontier: FrontierSettings = field(default_factory=FrontierSettings)
    """Arms beside PPO on the reward-vs-KL frontier (best-of-n, DPO, PPO's path)."""
    deviations: list[dict] = field(default_factory=list)
    """Where the config departs from the documented setting, or where faithful and sound disagree:
    {setting, documented, ours, sound, why}; `ours` is filled from the config at `setting`."""
    resources: dict[str, dict] = field(default_factory=dict)
    """Cluster resources per rule ({gpu, mem_mb, runtime in minutes}; ppo: shards of a GPU instead of gpu, see
    docs/cluster.md); a Snakemake profile overrides them."""


@dataclass(frozen=True)
class EvaluationSettings:
    """Profile-wide evaluation beside each experiment's own (left out of the experiments' config.json, so that a
    change reruns only what reads it)."""

    prompts_file: str = ""
    """Your own prompts (a text file, one per line, or JSONL with `prompt`): base and RLHF policies of every seed of
    every experiment answer them, scored by the reward and the judge, in the report beside the held-out evaluation
    (the prompts rule); they change no held-out metric or claim. A relative path is read from the working
    directory, else from the checkout (the smoke profile's config/prompts.txt). Empty: none."""


@dataclass(frozen=True)
class TrackingSettings:
    """Live curves of the training stages (sft, reward, ppo) in TensorBoard or W&B, through accelerate's and trl's
    own tracker support (rlhf_bench.tracking). train_log.csv and every metrics file are written, and the same,
    whatever the backend."""

    backend: str = "none"
    """`none`, `tensorboard` (event files, `tensorboard --logdir <dir>`) or `wandb` (one W&B run per job)."""
    project: str = "rlhf-bench"
    """The W&B project of the runs; TensorBoard has no projects (its runs are the folders under `dir`)."""
    run_name: str = ""
    """Start of every run's name, `<run_name>-<experiment>-<stage>-seed<k>` (k: PPO's seed, or the sft/reward
    block's own); empty: the profile."""
    dir: str = ""
    """Folder of the tracker's files: TensorBoard's run folders, W&B's `wandb/` with its offline runs; empty:
    results/<profile>/tracking."""
    offline: bool | None = None
    """W&B only: write runs locally, for `wandb sync <dir>/wandb/offline-run-*` to upload later (true), or upload
    while running (false, needs `wandb login`); null: offline exactly when `hf_hub_offline` is true."""


@dataclass(frozen=True)
class Config:
    profile: str
    """Names results/<profile> and reports/<profile>."""
    title: str
    """Report title."""
    comparable_to_documented: bool
    """False where models or data differ from the documented setting (smoke): verdicts say so."""
    comparability_note: str
    """Why this profile's numbers cannot stand beside the documented ones, for the report's warning."""
    results_dir: str
    """Root of generated results."""
    reports_dir: str
    """Root of generated reports."""
    hf_hub_offline: bool
    """Set HF_HUB_OFFLINE=1 for every job (no hub look-ups; each failed one costs ~45 s of retries)."""
    allow_version_drift: bool
    """Run even when the documented libraries are not at their pinned versions; the report shows it."""
    container: str
    """Container image for `--use-singularity` (empty: none)."""
    hub_cache: str
    """Hugging Face hub cache that the `download` rule fills and every other job reads offline (empty: HF's
    default, $HF_HUB_CACHE or ~/.cache/huggingface/hub)."""
    require_gpu: bool
    """Training and generation stages stop at once, naming the fix, where torch sees no CUDA device."""
    apply_sound_settings: bool
    """Replace every deviation's documented value by its `sound` one (e.g. plain sampling during PPO)."""
    seeds: list[int]
    """PPO seeds; ppo and evaluate fan out over them."""
    threads: int
    """Torch threads per job."""
    portable_cpu_kernels: bool = False
    """Run every model stage on the AVX2 code paths of torch, MKL and oneDNN (runtime.PORTABLE_CPU_KERNELS), which
    every x86-64 CPU of the last decade has, instead of each CPU's own widest kernels (AVX-512, another GEMM
    blocking), whose other summation order is what makes two machines' bits part; 1.23x the CPU time as measured
    (docs/results.md). Not yet checked bitwise on two CPU kinds. GPUs: no effect."""
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)
    """Your own prompts, answered by every policy (`prompts_file`)."""
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    """Experiment tracking (TensorBoard or W&B) of sft, reward and ppo; CSV only by default."""
    experiments: dict[str, Experiment] = field(default_factory=dict)
    """Experiments by name."""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The validated config with defaults filled in, as plain data (what config.json holds)."""

    def experiment(self, name: str) -> Experiment:
        if name not in self.experiments:
            known = ", ".join(sorted(self.experiments))
            raise ConfigError(f"unknown experiment '{name}' (this config has: {known})")
        return self.experiments[name]

    @property
    def sha256(self) -> str:
        from rlhf_bench.config import config_sha256  # config.py reads files into these classes

        return config_sha256(self.raw)
