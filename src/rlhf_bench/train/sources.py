"""Reading a data source: the record formats of the hub datasets (imdb, Dahoas pairwise, Anthropic hh) from a
directory (a local copy, or the cached snapshot of a hub dataset) in jsonl, json, csv or parquet, .gz for the JSON
ones. Every record is checked; a bad file, line or field is one StageError naming it and the fix. The data stage
(rlhf_bench.train.data) builds the experiment's files from what this returns.
"""

from __future__ import annotations

import csv
import gzip
import json
import random
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

from rlhf_bench.io import StageError
from rlhf_bench.settings import DataSettings
from rlhf_bench.train import download, synthetic

ASSISTANT_MARK = "\n\nAssistant:"

REQUIRED_FIELDS = {
    "imdb": ("text", "label"),
    "pairwise": ("prompt", "chosen", "rejected"),
    "hh": ("chosen", "rejected"),
}


# --- reading sources ---------------------------------------------------------------------------------
# A source is a directory (a local copy, or the cached snapshot of a hub dataset, which `download.resolve`
# finds): its files of each split are read in the dataset's own format, so the hub layouts (stanfordnlp/imdb:
# plain_text/train-00000-of-00001.parquet; Dahoas: data/train-....parquet; Anthropic/hh-rlhf:
# helpful-base/train.jsonl.gz) and a user's own jsonl/json/csv/parquet files go through the same checks.

DATA_SUFFIXES = (".jsonl.gz", ".json.gz", ".jsonl", ".json", ".csv", ".parquet")
SPLITS = ("train", "test", "unsupervised")
# Other names a split goes by in local copies: aclImdb's own `unsup` (../shared/data/imdb/imdb_unsup.jsonl.gz).
SPLIT_ALIASES = {"unsupervised": ("unsupervised", "unsup")}


def data_suffix(path: Path) -> str | None:
    return next((suffix for suffix in DATA_SUFFIXES if path.name.endswith(suffix)), None)


# A record field longer than this is refused. The longest texts of the supported datasets (IMDB reviews,
# HH-RLHF dialogues, Dahoas answers) are tens of thousands of characters; a million is a file that lost its
# line breaks, or a blob pasted into one field, which every later stage would tokenize whole. It is also the
# csv module's field limit while a source is read (its own default, 131,072, would refuse less than JSON does).
MAX_FIELD_CHARS = 1_000_000
# A label as csv (or a careless JSON writer) spells it: an optional minus and ASCII digits, nothing else.
INTEGER_TEXT = re.compile(r"-?[0-9]+")
# Half of a UTF-16 pair, which JSON's \ud800-style escapes can produce: not text, and no UTF-8 writer takes it.
SURROGATE = re.compile(r"[\ud800-\udfff]")


def _first_undecodable_line(path: Path) -> tuple[int, int, int] | None:
    """(line, column, byte) of the first byte of `path` (decompressed where .gz) that is not UTF-8."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    return number, exc.start + 1, line[exc.start]
    except (OSError, EOFError, zlib.error):
        return None
    return None


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """What can go wrong below the records while a file is read, as one StageError naming the file."""
    try:
        yield
    except UnicodeDecodeError:
        found = _first_undecodable_line(path)
        where, byte = (f"{path}:{found[0]}", f" (byte 0x{found[2]:02x} at column {found[1]})") if found else (path, "")
        raise StageError(
            f"{where}: not UTF-8 text{byte}. Fix: save the file as UTF-8 "
            "(from Latin-1: iconv -f latin1 -t utf-8 FILE > FILE.new)."
        ) from None
    except EOFError:
        raise StageError(
            f"{path}: the gzip data ends early (a cut-short download or copy). Fix: fetch or compress the file again."
        ) from None
    except gzip.BadGzipFile:
        raise StageError(
            f"{path}: not gzip data, though its name ends in .gz. Fix: gzip the file, or drop .gz from its name."
        ) from None
    except zlib.error as exc:
        raise StageError(f"{path}: damaged gzip data ({exc}). Fix: fetch or compress the file again.") from None
    except OSError as exc:
        raise StageError(
            f"{path}: cannot read it ({exc.strerror or exc}). Fix: check the path and its permissions."
        ) from None


def _json_error(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return exc.msg
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).splitlines()[0]  # e.g. an integer of more than 4300 digits


def _json_object_file(path: Path, opener, encoding: str) -> list[str] | None:
    """The keys of `path` where the whole file is one JSON object (not records); None where it is not."""
    try:
        with opener(path, "rt", encoding=encoding) as handle:
            whole = json.load(handle)
    except (ValueError, RecursionError):
        return None
    return [str(key) for key in whole] if isinstance(whole, dict) else None


def json_rows(path: Path, fix: str = "repair or drop the line", lines_only: bool = False, encoding: str = "utf-8-sig"):
    """(where, record) of a JSON-lines file, or of a JSON array; .gz read transparently (a BOM is skipped)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with _reading(path), opener(path, "rt", encoding=encoding) as handle:
        text_start = handle.read(1)
        while text_start.isspace():
            text_start = handle.read(1)
        handle.seek(0)
        if text_start == "[" and not lines_only:
            try:
                items = json.load(handle)
            except (ValueError, RecursionError) as exc:
                line = f":{exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
                raise StageError(f"{path}{line}: not valid JSON ({_json_error(exc)}). Fix: repair the file.") from None
            for number, item in enumerate(items):
                yield f"{path} item {number}", item
            return
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError) as exc:
                keys = _json_object_file(path, opener, encoding) if text_start == "{" and number == 1 else None
                if keys is not None:
                    raise StageError(
                        f"{path}: one JSON object (keys: {', '.join(keys[:5])}), not records. Fix: write one record "
                        "per line (JSON lines) or a JSON array of records."
                    ) from None
                raise StageError(f"{path}:{number}: not valid JSON ({_json_error(exc)}). Fix: {fix}.") from None
            yield f"{path}:{number}", record


def _csv_rows(path: Path, required: tuple[str, ...] = ()):
    """(where, record) of a csv file with a header line; a damaged line is one StageError naming it."""
    rows = []
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, MAX_FIELD_CHARS))
    try:
        with _reading(path), open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            try:
                header = reader.fieldnames or []
                missing = [name for name in required if name not in header]
                if header and missing:
                    raise StageError(
                        f"{path}:1: the header has no column '{missing[0]}' (it has {', '.join(map(repr, header))}). "
                        f"Fix: the first line names the columns, comma-separated: {','.join(required)}."
                    )
                for row in reader:
                    where = f"{path}:{reader.line_num}"
                    if None in row:
                        raise StageError(
                            f"{where}: {len(header) + len(row[None])} fields, but the header has {len(header)}. "
                            'Fix: quote the fields that hold commas ("...", with "" for a quote inside).'
                        )
                    short = [name for name in required if row[name] is None]
                    if short:
                        raise StageError(
                            f"{where}: {sum(v is not None for v in row.values())} fields, but the header has "
                            f"{len(header)} (no '{short[0]}'). Fix: give every line a value for each column."
                        )
                    rows.append((where, dict(row)))
            except csv.Error as exc:
                line = reader.reader.line_num  # the DictReader's own count stops at the last good row
                if "field limit" in str(exc):
                    raise StageError(
                        f"{path}:{line}: a field is longer than {MAX_FIELD_CHARS:,} characters (or a quote "
                        'is never closed). Fix: close each quoted field ("...") and drop or shorten the record.'
                    ) from None
                raise StageError(f"{path}:{line}: not valid CSV ({exc}). Fix: repair the line.") from None
    finally:
        csv.field_size_limit(limit)
    yield from rows


def _parquet_rows(path: Path, required: tuple[str, ...]):
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a damaged file
        raise StageError(f"{path}: not a readable parquet file ({type(exc).__name__}). Fix: fetch it again.") from None
    for name in required:
        if name not in table.column_names:
            raise StageError(
                f"{path}: no column '{name}' (it has {', '.join(table.column_names)}). "
                f"Fix: every record needs {required}."
            )
    for number, record in enumerate(table.to_pylist(), start=1):
        yield f"{path} row {number}", record


def check_record(
    record,
    required: tuple[str, ...],
    where: str,
    fmt: str | None = None,
    split: str = "",
    max_chars: int | None = MAX_FIELD_CHARS,
) -> dict:
    """One record of a source: its fields, their types, and the format's own rules; StageError naming where."""
    if not isinstance(record, dict):
        raise StageError(f"{where}: record is not an object. Fix: one JSON object per record.")
    for name in required:
        if name not in record:
            raise StageError(f"{where}: record has no field '{name}'. Fix: every record needs {required}.")
        value = record[name]
        if name == "label":
            continue
        if not isinstance(value, str):
            raise StageError(f"{where}: field '{name}' is not a string. Fix: repair the record.")
        if max_chars is not None and len(value) > max_chars:
            raise StageError(
                f"{where}: field '{name}' is {len(value):,} characters long, over the {max_chars:,} a field may hold. "
                "Fix: drop or shorten the record (one this long is usually a file that lost its line breaks)."
            )
        surrogate = SURROGATE.search(value)
        if surrogate:
            raise StageError(
                f"{where}: field '{name}' holds a lone UTF-16 surrogate ({surrogate.group()!r} at character "
                f"{surrogate.start()}), which is not text. Fix: repair the record's \\u escapes."
            )
    if fmt == "imdb":
        label = record["label"]
        if isinstance(label, str) and INTEGER_TEXT.fullmatch(label.strip()):  # csv
            label = record["label"] = int(label)
        allowed = (-1,) if split == "unsupervised" else (0, 1)
        if type(label) is not int or label not in allowed:  # not bool (True == 1), not float (1.0 == 1)
            kind = "" if type(label) is int else f" (a {type(label).__name__})"
            fix = "write it as the integer itself (1, not 1.0, true or '1.0')" if kind else "repair the record"
            raise StageError(
                f"{where}: field 'label' is {label!r}{kind}, not {' or '.join(map(str, allowed))} "
                f"(IMDB: 0 negative, 1 positive, -1 unlabelled). Fix: {fix}."
            )
    if fmt == "hh":
        for name in ("chosen", "rejected"):
            if ASSISTANT_MARK not in record[name]:
                raise StageError(
                    f"{where}: field '{name}' has no '{ASSISTANT_MARK.strip()}' turn. "
                    "Fix: HH-RLHF dialogues are \\n\\nHuman: ... \\n\\nAssistant: ... turns."
                )
    return record


def read_records(path: Path, fmt: str, split: str = "") -> list[dict]:
    """Records of one data file (jsonl, json, csv, parquet; .gz for the JSON ones) in format `fmt`."""
    required = REQUIRED_FIELDS[fmt]
    suffix = data_suffix(path)
    if suffix == ".parquet":
        rows = _parquet_rows(path, required)
    elif suffix == ".csv":
        rows = _csv_rows(path, required)
    else:
        rows = json_rows(path)
    return [check_record(record, required, where, fmt, split) for where, record in rows]


def read_jsonl(path: Path, required: tuple[str, ...]) -> list[dict]:
    """Records of a .jsonl or .jsonl.gz file; a malformed record is one error naming file, line and field."""
    return [check_record(record, required, where) for where, record in json_rows(Path(path))]


def split_files(directory: Path, split: str) -> list[Path]:
    """The data files of one split under `directory`, in the layouts the hub uses and the obvious local ones:
    `*train.jsonl`, `train-00000-of-00001*.parquet`, `helpful-base/train.jsonl.gz`, `train/part-0.csv`."""
    found = []
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        suffix = data_suffix(path)
        if suffix is None:
            continue
        stem = path.name[: -len(suffix)]
        for name in SPLIT_ALIASES.get(split, (split,)):
            in_split_dir = len(relative.parts) > 1 and relative.parts[-2] == name
            if stem.endswith(name) or stem.startswith((f"{name}-", f"{name}_")) or in_split_dir:
                found.append(path)
                break
    return found


# What `download.resolve` takes for a hub dataset: `name` or `owner/name` (then `@revision`, which may hold '/').
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?")


SOURCE_FIX = (
    "Fix: point data.source at the directory that holds the split files (train.jsonl, test.csv, train-*.parquet, "
    "...), or name a hub dataset as owner/name@revision."
)


def _missing_directory(source: str) -> str:
    path = Path(source).expanduser()
    nearest = next((parent for parent in path.parents if parent.is_dir()), None)
    known = f"{nearest} exists, {path} does not" if nearest is not None and str(nearest) != "." else ""
    relative = "" if path.is_absolute() else f"relative to {Path.cwd()}"
    detail = "; ".join(part for part in (known, relative) if part)
    return f"data.source '{source}': no such directory{f' ({detail})' if detail else ''}. {SOURCE_FIX}"


def _resolve_source(settings: DataSettings) -> Path:
    """`download.resolve` of data.source, except that a source which can only be a path (it starts with '/', '.' or
    '~', or is no hub id) and is missing is said to be missing, not looked up in the hub cache; a hub-id-like one
    whose first folder exists here (`data/imdb`) is a missing path unless the hub cache holds it."""
    source = settings.source
    if not Path(source).expanduser().exists():
        name = download.parse(source)[0]
        if source.startswith(("/", ".", "~")) or not HUB_ID.fullmatch(name) or "--" in name or ".." in name:
            raise StageError(_missing_directory(source))
        if "/" in name and Path(name.split("/")[0]).is_dir():
            try:
                return download.resolve(source, "dataset", "dataset", subdir=settings.data_dir)
            except StageError:
                raise StageError(_missing_directory(source)) from None
    return download.resolve(source, "dataset", "dataset", subdir=settings.data_dir)


def source_directory(settings: DataSettings) -> Path:
    """The local directory of the source: itself, or the cached snapshot of a hub dataset (offline)."""
    directory = _resolve_source(settings)
    if settings.data_dir:
        directory = directory / settings.data_dir
        if not directory.is_dir():
            raise StageError(
                f"data.data_dir '{settings.data_dir}': no such directory in '{settings.source}'. "
                "Fix: name one of its subsets, or leave it empty for all."
            )
    if not directory.is_dir():
        raise StageError(f"data.source '{settings.source}': not a directory. {SOURCE_FIX}")
    return directory


class Splits(dict):
    """split -> records, and `origin`: split -> the files (and record counts) they came from, for the errors."""

    def __init__(self, records: dict[str, list[dict]], origin: dict[str, str]):
        super().__init__(records)
        self.origin = origin


def _origin(directory: Path, counts: list[tuple[Path, int]], shown: int = 3) -> str:
    """`train.jsonl (empty: 0 records), b/train.jsonl (3 records) in /data/x`: where a split's records are."""
    parts = [
        f"{path.relative_to(directory)} ({'empty: 0 records' if n == 0 else f'{n} record' + 's' * (n != 1)})"
        for path, n in counts[:shown]
    ]
    if len(counts) > shown:
        parts.append(f"{len(counts) - shown} more files ({sum(n for _, n in counts[shown:])} records)")
    return f"{', '.join(parts)} in {directory}"


def load_splits(settings: DataSettings) -> Splits:
    """train/test (/unsupervised for imdb) records in the source's own format."""
    seed = settings.seed
    if settings.source == "synthetic":
        origin = dict.fromkeys(SPLITS, "the synthetic generator (data.source: synthetic)")
        if settings.format == "imdb":
            # Enough reviews of each label for the pairs and the prompts (prompts come from the same split).
            train_n = max(2 * settings.n_pairs_train, settings.n_prompts_train)
            test_n = max(2 * settings.n_pairs_test, settings.n_prompts_eval)
            records = {
                "train": synthetic.make_reviews(train_n, seed),
                "test": synthetic.make_reviews(test_n, seed + 1),
                "unsupervised": synthetic.make_unlabelled_reviews(settings.n_corpus, seed + 2),
            }
            return Splits(records, origin)
        make = synthetic.make_instructions if settings.format == "pairwise" else synthetic.make_dialogues
        train_n = max(settings.n_pairs_train, settings.n_prompts_train, settings.n_corpus // 2)
        test_n = max(settings.n_pairs_test, settings.n_prompts_eval)
        return Splits({"train": make(train_n, seed), "test": make(test_n, seed + 1)}, origin)

    single = Path(settings.source).expanduser()
    if single.is_file():  # one file of records (seeds/002's load_custom_data): train, and a held-out test_fraction
        if data_suffix(single) is None:
            raise StageError(
                f"data.source '{settings.source}': a file, but not {', '.join(DATA_SUFFIXES)}. Fix: convert it to "
                "one of those, or point data.source at a folder of split files."
            )
        records = read_records(single, settings.format, "train")
        splits, origin = {"train": records}, {"train": _origin(single.parent, [(single, len(records))])}
    else:
        directory = source_directory(settings)
        splits, origin = {}, {}
        for split in SPLITS:
            files = split_files(directory, split)
            if files:
                per_file = [(path, read_records(path, settings.format, split)) for path in files]
                splits[split] = [r for _, records in per_file for r in records]
                origin[split] = _origin(directory, [(path, len(records)) for path, records in per_file])
    if "train" not in splits:
        raise StageError(
            f"data.source '{settings.source}': no train split found in {directory}. Fix: name the files "
            "*train.jsonl(.gz), *train.csv, train-*.parquet (or put them in a train/ directory)."
        )
    if "test" not in splits:  # Dahoas, or a single file, has only `train`: hold out a seeded test_fraction
        records = list(splits["train"])
        random.Random(seed).shuffle(records)
        fraction = settings.test_fraction
        cut = max(1, int(Fraction(str(fraction)) * len(records)))  # exact: 0.1 of 29,829 is 2,982
        splits = {**splits, "test": records[:cut], "train": records[cut:]}
        held_out = f"a held-out {fraction:g} (data.test_fraction; the source has no test split) of {origin['train']}"
        origin = {**origin, "test": held_out, "train": f"the other {1 - fraction:g} of {origin['train']}"}
    return Splits(splits, origin)


def read_prompts(path: Path) -> list[str]:
    """A user's prompts (evaluation.prompts_file): a text file, one prompt a line (blank lines skipped), or JSONL
    with a `prompt` field; StageError naming the file, the line and the fix."""
    path = Path(path)
    if data_suffix(path) in (".jsonl", ".jsonl.gz"):
        prompts = [record["prompt"] for record in read_jsonl(path, ("prompt",))]
    else:
        with _reading(path):
            text = path.read_text(encoding="utf-8-sig")
        prompts = [line.strip() for line in text.splitlines() if line.strip()]
        too_long = next((i for i, line in enumerate(prompts, 1) if len(line) > MAX_FIELD_CHARS), None)
        if too_long:
            raise StageError(f"{path}: prompt {too_long} is over {MAX_FIELD_CHARS:,} characters. Fix: shorten it.")
    if not prompts:
        raise StageError(f"{path}: no prompt in it. Fix: one prompt a line (or JSONL with `prompt`).")
    return prompts
