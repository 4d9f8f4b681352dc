"""Experiments are data: a YAML config, validated against config/schema.yaml, read into the dataclasses of
settings.py (which own the meaning of every field), with one-line errors naming the file, the field and the fix.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import re
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import best_match

from rlhf_bench.io import ConfigError, read_text, read_yaml
from rlhf_bench.settings import (
    CheckpointSettings,
    Config,
    DataSettings,
    DPOSettings,
    EvalSettings,
    EvaluationSettings,
    Experiment,
    FrontierSettings,
    GenerationSettings,
    LoraSettings,
    Objective,
    PPOSettings,
    RewardModelSettings,
    SFTSettings,
    TrackingSettings,
)

PACKAGE_ROOT = Path(__file__).resolve().parent
SCHEMA_PATH = PACKAGE_ROOT / "schema.yaml"


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
    if error.validator == "not" and set(error.validator_value.get("required", ())) <= set(error.instance):
        both = " and ".join(repr(k) for k in error.validator_value["required"])
        return f"{source}: {where}: {both} exclude each other. Fix: keep one of them."
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
        what = "is empty" if raw is None else f"is a {type(raw).__name__}, not a mapping of keys to values"
        raise ConfigError(f"{source}: (top level): the config {what}. Fix: start from config/config.yaml.")
    _check_renamed(raw, source)
    _check_finite(raw, source)
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


def _check_finite(value, source: str, where: str = "") -> None:
    """NaN and infinity pass every JSON-schema bound (NaN compares false), so refuse them by name first."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, source, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_finite(item, source, f"{where}[{index}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{source}: {where}: {value} is not a finite number. Fix: give a number.")


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
    if exp["ppo"]["batch_size"] % exp["ppo"]["mini_batch_size"]:  # trl asserts it, whatever the reward
        raise ConfigError(f"{where}.ppo.mini_batch_size: must divide ppo.batch_size. Fix: change one of them.")
    if exp["evaluate"]["judge"] == "classifier" and not exp["evaluate"]["judge_model"]:
        raise ConfigError(
            f"{where}.evaluate.judge_model: empty, but judge is `classifier`. Fix: name a sequence classifier "
            "(hub id@revision or directory)."
        )
    low, high = exp["data"]["prompt_words"]
    if low > high:
        raise ConfigError(f"{where}.data.prompt_words: [min, max] with min > max. Fix: swap them.")
    frontier = exp["frontier"]
    if frontier.get("dpo", {}).get("pairs") == "data" and exp["data"]["format"] == "imdb":
        raise ConfigError(
            f"{where}.frontier.dpo.pairs: 'data', but imdb pairs are two reviews that share no prompt. Fix: use "
            "'policy' (two base-policy answers to each PPO prompt, ranked by the reward, as the DPO paper did)."
        )
    context = exp["sft"]["max_length"] if exp["policy"] == "sft" and exp["sft"]["init"] == "scratch" else None
    if "dpo" in frontier and context and frontier["dpo"]["max_length"] > context:
        raise ConfigError(
            f"{where}.frontier.dpo.max_length: {frontier['dpo']['max_length']} tokens, past the policy's context "
            f"(sft.max_length {context}). Fix: at most {context}."
        )
    steps = [path_step(f, exp["ppo"]["steps"]) for f in frontier.get("ppo_path", [])]
    if any(not 0 < step < exp["ppo"]["steps"] for step in steps) or len(set(steps)) < len(steps):
        raise ConfigError(
            f"{where}.frontier.ppo_path: {frontier['ppo_path']} of ppo.steps {exp['ppo']['steps']} gives steps "
            f"{steps}, which must be distinct and between the first and the last. Fix: fewer or more widely spaced "
            "fractions."
        )
    if exp["data"]["n_prompts_train"] < exp["ppo"]["batch_size"]:
        raise ConfigError(
            f"{where}.data.n_prompts_train: fewer prompts than ppo.batch_size. Fix: raise it to at least "
            f"{exp['ppo']['batch_size']}."
        )


def path_step(fraction: float, steps: int) -> int:
    """The PPO step at which `frontier.ppo_path`'s fraction of the steps is done."""
    return round(fraction * steps)


def _build(cls, data: dict):
    return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


def _frontier(block: dict) -> FrontierSettings:
    return FrontierSettings(
        ppo_path=sorted(block.get("ppo_path", [])),
        best_of_n=sorted(block.get("best_of_n", {}).get("n", [])),
        dpo=_build(DPOSettings, block["dpo"]) if "dpo" in block else None,
    )


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
            checkpoint=_build(CheckpointSettings, exp["checkpoint"]),
            frontier=_frontier(exp["frontier"]),
            deviations=[dict(d) for d in exp["deviations"]],
            resources={rule: dict(values) for rule, values in exp["resources"].items()},
        )
    top = {k: v for k, v in filled.items() if k not in ("experiments", "evaluation")}
    top["tracking"] = _build(TrackingSettings, filled["tracking"])
    evaluation = _build(EvaluationSettings, filled["evaluation"])
    return Config(**top, evaluation=evaluation, experiments=experiments, raw=filled)


def load(path: str | Path) -> Config:
    """Read a YAML or JSON config file; ConfigError (one line) on anything that cannot run."""
    path = Path(path)
    if path.suffix == ".json":  # what stages read (write_resolved); YAML 1.1 would read 5e-05 as a string
        try:
            return from_dict(json.loads(read_text(path, "config", ConfigError)), str(path))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: line {exc.lineno} is not valid JSON ({exc.msg}).") from None
    return from_dict(read_yaml(path, "config", ConfigError), str(path))


def config_sha256(raw: dict) -> str:
    """Hash of the canonical JSON form: equal configs hash equal whatever their YAML layout."""
    return hashlib.sha256(canonical_json(raw).encode()).hexdigest()


def canonical_json(raw: dict) -> str:
    return json.dumps(raw, sort_keys=True, separators=(",", ":"))


# Top-level blocks that only profile-wide rules read: left out of an experiment's slice, so that a change to them
# reruns none of the experiment's stages.
PROFILE_ONLY = ("evaluation",)


def experiment_slice(raw: dict, experiment: str) -> dict:
    """One experiment's config.json: the top-level keys but PROFILE_ONLY's, and only that experiment."""
    return {
        **{key: value for key, value in raw.items() if key not in PROFILE_ONLY},
        "experiments": {experiment: raw["experiments"][experiment]},
    }


def write_resolved(raw: dict, out: str | Path, experiment: str | None = None) -> None:
    """Write the validated config (or one experiment's slice of it) as the JSON every stage reads.

    An experiment's slice keeps the top-level keys and only that experiment, so a change to one experiment
    reruns only its jobs.
    """
    data = copy.deepcopy(experiment_slice(raw, experiment) if experiment is not None else raw)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def main(argv=None) -> int:
    """`python -m rlhf_bench.config FILE...`: validate config files as the DAG does, one line per bad file.

    `make run` calls it before Snakemake, whose own `--configfile` reader stops on an empty, non-mapping, non-YAML
    or missing file before the Snakefile runs, without naming the file."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m rlhf_bench.config", description=main.__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="config files (YAML or JSON)")
    status = 0
    for name in parser.parse_args(argv).files:
        try:
            load(name)
        except ConfigError as exc:
            print(f"rlhf-bench: config error: {exc}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
