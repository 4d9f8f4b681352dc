"""Stage 1, prepare_data: the files every later stage reads, with their sha256 checksums.

Writes to `<out>/`:
  prompts_train.jsonl  {"prompt"}                      PPO samples its batches here
  prompts_eval.jsonl   {"prompt"}                      held-out prompts for base vs RLHF
  pairs_train.jsonl    {"prompt", "chosen", "rejected"} reward-model training; chosen/rejected are the
  pairs_test.jsonl     {"prompt", "chosen", "rejected"} whole texts the reward model scores
  corpus.jsonl         {"text"}                        language-model text for the sft stage
  checksums.json       {file: sha256}

Sources are read in the record formats of the hub datasets (see ../shared/data/README.md), so the smoke
profile's generator (rlhf_bench.synthetic), a local copy and the hub go through the same pair builders.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

from rlhf_bench import synthetic
from rlhf_bench.config import DataSettings
from rlhf_bench.runtime import Stage, StageError, atomic_write_text, sha256_file, write_json

# The policy sees an instruction as "Question: ...\nAnswer:" and continues it; the reward model scores
# the same text plus the answer, so reward-model inputs and PPO rollouts look alike.
PAIRWISE_TEMPLATE = "Question: {prompt}\nAnswer:"
ASSISTANT_MARK = "\n\nAssistant:"

REQUIRED_FIELDS = {
    "imdb": ("text", "label"),
    "pairwise": ("prompt", "chosen", "rejected"),
    "hh": ("chosen", "rejected"),
}
OUTPUT_FILES = ("prompts_train.jsonl", "prompts_eval.jsonl", "pairs_train.jsonl", "pairs_test.jsonl", "corpus.jsonl")


# --- reading sources ---------------------------------------------------------------------------------


def read_jsonl(path: Path, required: tuple[str, ...]) -> list[dict]:
    """Records of a .jsonl or .jsonl.gz file; a malformed record is one error naming file, line and field."""
    opener = gzip.open if path.suffix == ".gz" else open
    records = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise StageError(
                    f"{path}:{number}: not valid JSON ({exc.msg}). Fix: repair or drop the line."
                ) from None
            for name in required:
                if name not in record:
                    raise StageError(
                        f"{path}:{number}: record has no field '{name}'. Fix: every record needs {required}."
                    )
                if name != "label" and not isinstance(record[name], str):
                    raise StageError(f"{path}:{number}: field '{name}' is not a string. Fix: repair the record.")
            records.append(record)
    return records


def _local_split(directory: Path, split: str, required: tuple[str, ...]) -> list[dict] | None:
    for pattern in (f"*{split}.jsonl", f"*{split}.jsonl.gz", f"{split}/*.jsonl", f"{split}/*.jsonl.gz"):
        matches = sorted(directory.glob(pattern))
        if matches:
            return [record for match in matches for record in read_jsonl(match, required)]
    return None


def _hub_split(source: str, split: str) -> list[dict] | None:
    """The real hub loader (users have the hub; these machines don't, hence HF_HUB_OFFLINE in the smoke run)."""
    import datasets

    try:
        return [dict(row) for row in datasets.load_dataset(source, split=split)]
    except ValueError:  # the dataset has no such split
        return None
    except Exception as exc:  # noqa: BLE001 - datasets raises many types for "not here"
        raise StageError(
            f"dataset '{source}' split '{split}' could not be loaded ({type(exc).__name__}). Fix: fetch it "
            "into the HF cache on a node with internet, or point data.source at a local directory."
        ) from None


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

    required = REQUIRED_FIELDS[settings.format]
    path = Path(settings.source)
    splits = {}
    for split in ("train", "test", "unsupervised"):
        records = _local_split(path, split, required) if path.exists() else _hub_split(settings.source, split)
        if records is not None:
            splits[split] = records
    if "train" not in splits:
        raise StageError(f"data.source '{settings.source}': no train split found. Fix: see README (Data sources).")
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


def _review_prompt(rng: random.Random, text: str, settings: DataSettings) -> str:
    low, high = settings.prompt_words
    return " ".join(text.split()[: rng.randint(low, high)])


def imdb_files(splits: dict, settings: DataSettings, rng: random.Random) -> dict[str, list[dict]]:
    """Pairs of one negative and one positive review; the config's `prefer` side is chosen."""
    preferred = 0 if settings.prefer == "negative" else 1

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
        return [{"prompt": _review_prompt(rng, t, settings)} for t in _sample(rng, long_enough, n, what)]

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
    return {
        "pairs_train.jsonl": pairs(splits["train"], settings.n_pairs_train, "train pairs"),
        "pairs_test.jsonl": pairs(splits["test"], settings.n_pairs_test, "test pairs"),
        "prompts_train.jsonl": prompts(splits["train"], settings.n_prompts_train, "train prompts"),
        "prompts_eval.jsonl": prompts(splits["test"], settings.n_prompts_eval, "eval prompts"),
        "corpus.jsonl": _sample(rng, corpus, min(settings.n_corpus, len(corpus)), "corpus"),
    }


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
    return {
        "pairs_train.jsonl": pairs(splits["train"], settings.n_pairs_train, "train pairs"),
        "pairs_test.jsonl": pairs(splits["test"], settings.n_pairs_test, "test pairs"),
        "prompts_train.jsonl": prompts(splits["train"], settings.n_prompts_train, "train prompts"),
        "prompts_eval.jsonl": prompts(splits["test"], settings.n_prompts_eval, "eval prompts"),
        "corpus.jsonl": _sample(rng, corpus, min(settings.n_corpus, len(corpus)), "corpus"),
    }


BUILDERS = {"imdb": imdb_files, "pairwise": pairwise_files, "hh": hh_files}


def prepare(settings: DataSettings, out_dir: Path) -> dict[str, str]:
    """Write the experiment's data files and checksums.json; return the checksums."""
    splits = load_splits(settings)
    files = BUILDERS[settings.format](splits, settings, random.Random(settings.seed))
    checksums = {}
    for name in OUTPUT_FILES:
        lines = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in files[name])
        atomic_write_text(out_dir / name, lines)
        checksums[name] = sha256_file(out_dir / name)
    write_json(out_dir / "checksums.json", checksums)
    return checksums


def load_records(path: str | Path) -> list[dict]:
    """Read one of this stage's own files back (later stages)."""
    path = Path(path)
    if not path.exists():
        raise StageError(f"{path}: missing. Fix: run the prepare_data rule first.")
    # Not str.splitlines(): it also splits on U+2028 and friends, which real reviews contain inside strings.
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def main(argv=None) -> int:
    stage = Stage("data", "Prepare prompts, preference pairs and the sft corpus for one experiment.")
    stage.add_experiment_args()
    stage.parser.add_argument("--out", required=True, help="output directory (results/<profile>/<experiment>/data)")

    def body(args, config, provenance):
        out = Path(args.out)
        provenance["data_checksums"] = prepare(config.experiment(args.experiment).data, out)
        return out

    return stage.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
