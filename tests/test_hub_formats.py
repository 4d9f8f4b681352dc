"""The hub datasets in their own formats and layouts, the hub cache read offline, and one-line errors.

Fixtures are written here in the layouts the hub serves (stanfordnlp/imdb parquet, Dahoas parquet with one
`train` split, Anthropic/hh-rlhf jsonl.gz per subset) into a hub cache of huggingface_hub's own layout, so
the code under test resolves `id@revision` exactly as it does on a cluster after `download`.
"""

from __future__ import annotations

import gzip
import json
import time
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import tiny_config
from rlhf_bench.config import from_dict
from rlhf_bench.io import StageError
from rlhf_bench.train import data, download, sources, synthetic

COMMIT = "0123456789abcdef0123456789abcdef01234567"


# --- fixture writers, shared with test_paper.py ----------------------------------------------------------


def snapshot(cache: Path, repo_id: str, revision: str | None = None, kind: str = "model") -> Path:
    """The snapshot folder of `repo_id` at `revision` in a hub cache (huggingface_hub's layout); a revision
    that is not a full commit (a branch, tag or short sha) is mapped to one under refs/, as a download does."""
    root = cache / f"{kind}s--{repo_id.replace('/', '--')}"
    full = revision if revision and len(revision) == 40 else COMMIT
    folder = root / "snapshots" / full
    folder.mkdir(parents=True, exist_ok=True)
    if revision != full:
        (root / "refs").mkdir(exist_ok=True)
        (root / "refs" / (revision or "main")).write_text(full)
    return folder


def write_parquet(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def write_jsonl_gz(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in rows)


def write_imdb(folder: Path, n: int = 48, seed: int = 0) -> None:
    """stanfordnlp/imdb: plain_text/{train,test,unsupervised}-00000-of-00001.parquet, columns text, label."""
    for split, rows in (
        ("train", synthetic.make_reviews(n, seed)),
        ("test", synthetic.make_reviews(n, seed + 1)),
        ("unsupervised", synthetic.make_unlabelled_reviews(n // 2, seed + 2)),
    ):
        write_parquet(
            folder / "plain_text" / f"{split}-00000-of-00001.parquet",
            [{"text": r["text"], "label": r["label"]} for r in rows],
        )
    (folder / "README.md").write_text("# imdb\n")


def write_dahoas(folder: Path, n: int = 80, seed: int = 0) -> None:
    """Dahoas/synthetic-instruct-gptj-pairwise: one split, data/train-00000-of-00001-<hash>.parquet."""
    write_parquet(
        folder / "data" / "train-00000-of-00001-542f4ab2e5246fdf.parquet", synthetic.make_instructions(n, seed)
    )
    (folder / "dataset_infos.json").write_text(json.dumps({"default": {"splits": {"train": {"num_examples": n}}}}))


HH_SUBSETS = ("harmless-base", "helpful-base", "helpful-online", "helpful-rejection-sampled")


def write_hh(folder: Path, n_train: int = 10, n_test: int = 3, seed: int = 0) -> None:
    """Anthropic/hh-rlhf: <subset>/{train,test}.jsonl.gz, plus red-team-attempts in another format."""
    for index, subset in enumerate(HH_SUBSETS):
        write_jsonl_gz(folder / subset / "train.jsonl.gz", synthetic.make_dialogues(n_train, seed + 2 * index))
        write_jsonl_gz(folder / subset / "test.jsonl.gz", synthetic.make_dialogues(n_test, seed + 2 * index + 1))
    write_jsonl_gz(
        folder / "red-team-attempts" / "red_team_attempts.jsonl.gz",
        [{"transcript": "\n\nHuman: hi\n\nAssistant: hello", "rating": 0.0}],
    )


# --- tests ------------------------------------------------------------------------------------------------


@pytest.fixture
def cache(tmp_path):
    """An empty hub cache that `download.resolve` reads (offline: conftest sets HF_HUB_OFFLINE=1)."""
    path = tmp_path / "hub"
    path.mkdir()
    download.use_cache(str(path))
    yield path
    download.use_cache(None)


def settings(name: str, **overrides):
    return replace(from_dict(tiny_config()).experiment(name).data, **overrides)


def test_imdb_hub_layout_through_the_cache(tmp_path, cache):
    folder = snapshot(cache, "stanfordnlp/imdb", COMMIT, "dataset")
    write_imdb(folder)
    s = settings(
        "imdb-negative", source=f"stanfordnlp/imdb@{COMMIT}", n_pairs_train=16, n_pairs_test=16, n_prompts_train=8
    )
    data.prepare(s, tmp_path / "out")
    train = pq.read_table(folder / "plain_text" / "train-00000-of-00001.parquet").to_pylist()
    negative = {r["text"] for r in train if r["label"] == 0}
    pairs = data.load_records(tmp_path / "out" / "pairs_train.jsonl")
    assert len(pairs) == 16 and all(p["chosen"] in negative and p["rejected"] not in negative for p in pairs)
    unlabelled = {
        r["text"] for r in pq.read_table(folder / "plain_text" / "unsupervised-00000-of-00001.parquet").to_pylist()
    }
    corpus = data.load_records(tmp_path / "out" / "corpus.jsonl")
    assert corpus and all(r["text"] in unlabelled for r in corpus)  # the unsupervised split feeds the corpus
    assert download.resolved()[f"stanfordnlp/imdb@{COMMIT}"]["commit"] == COMMIT


def test_dahoas_layout_holds_out_a_seeded_tenth(tmp_path, cache):
    write_dahoas(snapshot(cache, "Dahoas/synthetic-instruct-gptj-pairwise", "main", "dataset"), n=80)
    s = settings("instruct-short", source="Dahoas/synthetic-instruct-gptj-pairwise", n_pairs_test=8, n_pairs_train=72)
    splits = sources.load_splits(s)
    assert (len(splits["train"]), len(splits["test"])) == (72, 8)
    data.prepare(s, tmp_path / "out")
    with pytest.raises(StageError, match="test pairs: 8 available, 9 asked for"):
        data.prepare(replace(s, n_pairs_test=9), tmp_path / "out2")


def test_hh_layout_reads_every_subset_and_data_dir_picks_one(cache):
    write_hh(snapshot(cache, "Anthropic/hh-rlhf", COMMIT, "dataset"), n_train=10, n_test=3)
    s = settings("hh-positive", source=f"Anthropic/hh-rlhf@{COMMIT}")
    splits = sources.load_splits(s)
    assert (len(splits["train"]), len(splits["test"])) == (40, 12)  # red_team_attempts is not a split
    one = sources.load_splits(replace(s, data_dir="helpful-base"))
    assert (len(one["train"]), len(one["test"])) == (10, 3)
    with pytest.raises(StageError, match="data.data_dir 'helpful-bass': no such directory"):
        sources.load_splits(replace(s, data_dir="helpful-bass"))


def test_local_copies_in_every_file_format_give_the_same_files(tmp_path):
    reviews = {"train": synthetic.make_reviews(40, 0), "test": synthetic.make_reviews(40, 1)}
    writers = {
        "jsonl": lambda p, rows: p.with_suffix(".jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows)),
        "jsonl.gz": lambda p, rows: write_jsonl_gz(p.with_suffix(".jsonl.gz"), rows),
        "json": lambda p, rows: p.with_suffix(".json").write_text(json.dumps(rows)),
        "csv": lambda p, rows: p.with_suffix(".csv").write_text(
            "text,label\n" + "".join(f'"{r["text"]}",{r["label"]}\n' for r in rows)
        ),
        "parquet": lambda p, rows: write_parquet(
            p.with_suffix(".parquet"), [{"text": r["text"], "label": r["label"]} for r in rows]
        ),
    }
    checksums = {}
    for name, write in writers.items():
        source = tmp_path / name
        source.mkdir()
        for split, rows in reviews.items():
            write(source / split, [{"text": r["text"], "label": r["label"]} for r in rows])
        s = settings("imdb-negative", source=str(source), n_pairs_train=16, n_pairs_test=16, n_prompts_train=8)
        checksums[name] = data.prepare(s, tmp_path / f"out-{name}")
    assert len({json.dumps(c, sort_keys=True) for c in checksums.values()}) == 1, checksums


MALFORMED = [
    (
        "parquet without a column",
        "train-00000-of-00001.parquet",
        "pairwise",
        lambda p: write_parquet(p, [{"prompt": "q", "chosen": "a"}]),
        r"train-00000-of-00001.parquet: no column 'rejected' \(it has prompt, chosen\)",
    ),
    (
        "parquet row with a null",
        "train-00000-of-00001.parquet",
        "pairwise",
        lambda p: write_parquet(
            p, [{"prompt": "q", "chosen": "a", "rejected": "b"}, {"prompt": "q", "chosen": None, "rejected": "b"}]
        ),
        r"train-00000-of-00001.parquet row 2: field 'chosen' is not a string",
    ),
    (
        "hh dialogue without an Assistant turn",
        "train.jsonl.gz",
        "hh",
        lambda p: write_jsonl_gz(p, [*synthetic.make_dialogues(1, 0), {"chosen": "\n\nHuman: hi", "rejected": "x"}]),
        r"train.jsonl.gz:2: field 'chosen' has no 'Assistant:' turn",
    ),
    (
        "imdb label out of range",
        "train.jsonl",
        "imdb",
        lambda p: p.write_text('{"text": "a", "label": 0}\n{"text": "b", "label": 1}\n{"text": "c", "label": 7}\n'),
        r"train.jsonl:3: field 'label' is 7, not 0 or 1",
    ),
    (
        "imdb csv label that is a word",
        "train.csv",
        "imdb",
        lambda p: p.write_text("text,label\nfine,0\nbad,pos\n"),
        r"train.csv:3: field 'label' is 'pos'",
    ),
    (
        "json array with a non-object",
        "train.json",
        "pairwise",
        lambda p: p.write_text('[{"prompt": "q", "chosen": "a", "rejected": "b"}, 3]'),
        r"train.json item 1: record is not an object",
    ),
]


@pytest.mark.parametrize("name, filename, fmt, write, expected", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_record_names_file_line_and_field(tmp_path, name, filename, fmt, write, expected):
    write(tmp_path / filename)
    with pytest.raises(StageError, match=expected) as info:
        sources.read_records(tmp_path / filename, fmt, "train")
    assert "\n" not in str(info.value) and "Fix:" in str(info.value)


def test_revisions_resolve_offline_through_refs_and_commits(cache):
    pinned = snapshot(cache, "org/model", COMMIT)
    short = snapshot(cache, "org/judge", "af0f99b")
    branch = snapshot(cache, "org/other")  # `main`
    assert download.resolve(f"org/model@{COMMIT}") == pinned
    assert download.resolve("org/judge@af0f99b") == short  # a short sha, mapped by refs/ as a download leaves it
    assert download.resolve("org/other") == branch
    assert download.resolve(str(pinned)) == pinned  # a local path is itself


def test_missing_item_is_one_line_with_the_fetch_command(cache):
    snapshot(cache, "org/model", COMMIT)
    started = time.time()
    with pytest.raises(StageError) as info:
        download.resolve("org/model@fedcba9876543210fedcba9876543210fedcba98", "model", "policy")
    message = str(info.value)
    assert time.time() - started < 5  # offline: no retries against the hub
    assert "\n" not in message
    assert "policy 'org/model@fedcba9876543210fedcba9876543210fedcba98' is neither a local directory" in message
    assert "huggingface-cli download org/model --revision fedcba9876543210fedcba9876543210fedcba98" in message
    assert f"--cache-dir {cache}" in message and "snakemake --until download" in message
    with pytest.raises(StageError, match="huggingface-cli download org/data --repo-type dataset"):
        download.resolve("org/data", "dataset", "dataset")


def test_download_check_writes_a_manifest_and_refuses_pickled_weights(tmp_path, cache):
    raw = tiny_config()
    exp = raw["experiments"]["imdb-negative"]
    exp["data"]["source"] = f"stanfordnlp/imdb@{COMMIT}"
    exp["policy"] = f"org/policy@{COMMIT}"
    exp["sft"]["enabled"] = False
    write_imdb(snapshot(cache, "stanfordnlp/imdb", COMMIT, "dataset"))
    policy = snapshot(cache, "org/policy", COMMIT)
    (policy / "config.json").write_text("{}")
    (policy / "pytorch_model.bin").write_bytes(b"pickle")
    experiments = {"imdb-negative": from_dict(raw).raw["experiments"]["imdb-negative"]}
    with pytest.raises(StageError, match="no \\*.safetensors weights at this revision"):
        download.download(experiments, tmp_path / "hub", check=True)
    (policy / "model.safetensors").write_bytes(b"")
    fetched = download.download(experiments, tmp_path / "hub", check=True)
    manifest = json.loads((tmp_path / "hub" / "manifest.json").read_text())
    assert manifest["experiments"] == fetched
    roles = {item["role"]: item for item in fetched["imdb-negative"]}
    assert set(roles) == {"data.source", "policy"}
    assert roles["policy"]["commit"] == COMMIT and "model.safetensors" in roles["policy"]["files"]
    assert roles["data.source"]["kind"] == "dataset"
