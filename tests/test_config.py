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


def test_smoke_config_validates_and_fills_defaults():
    loaded = cfg.load(ROOT / "config" / "config.yaml")
    assert loaded.profile == "smoke"
    assert set(loaded.experiments) == {"imdb-negative", "instruct-short", "hh-positive"}
    ppo = loaded.experiment("imdb-negative").ppo
    assert (ppo.top_k, ppo.top_p, ppo.temperature) == (0, 1.0, 1.0)  # the trl 0.7.4 KL pitfall
    assert ppo.gamma == 1.0  # a default from the schema
    assert not any(key.startswith("_") for key in loaded.raw)  # anchor blocks are dropped


def test_dataclasses_and_schema_name_the_same_fields():
    schema = cfg.load_schema()
    defs = schema["$defs"]
    pairs = {
        cfg.DataSettings: defs["data"],
        cfg.SFTSettings: defs["sft"],
        cfg.RewardModelSettings: defs["reward_model"],
        cfg.PPOSettings: defs["ppo"],
        cfg.EvalSettings: defs["evaluation"],
    }
    for cls, block in pairs.items():
        assert {f.name for f in dataclasses.fields(cls)} == set(block["properties"]), cls.__name__
    top = {f.name for f in dataclasses.fields(cfg.Config)} - {"raw"}
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
