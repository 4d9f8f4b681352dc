"""Experiments are data: a YAML config, validated against config/schema.yaml, read into dataclasses.

The schema owns types, bounds and defaults; the dataclasses below own the meaning of every field (one
docstring each, cleanrl-style). `tests/test_config.py` checks that the two name the same fields.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import best_match

from rlhf_bench.io import StageError, read_yaml

PACKAGE_ROOT = Path(__file__).resolve().parent
SCHEMA_PATH = PACKAGE_ROOT / "schema.yaml"


class ConfigError(StageError):
    """A config that cannot be run; the message is one line naming the file, the field and the fix.
    A StageError like every other; its own name only so that the DAG can say "config error"."""


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
    data_dir: str = ""
    """Subset directory inside the source (Anthropic/hh-rlhf: helpful-base, harmless-base, ...); empty: all of
    it, as `datasets.load_dataset(source)` without data_dir."""
    prompt_tokenizer: str = ""
    """imdb only: when set (hub id@revision or directory), `prompt_words` counts this tokenizer's tokens
    instead of words, as TRL's gpt2-sentiment example cuts reviews to 2-7 GPT-2 tokens."""


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
    deviations: list[dict] = field(default_factory=list)
    """Where the config departs from the documented setting, or where faithful and sound disagree:
    {setting, documented, ours, sound, why}; `ours` is filled from the config at `setting`."""
    resources: dict[str, dict] = field(default_factory=dict)
    """Cluster resources per rule ({gpu, mem_mb, runtime in minutes}); a Snakemake profile overrides them."""


@dataclass(frozen=True)
class Config:
    profile: str
    """Names results/<profile> and reports/<profile>."""
    title: str
    """Report title."""
    comparable_to_documented: bool
    """False where models or data differ from the documented setting (smoke): verdicts say so."""
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
        return config_sha256(self.raw)


def _with_defaults(validator_class):
    """The jsonschema FAQ recipe: fill `default`s while validating, so nested blocks get theirs too."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


_DefaultFillingValidator = _with_defaults(Draft202012Validator)


def load_schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _field_path(error) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(top level)"


def _describe(error, source: str) -> str:
    """One line: file, field, what is wrong, how to fix it."""
    where = _field_path(error)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        patterns = list(error.schema.get("patternProperties", {}))
        unknown = sorted(k for k in error.instance if k not in allowed and not any(re.search(p, k) for p in patterns))
        hint = f"allowed: {', '.join(allowed)}" if allowed else "see config/schema.yaml"
        return (
            f"{source}: {where}: unknown key {', '.join(repr(k) for k in unknown)}. Fix: remove or rename it ({hint})."
        )
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"{source}: {where}: missing required field '{missing}'. Fix: add it (see config/schema.yaml)."
    if error.validator == "propertyNames":
        return f"{source}: {where}: bad key {error.instance!r}: {error.message}. Fix: rename it."
    return f"{source}: {where}: {error.message}. Fix: see config/schema.yaml for the allowed values."


# Keys of an experiment that were renamed (old path -> new path, both inside the experiment): stage blocks
# take their stage's name, PPO fields trl's PPOConfig names, LoRA and sampling settings their own blocks.
RENAMED = {
    "reward_model": "reward",
    "evaluation": "evaluate",
    "ppo.target_kl": "ppo.target",
    "ppo.score_scaling": "ppo.use_score_scaling",
    "ppo.score_norm": "ppo.use_score_norm",
    "ppo.lora_r": "ppo.lora.r",
    "ppo.lora_alpha": "ppo.lora.alpha",
    "ppo.lora_dropout": "ppo.lora.dropout",
    "ppo.lora_target_modules": "ppo.lora.target_modules",
    **{f"ppo.{key}": f"generation.{key}" for key in ("max_new_tokens", "temperature", "top_k", "top_p")},
    **{f"evaluate.{key}": f"generation.{key}" for key in ("max_new_tokens", "temperature", "top_k", "top_p")},
}


def _renamed(path: str) -> str | None:
    """The new name of an old key path (or of a path below one), else None."""
    for old, new in RENAMED.items():
        if path == old or path.startswith(old + "."):
            return new + path[len(old) :]
    return None


def _check_renamed(raw: dict, source: str) -> None:
    """One line naming the new key for the first renamed key in use, before the schema's generic complaint."""
    experiments = raw.get("experiments")
    if not isinstance(experiments, dict):
        return
    for name, exp in experiments.items():
        if not isinstance(exp, dict):
            continue
        where = f"{source}: experiments.{name}"
        for old, new in RENAMED.items():
            *blocks, key = old.split(".")
            block = exp
            for part in blocks:
                block = block.get(part) if isinstance(block, dict) else None
            if isinstance(block, dict) and key in block:
                also = f" (or evaluate.generation.{key} to sample unlike PPO)" if blocks == ["evaluate"] else ""
                raise ConfigError(f"{where}.{old} was renamed: use experiments.{name}.{new}{also}.")
        ppo = exp.get("ppo")
        if isinstance(ppo, dict) and isinstance(ppo.get("lora"), bool):  # was `lora: true/false`
            value = str(ppo["lora"]).lower()
            raise ConfigError(
                f"{where}.ppo.lora: {value} was renamed: use experiments.{name}.ppo.lora.enabled: {value}."
            )
        for index, deviation in enumerate(exp.get("deviations") or []):
            setting = deviation.get("setting") if isinstance(deviation, dict) else None
            new = (
                "ppo.lora.enabled" if setting == "ppo.lora" else _renamed(setting) if isinstance(setting, str) else None
            )
            if new is not None:
                raise ConfigError(f"{where}.deviations[{index}].setting: '{setting}' was renamed: use '{new}'.")


def _unshared_copy(value):
    """A deep copy in which a block that YAML shares (an alias, or a nested block such as `ppo.lora` that a
    `<<:` merge brings into several experiments) becomes one copy per place, so that applying a deviation in one
    experiment never changes another (copy.deepcopy would keep the sharing)."""
    if isinstance(value, dict):
        return {key: _unshared_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unshared_copy(item) for item in value]
    return copy.deepcopy(value)


def validate(raw: dict, source: str = "config") -> dict:
    """Validate `raw` against the schema and return a copy with defaults filled in; ConfigError otherwise."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the config must be a mapping of keys to values, got {type(raw).__name__}.")
    _check_renamed(raw, source)
    filled = _unshared_copy(raw)
    error = best_match(_DefaultFillingValidator(load_schema()).iter_errors(filled))
    if error is not None:
        raise ConfigError(_describe(error, source))
    if _apply_deviations(filled, source):  # sound values replaced documented ones: check them too
        error = best_match(_DefaultFillingValidator(load_schema()).iter_errors(filled))
        if error is not None:
            raise ConfigError(_describe(error, source))
    for name, exp in filled["experiments"].items():
        _check_experiment(name, exp, source)
    return {key: value for key, value in filled.items() if not key.startswith("_")}


def _apply_deviations(filled: dict, source: str) -> bool:
    """Resolve each deviation's `setting` (e.g. `generation.temperature`) in its experiment; with
    apply_sound_settings put its `sound` value there; record the value that runs as `ours`.

    A `setting` that names no config value is a description (e.g. how prompts are chosen): it needs `ours`
    and cannot carry a `sound` value to apply. Returns whether any value was replaced.
    """
    replaced = False
    for name, exp in filled["experiments"].items():
        for index, deviation in enumerate(exp["deviations"]):
            where = f"{source}: experiments.{name}.deviations[{index}]"
            *blocks, key = deviation["setting"].split(".")
            target = exp
            for block in blocks:
                target = target.get(block) if isinstance(target, dict) else None
            if not isinstance(target, dict) or key not in target:
                if "sound" in deviation or "ours" not in deviation:
                    raise ConfigError(
                        f"{where}.setting: '{deviation['setting']}' names no setting of the experiment, so its "
                        "value cannot be applied or read. Fix: name one (e.g. generation.temperature), or describe it "
                        "with `ours` and without `sound`."
                    )
                continue
            if filled.get("apply_sound_settings") and "sound" in deviation and target[key] != deviation["sound"]:
                target[key] = deviation["sound"]
                replaced = True
            deviation["ours"] = target[key]
    return replaced


def _check_experiment(name: str, exp: dict, source: str) -> None:
    """Rules across fields that a JSON schema cannot say plainly."""
    where = f"{source}: experiments.{name}"
    if exp["policy"] == "sft" and not exp["sft"]["enabled"]:
        raise ConfigError(f"{where}.policy: 'sft' needs sft.enabled: true. Fix: enable sft or name a causal LM.")
    if exp["ppo"]["reward"] == "reward_model" and exp["ppo"]["batch_size"] % exp["ppo"]["mini_batch_size"]:
        raise ConfigError(f"{where}.ppo.mini_batch_size: must divide ppo.batch_size. Fix: change one of them.")
    if exp["evaluate"]["judge"] == "classifier" and not exp["evaluate"]["judge_model"]:
        raise ConfigError(
            f"{where}.evaluate.judge_model: empty, but judge is `classifier`. Fix: name a sequence classifier "
            "(hub id@revision or directory)."
        )
    low, high = exp["data"]["prompt_words"]
    if low > high:
        raise ConfigError(f"{where}.data.prompt_words: [min, max] with min > max. Fix: swap them.")
    if exp["data"]["n_prompts_train"] < exp["ppo"]["batch_size"]:
        raise ConfigError(
            f"{where}.data.n_prompts_train: fewer prompts than ppo.batch_size. Fix: raise it to at least "
            f"{exp['ppo']['batch_size']}."
        )


def _build(cls, data: dict):
    return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


def from_dict(raw: dict, source: str = "config") -> Config:
    filled = validate(raw, source)
    experiments = {}
    for name, exp in filled["experiments"].items():
        generation = _build(GenerationSettings, exp["generation"])
        experiments[name] = Experiment(
            name=name,
            description=exp["description"],
            source=exp["source"],
            objective=_build(Objective, exp["objective"]),
            documented=dict(exp["documented"]),
            data=_build(DataSettings, exp["data"]),
            sft=_build(SFTSettings, exp["sft"]),
            policy=exp["policy"],
            reward=_build(RewardModelSettings, exp["reward"]),
            ppo=_build(PPOSettings, {**exp["ppo"], "lora": _build(LoraSettings, exp["ppo"]["lora"])}),
            generation=generation,
            evaluate=_build(
                EvalSettings,
                {**exp["evaluate"], "generation": dataclasses.replace(generation, **exp["evaluate"]["generation"])},
            ),
            deviations=[dict(d) for d in exp["deviations"]],
            resources={rule: dict(values) for rule, values in exp["resources"].items()},
        )
    top = {k: v for k, v in filled.items() if k != "experiments"}
    return Config(**top, experiments=experiments, raw=filled)


def load(path: str | Path) -> Config:
    """Read a YAML or JSON config file; ConfigError (one line) on anything that cannot run."""
    path = Path(path)
    if path.suffix == ".json":  # what stages read (write_resolved); YAML 1.1 would read 5e-05 as a string
        try:
            return from_dict(json.loads(path.read_text()), str(path))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the config ({exc.strerror}). Fix: check the path.") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: line {exc.lineno} is not valid JSON ({exc.msg}).") from None
    return from_dict(read_yaml(path, "config", ConfigError), str(path))


def config_sha256(raw: dict) -> str:
    """Hash of the canonical JSON form: equal configs hash equal whatever their YAML layout."""
    return hashlib.sha256(canonical_json(raw).encode()).hexdigest()


def canonical_json(raw: dict) -> str:
    return json.dumps(raw, sort_keys=True, separators=(",", ":"))


def write_resolved(raw: dict, out: str | Path, experiment: str | None = None) -> None:
    """Write the validated config (or one experiment's slice of it) as the JSON every stage reads.

    An experiment's slice keeps the top-level keys and only that experiment, so a change to one experiment
    reruns only its jobs.
    """
    data = copy.deepcopy(raw)
    if experiment is not None:
        data["experiments"] = {experiment: data["experiments"][experiment]}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
