"""The layout is one fact: the files the DAG asks for are the files the report reads, whatever the config."""

import json
from pathlib import Path

import pytest
import yaml

from rlhf_bench.config import validate
from rlhf_bench.layout import Layout, runs_sft
from rlhf_bench.report.inputs import load_provenance

ROOT = Path(__file__).resolve().parents[1]


def smoke_config(**experiment_changes) -> dict:
    raw = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    for exp in raw["experiments"].values():
        exp.update(experiment_changes)
    return validate(raw, "config/config.yaml")


def write_provenance_tree(layout: Layout, root: Path) -> set[str]:
    """Write exactly the provenance files the DAG produces (Layout's list) and each experiment's checksums."""
    written = set()
    for path in layout.provenance_files():
        relative = Path(path).relative_to(layout.results).as_posix()
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        record = {"versions": {}, "git_commit": "0" * 40, "config_sha256": "0" * 64, "hardware": {}}
        target.write_text(json.dumps(record))
        written.add(str(Path(relative).parent.as_posix()))
    for experiment in layout.experiments:
        (root / experiment / "data" / "checksums.json").write_text("{}")
    return written


@pytest.mark.parametrize(
    ("changes", "sft_runs"),
    [
        ({}, True),  # the smoke profile: policy from the sft stage
        # The drift of issue 11: sft enabled beside a hub policy validated, the DAG ran no sft, the report
        # then asked for sft/provenance.json and failed.
        ({"policy": "sshleifer/tiny-gpt2", "sft": {"enabled": True}}, False),
        ({"policy": "sshleifer/tiny-gpt2", "sft": {"enabled": False}}, False),
    ],
)
def test_report_reads_the_provenance_the_dag_writes(tmp_path, changes, sft_runs):
    config = smoke_config(**changes)
    layout = Layout(config)
    assert all(runs_sft(exp) is sft_runs for exp in config["experiments"].values())
    written = write_provenance_tree(layout, tmp_path)

    records, checksums = load_provenance(config, tmp_path)

    assert {label for label, _ in records} == written
    assert any(label.endswith("/sft") for label in written) is sft_runs
    assert set(checksums) == set(layout.experiments)


def test_config_overrides_are_typed_as_yaml_types_them():
    """`--config seeds=[0,1,2,3,4]` reaches the schema as ["0", ...] (Snakemake's BaseLoader): the README's
    own command must validate, and a bad value must name --config as its source."""
    from rlhf_bench.config import ConfigError
    from rlhf_bench.layout import with_typed_overrides

    base = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    overrides = {"seeds": ["0", "1", "2", "3", "4"], "threads": 2}
    merged = with_typed_overrides({**base, **overrides}, overrides)
    assert validate(merged, "--config")["seeds"] == [0, 1, 2, 3, 4]

    nested = {"experiments": {"imdb-negative": {"ppo": {"steps": "5"}}}}
    merged = with_typed_overrides({**base, "container": "7"}, {**nested, "container": "7"})
    assert merged["experiments"]["imdb-negative"]["ppo"]["steps"] == 5
    assert merged["container"] == "7"  # a top-level string stays what Snakemake made of it

    bad = {"seeds": ["0", "x"]}
    with pytest.raises(ConfigError, match=r"seeds\.1: 'x'"):
        validate(with_typed_overrides({**base, **bad}, bad), "--config")


def test_rules_schema_and_modules_agree_with_layout():
    """layout.py is the one place for rule names: rules/*.smk define exactly its rules, each shell runs the module
    layout.MODULES names for it, the schema's `resources` take exactly its stages, and every stage module exists."""
    import importlib.util
    import re

    from rlhf_bench.layout import FRONTIER_STAGES, MODULES, RULE_ORDER, STAGES, USER_STAGES

    rules = {}
    for path in (ROOT / "rules").glob("*.smk"):
        for name, body in re.findall(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)*)", path.read_text(), re.M):
            rules[name] = body
    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    resource_rules = schema["$defs"]["experiment"]["properties"]["resources"]["propertyNames"]["enum"]

    assert set(rules) == set(RULE_ORDER)
    assert resource_rules == [*STAGES, *FRONTIER_STAGES, *USER_STAGES]
    for rule, body in rules.items():
        called = re.findall(r"python -m ([\w.]+)", body)
        assert called == ([MODULES[rule]] if rule in MODULES else []), rule
    for module in MODULES.values():
        assert importlib.util.find_spec(module) is not None, module


def test_producing_rule_is_the_stage_folder():
    from rlhf_bench.layout import producing_rule

    assert producing_rule("results/smoke/imdb-negative/evaluate/seed2/metrics.json") == "evaluate"
    assert producing_rule("results/smoke/imdb-negative/reward/model/config.json") == "reward"
    assert producing_rule("results/smoke/imdb-negative/data/checksums.json") == "data"
    assert producing_rule("results/smoke/summary.csv") == "aggregate"
    assert producing_rule("results/smoke/imdb-negative/dpo/seed0/beta-0.1/adapter/adapter_config.json") == "dpo"
    assert producing_rule("results/smoke/frontier_matched.csv") == "frontier"
    assert producing_rule("results/smoke/config.json") == "resolved_config"
    assert producing_rule("elsewhere/notes.txt") == ""
