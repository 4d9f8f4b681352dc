"""Config validation: every broken config stops with one line naming the file and the key."""

from __future__ import annotations

import copy
import dataclasses
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT, smoke_config
from rlhf_bench import config as cfg
from rlhf_bench import settings


def test_smoke_config_validates_and_fills_defaults():
    loaded = cfg.load(ROOT / "config" / "config.yaml")
    assert loaded.profile == "smoke"
    assert set(loaded.experiments) == {"imdb-negative", "instruct-short", "hh-positive"}
    exp = loaded.experiment("imdb-negative")
    generation = exp.generation
    assert (generation.top_k, generation.top_p, generation.temperature) == (0, 1.0, 1.0)  # the trl 0.7.4 KL pitfall
    assert exp.evaluate.generation == generation  # evaluation samples as PPO does
    assert exp.ppo.gamma == 1.0  # a default from the schema
    assert exp.ppo.lora == settings.LoraSettings(enabled=True, r=16, alpha=32, dropout=0.0, target_modules=["c_attn"])
    short = loaded.experiment("instruct-short")
    assert short.generation.max_new_tokens == short.evaluate.generation.max_new_tokens == 48
    assert not any(key.startswith("_") for key in loaded.raw)  # anchor blocks are dropped


def test_dataclasses_and_schema_name_the_same_fields():
    schema = cfg.load_schema()
    defs = schema["$defs"]
    pairs = {
        settings.DataSettings: defs["data"],
        settings.SFTSettings: defs["sft"],
        settings.RewardModelSettings: defs["reward"],
        settings.PPOSettings: defs["ppo"],
        settings.LoraSettings: defs["lora"],
        settings.GenerationSettings: defs["generation"],
        settings.EvalSettings: defs["evaluate"],
        settings.Experiment: defs["experiment"],
        settings.TrackingSettings: defs["tracking"],
    }
    for cls, block in pairs.items():
        names = {f.name for f in dataclasses.fields(cls)} - {"name"}  # an experiment's name is its key
        assert names == set(block["properties"]), cls.__name__
    overrides = defs["evaluate"]["properties"]["generation"]["properties"]
    assert set(overrides) == set(defs["generation"]["properties"])  # evaluate.generation overrides any of them
    top = {f.name for f in dataclasses.fields(settings.Config)} - {"raw"}
    assert top == set(schema["properties"])


def broken(mutate) -> dict:
    raw = copy.deepcopy(smoke_config())
    mutate(raw)
    return raw


CASES = [
    ("unknown top-level key", lambda r: r.update(seedz=[1]), "unknown key 'seedz'"),
    (
        "unknown nested key",
        lambda r: r["experiments"]["imdb-negative"]["ppo"].update(stepz=3),
        "experiments.imdb-negative.ppo: unknown key 'stepz'",
    ),
    (
        "wrong type",
        lambda r: r["experiments"]["instruct-short"]["ppo"].update(steps="ten"),
        "experiments.instruct-short.ppo.steps: 'ten' is not of type 'integer'",
    ),
    (
        "missing experiment field",
        lambda r: r["experiments"]["hh-positive"]["data"].pop("format"),
        "experiments.hh-positive.data: missing required field 'format'",
    ),
    (
        "bad enum",
        lambda r: r["experiments"]["hh-positive"]["ppo"].update(reward="likes"),
        "experiments.hh-positive.ppo.reward",
    ),
    ("no seeds", lambda r: r.update(seeds=[]), "seeds"),
    (
        "negative learning rate",
        lambda r: r["experiments"]["imdb-negative"]["ppo"].update(learning_rate=-1.0),
        "experiments.imdb-negative.ppo.learning_rate",
    ),
    (
        "sft policy without sft",
        lambda r: r["experiments"]["imdb-negative"]["sft"].update(enabled=False),
        "experiments.imdb-negative.policy: 'sft' needs sft.enabled: true",
    ),
    (
        "whole GPUs and GPU shards at once",
        lambda r: r["experiments"]["imdb-negative"].update(resources={"ppo": {"gpu": 1, "shards": 2}}),
        "experiments.imdb-negative.resources.ppo: 'gpu' and 'shards' exclude each other. Fix: keep one of them.",
    ),
    (
        "shards outside ppo",
        lambda r: r["experiments"]["imdb-negative"].update(resources={"sft": {"shards": 2}}),
        "experiments.imdb-negative.resources.sft: unknown key 'shards'",
    ),
]


@pytest.mark.parametrize("name, mutate, expected", CASES, ids=[c[0] for c in CASES])
def test_broken_config_gives_one_line_naming_the_key(name, mutate, expected):
    with pytest.raises(cfg.ConfigError) as info:
        cfg.from_dict(broken(mutate), "my.yaml")
    message = str(info.value)
    assert message.startswith("my.yaml: ")
    assert expected in message
    assert "\n" not in message
    assert "Fix:" in message or "fix" in message.lower()


RENAMED = [  # old key -> new key, inside an experiment
    ("reward_model", "reward"),
    ("evaluation", "evaluate"),
    ("ppo.target_kl", "ppo.target"),
    ("ppo.score_scaling", "ppo.use_score_scaling"),
    ("ppo.score_norm", "ppo.use_score_norm"),
    ("ppo.lora_r", "ppo.lora.r"),
    ("ppo.lora_alpha", "ppo.lora.alpha"),
    ("ppo.lora_dropout", "ppo.lora.dropout"),
    ("ppo.lora_target_modules", "ppo.lora.target_modules"),
    ("ppo.max_new_tokens", "generation.max_new_tokens"),
    ("ppo.temperature", "generation.temperature"),
    ("ppo.top_k", "generation.top_k"),
    ("ppo.top_p", "generation.top_p"),
    ("evaluate.max_new_tokens", "generation.max_new_tokens"),
    ("evaluate.temperature", "generation.temperature"),
    ("evaluate.top_k", "generation.top_k"),
    ("evaluate.top_p", "generation.top_p"),
]


def test_every_renamed_key_is_tested():
    assert dict(RENAMED) == cfg.RENAMED


def _with_old_key(old: str):
    def mutate(raw):
        exp = raw["experiments"]["imdb-negative"]
        *blocks, key = old.split(".")
        if not blocks:  # a renamed block: move it back
            exp[key] = exp.pop(cfg.RENAMED[old])
            return
        block = exp[blocks[0]] = dict(exp[blocks[0]])
        block[key] = 1

    return mutate


@pytest.mark.parametrize("old, new", RENAMED, ids=[old for old, _ in RENAMED])
def test_renamed_key_gives_one_line_naming_the_new_key(old, new):
    with pytest.raises(cfg.ConfigError) as info:
        cfg.from_dict(broken(_with_old_key(old)), "config/x.yaml")
    message = str(info.value)
    assert message.startswith(
        f"config/x.yaml: experiments.imdb-negative.{old} was renamed: use experiments.imdb-negative.{new}"
    )
    assert "\n" not in message


def test_lora_flag_was_renamed_to_lora_enabled():
    raw = broken(lambda r: r["experiments"]["hh-positive"].update(ppo={"reward": "reward_model", "lora": False}))
    with pytest.raises(cfg.ConfigError) as info:
        cfg.from_dict(raw, "config/x.yaml")
    assert str(info.value) == (
        "config/x.yaml: experiments.hh-positive.ppo.lora: false was renamed: use "
        "experiments.hh-positive.ppo.lora.enabled: false."
    )


@pytest.mark.parametrize(
    "old, new",
    [("ppo.temperature", "generation.temperature"), ("reward_model.init", "reward.init"),
     ("evaluation.num_samples", "evaluate.num_samples"), ("ppo.lora", "ppo.lora.enabled")],
)  # fmt: skip
def test_deviation_naming_a_renamed_key_names_the_new_one(old, new):
    deviation = {"setting": old, "documented": 1, "ours": 1, "why": "x"}
    raw = broken(lambda r: r["experiments"]["instruct-short"].update(deviations=[deviation]))
    with pytest.raises(cfg.ConfigError) as info:
        cfg.from_dict(raw, "my.yaml")
    assert str(info.value) == (
        f"my.yaml: experiments.instruct-short.deviations[0].setting: '{old}' was renamed: use '{new}'."
    )


def test_renamed_key_in_a_file_names_the_file(tmp_path):
    text = (ROOT / "config" / "config.yaml").read_text().replace("  target: 6.0", "  target_kl: 6.0", 1)
    path = tmp_path / "old.yaml"
    path.write_text(text)
    with pytest.raises(cfg.ConfigError, match=r"old.yaml: experiments.imdb-negative.ppo.target_kl was renamed: use "
                       r"experiments.imdb-negative.ppo.target\.$"):  # fmt: skip
        cfg.load(path)


def test_evaluate_generation_overrides_only_what_it_names():
    raw = broken(lambda r: r["experiments"]["hh-positive"]["evaluate"].update(generation={"temperature": 0.7}))
    exp = cfg.from_dict(raw).experiment("hh-positive")
    assert exp.generation == settings.GenerationSettings(max_new_tokens=20, temperature=1.0, top_k=0, top_p=1.0)
    assert exp.evaluate.generation == settings.GenerationSettings(
        max_new_tokens=20, temperature=0.7, top_k=0, top_p=1.0
    )


def test_trl_ppo_config_gets_our_target_and_every_field_it_shares():
    from trl import PPOConfig

    from rlhf_bench.train.ppo import trl_ppo_config

    raw = broken(lambda r: r["experiments"]["imdb-negative"]["ppo"].update(target=4.5, use_score_scaling=True))
    settings = cfg.from_dict(raw).experiment("imdb-negative").ppo
    config = trl_ppo_config(settings, "my-policy", seed=3)
    assert config.target == 4.5  # the adaptive KL controller's target
    assert config.target_kl == PPOConfig.target_kl and not config.early_stopping  # early stopping's: untouched
    shared = {f.name for f in dataclasses.fields(PPOConfig)} & {f.name for f in dataclasses.fields(settings)}
    assert {f.name for f in dataclasses.fields(settings)} - shared == {
        "reward", "lora", "gradient_checkpointing", "mixed_precision",
    }  # fmt: skip
    assert {name: getattr(config, name) for name in shared} == {name: getattr(settings, name) for name in shared}
    assert config.use_score_scaling and not config.use_score_norm and config.steps == 48
    assert (config.model_name, config.seed, config.accelerator_kwargs) == ("my-policy", 3, {"mixed_precision": "no"})


def test_unreadable_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("profile: smoke\nseeds: [0, 1\n")
    with pytest.raises(cfg.ConfigError, match=r"bad.yaml: line \d+ is not valid YAML"):
        cfg.load(path)


def test_config_hash_ignores_layout_but_not_values():
    raw = {k: v for k, v in smoke_config().items() if not k.startswith("_")}
    a = cfg.from_dict(raw)
    b = cfg.from_dict(yaml.safe_load(yaml.safe_dump(raw, sort_keys=True)))
    changed = copy.deepcopy(raw)
    changed["experiments"]["imdb-negative"]["ppo"]["steps"] += 1
    assert a.sha256 == b.sha256
    assert cfg.from_dict(changed).sha256 != a.sha256


def test_snakemake_rejects_broken_config_before_any_job(tmp_path):
    raw = broken(lambda r: r["experiments"]["imdb-negative"]["ppo"].update(stepz=3))
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--cores",
            "1",
            "--configfile",
            str(path),
            "--directory",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if "config error" in line]
    assert len(lines) == 1, result.stderr
    assert "experiments.imdb-negative.ppo: unknown key 'stepz'" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "results").exists()
