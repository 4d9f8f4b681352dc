"""Nothing is read unverified: every stage checks the files it reads against the checksums their producer
recorded, and a changed file stops it with one line naming the file and the rule to rerun."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import evaluate_args
from rlhf_bench.io import checksum_tree
from rlhf_bench.train import evaluate, sft


def test_every_stage_records_the_checksums_of_what_it_wrote(chain):
    root, _, _ = chain
    for stage in ("data", "sft", "reward", "ppo"):
        provenance = json.loads((root / stage / "provenance.json").read_text())
        assert provenance["outputs"] == checksum_tree(root / stage) and provenance["outputs"], stage
    ppo_record = json.loads((root / "ppo" / "provenance.json").read_text())
    assert set(ppo_record["inputs"]) == {"sft", "reward"}
    assert ppo_record["inputs"]["sft"] == json.loads((root / "sft" / "provenance.json").read_text())["outputs"]


@pytest.mark.parametrize(
    ("changed", "rule"),
    [
        ("data/prompts_eval.jsonl", "data"),  # cut to its first line
        ("ppo/adapter/adapter_model.safetensors", "ppo"),
        ("ppo/value_head.safetensors", "ppo"),
        ("sft/model/model.safetensors", "sft"),
        ("reward/model/model.safetensors", "reward"),
    ],
)
def test_a_changed_input_stops_the_reader_naming_file_and_rule(chain, tmp_path, capsys, changed, rule):
    root, common, models = chain
    copy = tmp_path / "run"
    shutil.copytree(root, copy)
    target = copy / changed
    content = target.read_bytes()
    target.write_bytes(content.split(b"\n", 1)[0] + b"\n" if target.suffix == ".jsonl" else content[:-8])
    models = [arg.replace(str(root), str(copy)) for arg in models]
    out = tmp_path / "evaluate"
    capsys.readouterr()

    assert evaluate.main(evaluate_args(copy, common, models, out)) == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert str(target) in err and f"rerun the rule '{rule}'" in err
    assert not (out / "metrics.json").exists() and not (out / "provenance.json").exists()


def test_a_missing_recorded_file_is_named(chain, tmp_path, capsys):
    root, common, models = chain
    copy = tmp_path / "run"
    shutil.copytree(root, copy)
    (copy / "data" / "corpus.jsonl").unlink()
    capsys.readouterr()
    assert sft.main([*common, "--data", str(copy / "data"), "--out", str(tmp_path / "sft")]) == 2
    err = capsys.readouterr().err
    assert "corpus.jsonl: missing, but" in err and "rerun the rule 'data'" in err


def test_a_pickle_beside_the_weights_is_refused(chain, tmp_path, capsys):
    root, common, models = chain
    copy = tmp_path / "run"
    shutil.copytree(root, copy)
    (copy / "ppo" / "adapter" / "adapter_model.bin").write_bytes(b"not loaded")
    models = [arg.replace(str(root), str(copy)) for arg in models]
    capsys.readouterr()
    assert evaluate.main(evaluate_args(copy, common, models, tmp_path / "evaluate")) == 2
    err = capsys.readouterr().err
    assert "adapter_model.bin: a pickle" in err and err.count("\n") == 1
