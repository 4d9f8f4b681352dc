"""Issue 12, the data stage: every bad data file a user can give it is one line on stderr naming the file (and
the line, row or field) and the fix, exit status 2, no traceback, and nothing left in --out.

Each case builds a small source directory whose files would work (the positive controls run the same builder
untouched), breaks one file, and runs `python -m rlhf_bench.train.data` in-process."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from bad_input import error_line, nothing_trusted, snapshot
from conftest import tiny_config
from rlhf_bench.io import StageError
from rlhf_bench.layout import DATA_FILES
from rlhf_bench.train import data, download, sources, synthetic

EXPERIMENT = {"imdb": "imdb-negative", "pairwise": "instruct-short", "hh": "hh-positive"}
# Small enough to be quick, and a good file of GOOD_N records per split serves every one of them.
SIZES = {"n_pairs_train": 4, "n_pairs_test": 2, "n_prompts_train": 8, "n_prompts_eval": 2, "n_corpus": 10}
GOOD_N = 40  # imdb prompts come from reviews over 200 characters: a third of the generator's
HUGE = "x" * (sources.MAX_FIELD_CHARS + 1)
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def records(fmt: str, n: int = GOOD_N, seed: int = 0) -> list[dict]:
    if fmt == "imdb":
        return [{"text": r["text"], "label": r["label"]} for r in synthetic.make_reviews(n, seed)]
    return (synthetic.make_instructions if fmt == "pairwise" else synthetic.make_dialogues)(n, seed)


# --- writers: file name -> bytes, in each supported file format ---------------------------------------------


def jsonl(rows: list) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def json_array(rows: list) -> bytes:
    return json.dumps(rows, indent=1).encode()


def gz(raw: bytes) -> bytes:
    return gzip.compress(raw, mtime=0)


def csv_bytes(rows: list[dict]) -> bytes:
    handle = io.StringIO()
    writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return handle.getvalue().encode()


def parquet(rows: list[dict], schema: pa.Schema | None = None) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), sink)
    return sink.getvalue()


WRITE = {"jsonl": jsonl, "jsonl.gz": lambda rows: gz(jsonl(rows)), "json": json_array, "csv": csv_bytes}
WRITE["parquet"] = parquet


def good_source(fmt: str, kind: str) -> dict[str, bytes]:
    """train and test files of `fmt` records as `kind` files: enough for SIZES."""
    return {f"{split}.{kind}": WRITE[kind](records(fmt, seed=seed)) for seed, split in enumerate(("train", "test"))}


# --- the cases ----------------------------------------------------------------------------------------------


@dataclass
class Case:
    id: str
    fmt: str  # imdb | pairwise | hh
    kind: str  # the file format of the good files around the bad one
    bad: dict[str, bytes | None]  # file name -> bytes (None: no such file)
    names: tuple[str, ...]  # what the error line must name: the file (and line/row/field), the setting
    sizes: dict = field(default_factory=dict)
    source: Callable[[Path], str] | None = None  # data.source from the case's directory (default: it)


def one_bad_line(fmt: str, bad: str, kind: str = "jsonl") -> bytes:
    """A good record, then `bad` as line 2 (raw text), then good ones: the error must name line 2."""
    good = records(fmt)
    raw = jsonl(good[:1]) + bad.encode("latin-1" if "\xe9" in bad else "utf-8") + b"\n" + jsonl(good[1:])
    return gz(raw) if kind == "jsonl.gz" else raw


def latin1_csv() -> bytes:
    rows = records("imdb")
    return csv_bytes(rows[:1]) + f'"caf\xe9 review",{rows[1]["label"]}\n'.encode("latin-1") + csv_bytes(rows[2:])[11:]


def latin1_json_array() -> bytes:
    rows = records("pairwise")
    rows[1]["chosen"] = "caf\xe9"
    return json.dumps(rows, indent=1, ensure_ascii=False).encode("latin-1", errors="replace")


def latin1_line(raw: bytes) -> int:
    return raw[: raw.index(b"\xe9")].count(b"\n") + 1


def truncated_gz() -> bytes:
    whole = gz(jsonl(records("hh", 200)))
    return whole[: len(whole) // 2]


def damaged_gz() -> bytes:
    whole = bytearray(gz(jsonl(records("pairwise", 200))))
    whole[40:60] = b"\xff" * 20
    return bytes(whole)


def csv_with(rows_text: str, header: str = "text,label") -> bytes:
    return (header + "\n" + rows_text).encode()


GOOD_CSV_ROW = '"a fine review",1\n'


CASES = [
    # -- reading the bytes: gzip and UTF-8
    Case("jsonl.gz truncated", "hh", "jsonl.gz", {"train.jsonl.gz": truncated_gz()}, ("train.jsonl.gz", "ends early")),
    Case(
        "jsonl.gz not gzip", "pairwise", "jsonl.gz", {"train.jsonl.gz": jsonl(records("pairwise"))}, ("train.jsonl.gz",)
    ),
    Case("jsonl.gz damaged deflate", "pairwise", "jsonl.gz", {"train.jsonl.gz": damaged_gz()}, ("train.jsonl.gz",)),
    Case(
        "jsonl latin-1 byte",
        "imdb",
        "jsonl",
        {"train.jsonl": one_bad_line("imdb", '{"text": "caf\xe9", "label": 0}')},
        ("train.jsonl:2", "UTF-8"),
    ),
    Case(
        "jsonl.gz latin-1 byte",
        "hh",
        "jsonl.gz",
        {"test.jsonl.gz": one_bad_line("hh", '{"chosen": "caf\xe9", "rejected": "x"}', "jsonl.gz")},
        ("test.jsonl.gz:2", "UTF-8"),
    ),
    Case(
        "json array latin-1 byte",
        "pairwise",
        "json",
        {"train.json": latin1_json_array()},
        (f"train.json:{latin1_line(latin1_json_array())}", "UTF-8"),
    ),
    Case("csv latin-1 byte", "imdb", "csv", {"test.csv": latin1_csv()}, ("test.csv:3", "UTF-8")),
    # -- JSON syntax
    Case(
        "jsonl bad json line",
        "imdb",
        "jsonl",
        {"train.jsonl": one_bad_line("imdb", '{"text": oops}')},
        ("train.jsonl:2", "not valid JSON"),
    ),
    Case(
        "jsonl integer of 5000 digits",
        "imdb",
        "jsonl",
        {"train.jsonl": one_bad_line("imdb", '{"text": "a", "label": ' + "1" * 5000 + "}")},
        ("train.jsonl:2", "not valid JSON"),
    ),
    Case(
        "jsonl nested too deeply",
        "pairwise",
        "jsonl",
        {"train.jsonl": one_bad_line("pairwise", '{"prompt": ' + "[" * 100_000 + "]" * 100_000 + "}")},
        ("train.jsonl:2", "nested"),
    ),
    Case(
        "json one object, not records",
        "pairwise",
        "json",
        {"train.json": json.dumps({"data": records("pairwise")}, indent=1).encode()},
        ("train.json", "one JSON object"),
    ),
    # -- csv structure
    Case(
        "csv more fields than header",
        "imdb",
        "csv",
        {"train.csv": csv_with(GOOD_CSV_ROW + "great, really great,1\n" + GOOD_CSV_ROW)},
        ("train.csv:3", "3 fields"),
    ),
    Case(
        "csv fewer fields than header",
        "pairwise",
        "csv",
        {"train.csv": csv_with("q,a,b\nq,a\n", header="prompt,chosen,rejected")},
        ("train.csv:3", "'rejected'"),
    ),
    Case(
        "csv without header line",
        "imdb",
        "csv",
        {"train.csv": csv_with(GOOD_CSV_ROW, header='"another review",0')},
        ("train.csv:1", "'text'"),
    ),
    Case(
        "csv separated by semicolons",
        "imdb",
        "csv",
        {"test.csv": csv_with("a fine review;1\n", header="text;label")},
        ("test.csv:1", "'text'"),
    ),
    Case(
        "csv field over the limit",
        "imdb",
        "csv",
        {"train.csv": csv_with(GOOD_CSV_ROW + f'"{HUGE}",0\n')},
        ("train.csv:3", "1,000,000"),
    ),
    # -- labels (imdb)
    Case(
        "imdb jsonl float label",
        "imdb",
        "jsonl",
        {"train.jsonl": one_bad_line("imdb", '{"text": "a", "label": 1.0}')},
        ("train.jsonl:2", "'label'", "float"),
    ),
    Case(
        "imdb json bool label",
        "imdb",
        "json",
        {"test.json": json_array([*records("imdb")[:1], {"text": "a", "label": True}])},
        ("test.json item 1", "'label'", "bool"),
    ),
    Case(
        "imdb csv label 1.0",
        "imdb",
        "csv",
        {"train.csv": csv_with(GOOD_CSV_ROW + '"a review",1.0\n')},
        ("train.csv:3", "'label'"),
    ),
    Case(
        "imdb parquet float labels",
        "imdb",
        "parquet",
        {"train.parquet": parquet([{"text": r["text"], "label": float(r["label"])} for r in records("imdb")])},
        ("train.parquet row 1", "'label'", "float"),
    ),
    Case(
        "imdb unsupervised labelled 1",
        "imdb",
        "jsonl",
        {"unsupervised.jsonl": jsonl(records("imdb", 4))},
        ("unsupervised.jsonl:1", "'label'"),
    ),
    # -- one huge record
    Case(
        "imdb jsonl huge review",
        "imdb",
        "jsonl",
        {"train.jsonl": one_bad_line("imdb", json.dumps({"text": HUGE, "label": 0}))},
        ("train.jsonl:2", "'text'", "1,000,000"),
    ),
    Case(
        "pairwise parquet huge answer",
        "pairwise",
        "parquet",
        {"test.parquet": parquet([{"prompt": "q", "chosen": HUGE, "rejected": "b"}])},
        ("test.parquet row 1", "'chosen'"),
    ),
    Case(
        "hh json array huge dialogue",
        "hh",
        "json",
        {"train.json": json_array([{"chosen": "\n\nHuman: hi\n\nAssistant: " + HUGE, "rejected": "x"}])},
        ("train.json item 0", "'chosen'"),
    ),
    Case(
        "jsonl lone surrogate",
        "pairwise",
        "jsonl",
        {"train.jsonl": one_bad_line("pairwise", '{"prompt": "\\ud800", "chosen": "a", "rejected": "b"}')},
        ("train.jsonl:2", "'prompt'", "surrogate"),
    ),
    # -- too few records, and empty files: the file and the setting that asks for more
    Case(
        "imdb empty train jsonl", "imdb", "jsonl", {"train.jsonl": b""}, ("train.jsonl", "empty", "data.n_pairs_train")
    ),
    Case(
        "pairwise header-only test csv",
        "pairwise",
        "csv",
        {"test.csv": b"prompt,chosen,rejected\n"},
        ("test.csv", "empty", "data.n_pairs_test"),
    ),
    Case(
        "hh empty test parquet",
        "hh",
        "parquet",
        {"test.parquet": parquet([], pa.schema([("chosen", pa.string()), ("rejected", pa.string())]))},
        ("test.parquet", "empty", "data.n_pairs_test"),
    ),
    Case(
        "pairwise too few eval prompts",
        "pairwise",
        "jsonl",
        {"test.jsonl": jsonl(records("pairwise", 3))},
        ("test.jsonl (3 records)", "data.n_prompts_eval", "at most 3"),
        sizes={"n_prompts_eval": 5},
    ),
    Case(
        "imdb too few of the preferred label",
        "imdb",
        "jsonl.gz",
        {"train.jsonl.gz": gz(jsonl([r for r in records("imdb", 40) if r["label"] == 1] + records("imdb", 2)))},
        ("train.jsonl.gz", "preferred label", "data.n_pairs_train"),
    ),
    Case(
        "dahoas-like train only, too small a held-out test",
        "pairwise",
        "parquet",
        {"train.parquet": parquet(records("pairwise", 12)), "test.parquet": None},
        ("train.parquet (12 records)", "held-out", "data.n_pairs_test"),
        sizes={"n_pairs_test": 2, "n_pairs_train": 4},
    ),
    # -- data.source itself
    Case(
        "source missing absolute",
        "imdb",
        "jsonl",
        {},
        ("no such directory", "nope"),
        source=lambda d: str(d.parent / "nope"),
    ),
    Case("source missing relative", "hh", "jsonl", {}, ("'./nope'", "no such directory"), source=lambda d: "./nope"),
    Case(
        "source missing under an existing folder",
        "pairwise",
        "jsonl",
        {},
        ("'src/nope'", "no such directory"),
        source=lambda d: "src/nope",
    ),
    Case(  # one file of records is a source (split by data.test_fraction), but only in a format it reads
        "source is a file of no data format",
        "imdb",
        "jsonl",
        {},
        ("notes.txt'", "a file, but not .jsonl.gz"),
        source=lambda d: (d / "notes.txt").write_text("a review\n") and str(d / "notes.txt"),
    ),
]


def run_data(tmp_path: Path, monkeypatch, capsys, fmt: str, files: dict, sizes: dict = (), source=None, **config):
    """Write the source directory and a config of it, run the data stage; (return code, stderr, --out)."""
    monkeypatch.chdir(tmp_path)  # relative sources resolve here
    directory = tmp_path / "src"
    directory.mkdir()
    for name, raw in files.items():
        if raw is not None:
            (directory / name).write_bytes(raw)
    raw_config = {**tiny_config(), **config}
    exp = raw_config["experiments"][EXPERIMENT[fmt]]
    exp["data"].update(format=fmt, source=source(directory) if source else str(directory), **{**SIZES, **dict(sizes)})
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(raw_config))
    out = tmp_path / "out"
    code = data.main(["--config", str(config_file), "--experiment", EXPERIMENT[fmt], "--out", str(out)])
    return code, capsys.readouterr().err, out


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_data_file_is_one_line_exit_2_nothing_written(tmp_path, monkeypatch, capsys, case):
    files = {**good_source(case.fmt, case.kind), **case.bad}
    code, err, out = run_data(tmp_path, monkeypatch, capsys, case.fmt, files, case.sizes, case.source)
    assert code == 2, err
    line = error_line(err, *case.names)
    assert line.startswith("rlhf_bench.train.data: error: ") and "Fix:" in line, line
    nothing_trusted(out)


CONTROLS = [
    ("imdb", "jsonl", b""),
    ("pairwise", "csv", b""),
    ("hh", "jsonl.gz", b""),
    ("imdb", "parquet", b""),
    ("hh", "json", b""),
    ("imdb", "csv", "\ufeff".encode()),  # a byte-order mark, as spreadsheet programs write one, is skipped
    ("pairwise", "jsonl", "\ufeff".encode()),
]


@pytest.mark.parametrize(
    "fmt, kind, bom", CONTROLS, ids=[f"{fmt} {kind}{' with BOM' if bom else ''}" for fmt, kind, bom in CONTROLS]
)
def test_the_same_builder_with_good_files_works(tmp_path, monkeypatch, capsys, fmt, kind, bom):
    files = {name: bom + raw for name, raw in good_source(fmt, kind).items()}
    code, err, out = run_data(tmp_path, monkeypatch, capsys, fmt, files)
    assert code == 0, err
    assert set(DATA_FILES) <= set(snapshot(out))


def test_a_hub_id_whose_owner_is_also_a_local_folder_still_resolves(tmp_path, monkeypatch, capsys):
    """`owner/name` looks like a path where ./owner exists; the hub cache holding it wins over 'no such directory'."""
    folder = tmp_path / "hub" / "datasets--owner--name" / "snapshots" / COMMIT
    folder.mkdir(parents=True)
    for name, raw in good_source("pairwise", "jsonl").items():
        (folder / name).write_bytes(raw)
    (tmp_path / "owner").mkdir()
    code, err, out = run_data(
        tmp_path, monkeypatch, capsys, "pairwise", {}, source=lambda d: f"owner/name@{COMMIT}", hub_cache="hub"
    )
    download.use_cache(None)  # the stage set it to this test's cache
    assert code == 0, err
    assert set(DATA_FILES) <= set(snapshot(out))


OWN_FILES = [
    ("bad json", "pairs_train.jsonl", b'{"prompt": "", "chosen": "a", "rejected": "b"}\n{"prompt": \n', ":2"),
    ("not an object", "corpus.jsonl", b'{"text": "a"}\n["a"]\n', ":2"),
    ("missing field", "prompts_eval.jsonl", b'{"prompt": "a"}\n{"text": "b"}\n', ":2"),
    ("not utf-8", "prompts_train.jsonl", b'{"prompt": "a"}\n{"prompt": "caf\xe9"}\n', ":2"),
]


@pytest.mark.parametrize("name, file, raw, line", OWN_FILES, ids=[o[0] for o in OWN_FILES])
def test_reading_the_stage_s_own_files_back_is_checked(tmp_path, name, file, raw, line):
    (tmp_path / file).write_bytes(raw)
    with pytest.raises(StageError) as info:
        data.load_records(tmp_path / file)
    message = str(info.value)
    assert f"{file}{line}" in message and "Fix:" in message and "\n" not in message, message
