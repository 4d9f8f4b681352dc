"""data: deterministic files with checksums, the right pairs, clear errors on malformed records."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from conftest import tiny_config
from rlhf_bench.config import from_dict
from rlhf_bench.io import StageError, sha256_file
from rlhf_bench.layout import DATA_FILES
from rlhf_bench.train import data, sources, synthetic


def settings(name):
    return from_dict(tiny_config()).experiment(name).data


@pytest.mark.parametrize("name", ["imdb-negative", "instruct-short", "hh-positive"])
def test_prepare_is_deterministic_and_checksummed(tmp_path, name):
    first = data.prepare(settings(name), tmp_path / "a")
    second = data.prepare(settings(name), tmp_path / "b")
    assert first == second
    assert set(first) == set(DATA_FILES)
    for file, digest in first.items():
        assert sha256_file(tmp_path / "a" / file) == digest
    assert json.loads((tmp_path / "a" / "checksums.json").read_text()) == first
    other = data.prepare(replace(settings(name), seed=1), tmp_path / "c")
    assert other["pairs_train.jsonl"] != first["pairs_train.jsonl"]


def test_imdb_pairs_prefer_the_negative_review(tmp_path):
    s = settings("imdb-negative")
    data.prepare(s, tmp_path)
    negative = {r["text"] for r in synthetic.make_reviews(2 * s.n_pairs_train, s.seed) if r["label"] == 0}
    pairs = data.load_records(tmp_path / "pairs_train.jsonl")
    assert len(pairs) == s.n_pairs_train
    assert all(p["chosen"] in negative and p["rejected"] not in negative for p in pairs)
    low, high = s.prompt_words
    prompts = data.load_records(tmp_path / "prompts_train.jsonl")
    assert all(low <= len(p["prompt"].split()) <= high for p in prompts)


def test_pairwise_and_hh_texts_start_with_their_prompt(tmp_path):
    for name in ("instruct-short", "hh-positive"):
        data.prepare(settings(name), tmp_path / name)
        for pair in data.load_records(tmp_path / name / "pairs_test.jsonl"):
            assert pair["chosen"].startswith(pair["prompt"]) and pair["rejected"].startswith(pair["prompt"])
            assert pair["chosen"] != pair["rejected"]
    for prompt in data.load_records(tmp_path / "hh-positive" / "prompts_eval.jsonl"):
        assert prompt["prompt"].startswith("\n\nHuman: ") and prompt["prompt"].endswith("\n\nAssistant:")


HH_TURN = "\n\nHuman: {q}\n\nAssistant:"


def hh_pair(question: str, chosen: str, rejected: str, rejected_question: str | None = None) -> dict:
    return {
        "chosen": HH_TURN.format(q=question) + chosen,
        "rejected": HH_TURN.format(q=rejected_question or question) + rejected,
    }


def test_bad_pairs_are_counted_and_identical_ones_dropped(tmp_path):
    """Four HH pairs: one fine, one identical, one whose conversations differ before the last Assistant turn,
    one with an empty final reply. Each is counted; the identical one is dropped unless kept by the setting."""
    records = [
        hh_pair("How are you?", " Fine, thanks.", " Go away."),
        hh_pair("Hello?", " Hi there.", " Hi there."),
        hh_pair("What is two plus two?", " Four.", " Five.", rejected_question="What is two plus three?"),
        hh_pair("Tell me a joke.", " ", " No."),
    ]
    for split in ("train", "test"):
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    s = replace(
        settings("hh-positive"), source=str(tmp_path), n_pairs_train=4, n_pairs_test=4, n_prompts_train=4,
        n_prompts_eval=4, n_corpus=8,
    )  # fmt: skip
    files, checks = data.build(s)
    expected = {"built": 4, "identical": 1, "context_differs": 1, "empty_reply": 1, "dropped": 1, "written": 3}
    assert checks == {"pairs_train.jsonl": expected, "pairs_test.jsonl": expected}
    assert len(files["pairs_train.jsonl"]) == 3
    assert all(p["chosen"] != p["rejected"] for p in files["pairs_train.jsonl"])
    assert "1 identical (dropped), 1 context differs, 1 empty reply, 3 written" in data.describe_checks(checks)
    files, checks = data.build(replace(s, keep_identical_pairs=True))
    assert len(files["pairs_test.jsonl"]) == 4 and checks["pairs_test.jsonl"]["dropped"] == 0
    assert "1 identical (kept)" in data.describe_checks(checks)


def test_data_stage_records_the_pair_checks_in_provenance(tmp_path, tiny_config_file):
    out = tmp_path / "data"
    assert data.main(["--config", str(tiny_config_file), "--experiment", "hh-positive", "--out", str(out)]) == 0
    checks = json.loads((out / "provenance.json").read_text())["pair_checks"]
    assert set(checks) == {"pairs_train.jsonl", "pairs_test.jsonl"}
    assert checks["pairs_train.jsonl"]["written"] == len(data.load_records(out / "pairs_train.jsonl"))


def test_malformed_records_name_file_line_and_field(tmp_path):
    bad_json = tmp_path / "train.jsonl"
    bad_json.write_text('{"text": "fine", "label": 0}\n{"text": oops}\n')
    with pytest.raises(StageError, match=r"train.jsonl:2: not valid JSON"):
        sources.read_jsonl(bad_json, ("text", "label"))
    missing = tmp_path / "test.jsonl"
    missing.write_text('{"text": "fine", "label": 0}\n{"txt": "x", "label": 1}\n')
    with pytest.raises(StageError, match=r"test.jsonl:2: record has no field 'text'"):
        sources.read_jsonl(missing, ("text", "label"))


def test_too_few_records_is_a_clear_error(tmp_path):
    s = replace(settings("instruct-short"), source=str(tmp_path), n_pairs_train=50)
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in synthetic.make_instructions(20, 0)))
    with pytest.raises(StageError, match="Fix: lower the data.n_"):
        data.prepare(s, tmp_path / "out")


def test_real_imdb_through_the_same_loader(tmp_path, shared_data):
    source = tmp_path / "imdb"
    source.mkdir()
    for split in ("train", "test"):
        (source / f"{split}.jsonl").symlink_to(shared_data / "imdb" / f"imdb_{split}_small1000.jsonl")
    s = replace(settings("imdb-negative"), source=str(source), n_pairs_train=200, n_pairs_test=200)
    data.prepare(s, tmp_path / "out")
    real = sources.read_jsonl(shared_data / "imdb" / "imdb_train_small1000.jsonl", ("text", "label"))
    negative = {r["text"] for r in real if r["label"] == 0}
    pairs = data.load_records(tmp_path / "out" / "pairs_train.jsonl")
    assert len(pairs) == 200 and all(p["chosen"] in negative for p in pairs)
