"""Stage 1, data: the files every later stage reads, with their sha256 checksums.

Writes to `<out>/`:
  prompts_train.jsonl  {"prompt"}                      PPO samples its batches here
  prompts_eval.jsonl   {"prompt"}                      held-out prompts for base vs RLHF
  pairs_train.jsonl    {"prompt", "chosen", "rejected"} reward-model training; chosen/rejected are the
  pairs_test.jsonl     {"prompt", "chosen", "rejected"} whole texts the reward model scores
  corpus.jsonl         {"text"}                        language-model text for the sft stage
  checksums.json       {file: sha256}

Sources are read in the record formats of the hub datasets (see ../shared/data/README.md), so the smoke
profile's generator (rlhf_bench.train.synthetic), a local copy and the hub go through the same pair builders.
"""

from __future__ import annotations

import csv
import gzip
import json
import random
from pathlib import Path

from rlhf_bench.io import StageError, atomic_write_text, sha256_file, write_json
from rlhf_bench.layout import DATA_FILES
from rlhf_bench.runtime import Stage
from rlhf_bench.settings import DataSettings
from rlhf_bench.train import download, synthetic

# The policy sees an instruction as "Question: ...\nAnswer:" and continues it; the reward model scores
# the same text plus the answer, so reward-model inputs and PPO rollouts look alike.
PAIRWISE_TEMPLATE = "Question: {prompt}\nAnswer:"
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


def _json_rows(path: Path):
    """(where, record) of a JSON-lines file, or of a JSON array; .gz read transparently."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        text_start = handle.read(1)
        while text_start.isspace():
            text_start = handle.read(1)
        handle.seek(0)
        if text_start == "[":
            try:
                items = json.load(handle)
            except json.JSONDecodeError as exc:
                raise StageError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}). Fix: repair the file.") from None
            for number, item in enumerate(items):
                yield f"{path} item {number}", item
            return
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield f"{path}:{number}", json.loads(line)
            except json.JSONDecodeError as exc:
                raise StageError(
                    f"{path}:{number}: not valid JSON ({exc.msg}). Fix: repair or drop the line."
                ) from None


def _csv_rows(path: Path):
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            yield f"{path}:{reader.line_num}", dict(row)


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


def check_record(record, required: tuple[str, ...], where: str, fmt: str | None = None, split: str = "") -> dict:
    """One record of a source: its fields, their types, and the format's own rules; StageError naming where."""
    if not isinstance(record, dict):
        raise StageError(f"{where}: record is not an object. Fix: one JSON object per record.")
    for name in required:
        if name not in record:
            raise StageError(f"{where}: record has no field '{name}'. Fix: every record needs {required}.")
        if name != "label" and not isinstance(record[name], str):
            raise StageError(f"{where}: field '{name}' is not a string. Fix: repair the record.")
    if fmt == "imdb":
        label = record["label"]
        if isinstance(label, str) and label.strip().lstrip("-").isdigit():  # csv
            label = record["label"] = int(label)
        allowed = (-1,) if split == "unsupervised" else (0, 1)
        if isinstance(label, bool) or label not in allowed:
            raise StageError(
                f"{where}: field 'label' is {label!r}, not {' or '.join(map(str, allowed))} "
                "(IMDB: 0 negative, 1 positive, -1 unlabelled). Fix: repair the record."
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
        rows = _csv_rows(path)
    else:
        rows = _json_rows(path)
    return [check_record(record, required, where, fmt, split) for where, record in rows]


def read_jsonl(path: Path, required: tuple[str, ...]) -> list[dict]:
    """Records of a .jsonl or .jsonl.gz file; a malformed record is one error naming file, line and field."""
    return [check_record(record, required, where) for where, record in _json_rows(Path(path))]


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


def source_directory(settings: DataSettings) -> Path:
    """The local directory of the source: itself, or the cached snapshot of a hub dataset (offline)."""
    directory = download.resolve(settings.source, "dataset", "dataset", subdir=settings.data_dir)
    if settings.data_dir:
        directory = directory / settings.data_dir
        if not directory.is_dir():
            raise StageError(
                f"data.data_dir '{settings.data_dir}': no such directory in '{settings.source}'. "
                "Fix: name one of its subsets, or leave it empty for all."
            )
    if not directory.is_dir():
        raise StageError(f"data.source '{settings.source}': not a directory. Fix: point it at a dataset directory.")
    return directory


def load_splits(settings: DataSettings) -> dict[str, list[dict]]:
    """train/test (/unsupervised for imdb) records in the source's own format."""
    seed = settings.seed
    if settings.source == "synthetic":
        if settings.format == "imdb":
            # Enough reviews of each label for the pairs and the prompts (prompts come from the same split).
            train_n = max(2 * settings.n_pairs_train, settings.n_prompts_train)
            test_n = max(2 * settings.n_pairs_test, settings.n_prompts_eval)
            return {
                "train": synthetic.make_reviews(train_n, seed),
                "test": synthetic.make_reviews(test_n, seed + 1),
                "unsupervised": synthetic.make_unlabelled_reviews(settings.n_corpus, seed + 2),
            }
        make = synthetic.make_instructions if settings.format == "pairwise" else synthetic.make_dialogues
        train_n = max(settings.n_pairs_train, settings.n_prompts_train, settings.n_corpus // 2)
        test_n = max(settings.n_pairs_test, settings.n_prompts_eval)
        return {"train": make(train_n, seed), "test": make(test_n, seed + 1)}

    directory = source_directory(settings)
    splits = {}
    for split in SPLITS:
        files = split_files(directory, split)
        if files:
            splits[split] = [r for path in files for r in read_records(path, settings.format, split)]
    if "train" not in splits:
        raise StageError(
            f"data.source '{settings.source}': no train split found in {directory}. Fix: name the files "
            "*train.jsonl(.gz), *train.csv, train-*.parquet (or put them in a train/ directory)."
        )
    if "test" not in splits:  # Dahoas has only `train`: hold out a seeded tenth
        records = list(splits["train"])
        random.Random(seed).shuffle(records)
        cut = max(1, len(records) // 10)
        splits = {**splits, "test": records[:cut], "train": records[cut:]}
    return splits


# --- building the experiment's files ------------------------------------------------------------------


def _sample(rng: random.Random, records: list, n: int, what: str) -> list:
    if len(records) < n:
        raise StageError(f"{what}: {len(records)} available, {n} asked for. Fix: lower the data.n_* setting.")
    return rng.sample(records, n)


def _review_prompt(rng: random.Random, text: str, settings: DataSettings, tokenizer=None) -> str:
    """The first n words (or, with a prompt tokenizer, tokens) of a review, n uniform in prompt_words."""
    low, high = settings.prompt_words
    n = rng.randint(low, high)
    if tokenizer is None:
        return " ".join(text.split()[:n])
    # TRL's gpt2-sentiment example: tokenizer.decode(tokenizer.encode(review)[:n]).
    return tokenizer.decode(tokenizer.encode(text)[:n])


def prompt_tokenizer(settings: DataSettings):
    if not settings.prompt_tokenizer:
        return None
    from rlhf_bench.train import models  # torch and transformers only where a tokenizer is asked for

    return models.load_tokenizer(settings.prompt_tokenizer)


def imdb_files(splits: dict, settings: DataSettings, rng: random.Random) -> dict[str, list[dict]]:
    """Pairs of one negative and one positive review; the config's `prefer` side is chosen."""
    preferred = 0 if settings.prefer == "negative" else 1
    tokenizer = prompt_tokenizer(settings)

    def pairs(records: list[dict], n: int, what: str) -> list[dict]:
        by_label = {
            0: [r["text"] for r in records if r["label"] == 0],
            1: [r["text"] for r in records if r["label"] == 1],
        }
        good = _sample(rng, by_label[preferred], n, f"{what} reviews of the preferred label")
        bad = _sample(rng, by_label[1 - preferred], n, f"{what} reviews of the other label")
        return [{"prompt": "", "chosen": c, "rejected": r} for c, r in zip(good, bad, strict=True)]

    # Prompts as TRL's gpt2-sentiment example: short prefixes of reviews longer than 200 characters.
    def prompts(records: list[dict], n: int, what: str) -> list[dict]:
        long_enough = [r["text"] for r in records if len(r["text"]) > 200] or [r["text"] for r in records]
        return [{"prompt": _review_prompt(rng, t, settings, tokenizer)} for t in _sample(rng, long_enough, n, what)]

    corpus_source = splits.get("unsupervised") or splits["train"]
    return {
        "pairs_train.jsonl": pairs(splits["train"], settings.n_pairs_train, "train"),
        "pairs_test.jsonl": pairs(splits["test"], settings.n_pairs_test, "test"),
        "prompts_train.jsonl": prompts(splits["train"], settings.n_prompts_train, "train prompts"),
        "prompts_eval.jsonl": prompts(splits["test"], settings.n_prompts_eval, "eval prompts"),
        "corpus.jsonl": [
            {"text": r["text"]}
            for r in _sample(rng, corpus_source, min(settings.n_corpus, len(corpus_source)), "corpus")
        ],
    }


def _files(pairs, prompts, corpus: list[dict], splits: dict, settings: DataSettings, rng: random.Random) -> dict:
    """The data files of a format from its pair and prompt builders, drawn in this order: it fixes the rng's."""
    return {
        "pairs_train.jsonl": pairs(splits["train"], settings.n_pairs_train, "train pairs"),
        "pairs_test.jsonl": pairs(splits["test"], settings.n_pairs_test, "test pairs"),
        "prompts_train.jsonl": prompts(splits["train"], settings.n_prompts_train, "train prompts"),
        "prompts_eval.jsonl": prompts(splits["test"], settings.n_prompts_eval, "eval prompts"),
        "corpus.jsonl": _sample(rng, corpus, min(settings.n_corpus, len(corpus)), "corpus"),
    }


def pairwise_files(splits: dict, settings: DataSettings, rng: random.Random) -> dict[str, list[dict]]:
    """Dahoas-style (prompt, chosen, rejected): the reward model scores prompt + answer."""

    def pairs(records: list[dict], n: int, what: str) -> list[dict]:
        out = []
        for r in _sample(rng, records, n, what):
            prompt = PAIRWISE_TEMPLATE.format(prompt=r["prompt"].strip())
            out.append(
                {
                    "prompt": prompt,
                    "chosen": f"{prompt} {r['chosen'].strip()}",
                    "rejected": f"{prompt} {r['rejected'].strip()}",
                }
            )
        return out

    def prompts(records: list[dict], n: int, what: str) -> list[dict]:
        return [
            {"prompt": PAIRWISE_TEMPLATE.format(prompt=r["prompt"].strip())} for r in _sample(rng, records, n, what)
        ]

    # The policy learns both answer styles, so PPO has short answers to find.
    corpus = []
    for r in splits["train"]:
        prompt = PAIRWISE_TEMPLATE.format(prompt=r["prompt"].strip())
        corpus += [{"text": f"{prompt} {r['chosen'].strip()}"}, {"text": f"{prompt} {r['rejected'].strip()}"}]
    return _files(pairs, prompts, corpus, splits, settings, rng)


def dialogue_prompt(dialogue: str) -> str:
    """Everything up to and including the last "\\n\\nAssistant:": what the policy answers."""
    cut = dialogue.rfind(ASSISTANT_MARK)
    if cut < 0:
        raise StageError(f"dialogue without '{ASSISTANT_MARK.strip()}' turn: {dialogue[:60]!r}. Fix: HH-RLHF format.")
    return dialogue[: cut + len(ASSISTANT_MARK)]


def hh_files(splits: dict, settings: DataSettings, rng: random.Random) -> dict[str, list[dict]]:
    """Anthropic/hh-rlhf dialogues: the pair shares every turn but the last Assistant reply."""

    def pairs(records: list[dict], n: int, what: str) -> list[dict]:
        return [
            {"prompt": dialogue_prompt(r["chosen"]), "chosen": r["chosen"], "rejected": r["rejected"]}
            for r in _sample(rng, records, n, what)
        ]

    def prompts(records: list[dict], n: int, what: str) -> list[dict]:
        return [{"prompt": dialogue_prompt(r["chosen"])} for r in _sample(rng, records, n, what)]

    corpus = [{"text": r[side]} for r in splits["train"] for side in ("chosen", "rejected")]
    return _files(pairs, prompts, corpus, splits, settings, rng)


BUILDERS = {"imdb": imdb_files, "pairwise": pairwise_files, "hh": hh_files}


def prepare(settings: DataSettings, out_dir: Path) -> dict[str, str]:
    """Write the experiment's data files and checksums.json; return the checksums."""
    splits = load_splits(settings)
    files = BUILDERS[settings.format](splits, settings, random.Random(settings.seed))
    checksums = {}
    for name in DATA_FILES:
        lines = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in files[name])
        atomic_write_text(out_dir / name, lines)
        checksums[name] = sha256_file(out_dir / name)
    write_json(out_dir / "checksums.json", checksums)
    return checksums


def load_records(path: str | Path) -> list[dict]:
    """Read one of this stage's own files back (later stages)."""
    path = Path(path)
    if not path.exists():
        raise StageError(f"{path}: missing. Fix: run the data rule first.")
    # Not str.splitlines(): it also splits on U+2028 and friends, which real reviews contain inside strings.
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def main(argv=None) -> int:
    stage = Stage("data", "Prepare prompts, preference pairs and the sft corpus for one experiment.", experiment=True)
    stage.add_out_arg("results/<profile>/<experiment>/data")

    def body(run):
        run.provenance["data_checksums"] = prepare(run.experiment.data, run.out)
        return run.out

    return stage.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
