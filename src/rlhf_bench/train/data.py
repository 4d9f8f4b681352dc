"""Stage 1, data: the files every later stage reads, with their sha256 checksums.

Writes to `<out>/`:
  prompts_train.jsonl  {"prompt"}                      PPO samples its batches here
  prompts_eval.jsonl   {"prompt"}                      held-out prompts for base vs RLHF
  pairs_train.jsonl    {"prompt", "chosen", "rejected"} reward-model training; chosen/rejected are the
  pairs_test.jsonl     {"prompt", "chosen", "rejected"} whole texts the reward model scores
  corpus.jsonl         {"text"}                        language-model text for the sft stage
  checksums.json       {file: sha256}

Every pair file is checked as it is built (check_pairs): pairs whose chosen and rejected are identical (dropped
unless data.keep_identical_pairs), HH pairs whose dialogues differ before the last Assistant turn (the two
replies answer different conversations), and pairs with an empty final reply on either side are counted; the
counts go to the stage's provenance (`pair_checks`), its log and the report's setup table.

Sources are read (rlhf_bench.train.sources) in the record formats of the hub datasets (see
../shared/data/README.md), so the smoke profile's generator (rlhf_bench.train.synthetic), a local copy and the hub
go through the same pair builders.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from pathlib import Path

from rlhf_bench.io import StageError, atomic_write_text, sha256_file, write_json
from rlhf_bench.layout import DATA_FILES
from rlhf_bench.runtime import Stage
from rlhf_bench.settings import DataSettings
from rlhf_bench.train.sources import ASSISTANT_MARK, check_record, json_rows, load_splits

# The policy sees an instruction as "Question: ...\nAnswer:" and continues it; the reward model scores
# the same text plus the answer, so reward-model inputs and PPO rollouts look alike.
PAIRWISE_TEMPLATE = "Question: {prompt}\nAnswer:"

# --- building the experiment's files ------------------------------------------------------------------


@dataclass(frozen=True)
class Want:
    """n records of a split, asked for by a setting: what a shortfall error names."""

    what: str  # e.g. `train pairs`
    n: int
    setting: str  # e.g. `data.n_pairs_train`
    origin: str = ""  # the split's files (Splits.origin)


def wants(splits: dict, settings: DataSettings):
    """want(split, setting, what): the Want of `settings.<setting>` records of `split`."""
    origin = getattr(splits, "origin", {})

    def want(split: str, setting: str, what: str) -> Want:
        return Want(what, getattr(settings, setting), f"data.{setting}", origin.get(split, ""))

    return want


def _sample(rng: random.Random, records: list, want: Want) -> list:
    available, n = len(records), want.n
    if available < n:
        source = f", from {want.origin}" if want.origin else ""
        fix = (
            f"lower the {want.setting} setting to at most {available}, or add records to the source"
            if available
            else "add records to the split's files (an empty one is usually a failed export or download)"
        )
        raise StageError(f"{want.what}: {available} available, {n} asked for by {want.setting}{source}. Fix: {fix}.")
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
    want = wants(splits, settings)

    def pairs(records: list[dict], ask: Want) -> list[dict]:
        by_label = {
            0: [r["text"] for r in records if r["label"] == 0],
            1: [r["text"] for r in records if r["label"] == 1],
        }
        preferred_what = f"{ask.what} reviews of the preferred label ({preferred}, data.prefer: {settings.prefer})"
        good = _sample(rng, by_label[preferred], replace(ask, what=preferred_what))
        bad = _sample(rng, by_label[1 - preferred], replace(ask, what=f"{ask.what} reviews of the other label"))
        return [{"prompt": "", "chosen": c, "rejected": r} for c, r in zip(good, bad, strict=True)]

    # Prompts as TRL's gpt2-sentiment example: short prefixes of reviews longer than 200 characters.
    def prompts(records: list[dict], ask: Want) -> list[dict]:
        long_enough = [r["text"] for r in records if len(r["text"]) > 200]
        if long_enough:
            ask = replace(ask, what=f"{ask.what} (reviews longer than 200 characters)")
        texts = long_enough or [r["text"] for r in records]
        return [{"prompt": _review_prompt(rng, t, settings, tokenizer)} for t in _sample(rng, texts, ask)]

    corpus_split = "unsupervised" if splits.get("unsupervised") else "train"
    corpus_source = splits[corpus_split]
    corpus_want = replace(want(corpus_split, "n_corpus", "corpus"), n=min(settings.n_corpus, len(corpus_source)))
    return {
        "pairs_train.jsonl": pairs(splits["train"], want("train", "n_pairs_train", "train")),
        "pairs_test.jsonl": pairs(splits["test"], want("test", "n_pairs_test", "test")),
        "prompts_train.jsonl": prompts(splits["train"], want("train", "n_prompts_train", "train prompts")),
        "prompts_eval.jsonl": prompts(splits["test"], want("test", "n_prompts_eval", "eval prompts")),
        "corpus.jsonl": [{"text": r["text"]} for r in _sample(rng, corpus_source, corpus_want)],
    }


def _files(pairs, prompts, corpus: list[dict], splits: dict, settings: DataSettings, rng: random.Random) -> dict:
    """The data files of a format from its pair and prompt builders, drawn in this order: it fixes the rng's."""
    want = wants(splits, settings)
    return {
        "pairs_train.jsonl": pairs(splits["train"], want("train", "n_pairs_train", "train pairs")),
        "pairs_test.jsonl": pairs(splits["test"], want("test", "n_pairs_test", "test pairs")),
        "prompts_train.jsonl": prompts(splits["train"], want("train", "n_prompts_train", "train prompts")),
        "prompts_eval.jsonl": prompts(splits["test"], want("test", "n_prompts_eval", "eval prompts")),
        "corpus.jsonl": _sample(
            rng, corpus, replace(want("train", "n_corpus", "corpus"), n=min(settings.n_corpus, len(corpus)))
        ),
    }


def pairwise_files(splits: dict, settings: DataSettings, rng: random.Random) -> dict[str, list[dict]]:
    """Dahoas-style (prompt, chosen, rejected): the reward model scores prompt + answer."""

    def pairs(records: list[dict], ask: Want) -> list[dict]:
        out = []
        for r in _sample(rng, records, ask):
            prompt = PAIRWISE_TEMPLATE.format(prompt=r["prompt"].strip())
            out.append(
                {
                    "prompt": prompt,
                    "chosen": f"{prompt} {r['chosen'].strip()}",
                    "rejected": f"{prompt} {r['rejected'].strip()}",
                }
            )
        return out

    def prompts(records: list[dict], ask: Want) -> list[dict]:
        return [{"prompt": PAIRWISE_TEMPLATE.format(prompt=r["prompt"].strip())} for r in _sample(rng, records, ask)]

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

    def pairs(records: list[dict], ask: Want) -> list[dict]:
        return [
            {"prompt": dialogue_prompt(r["chosen"]), "chosen": r["chosen"], "rejected": r["rejected"]}
            for r in _sample(rng, records, ask)
        ]

    def prompts(records: list[dict], ask: Want) -> list[dict]:
        return [{"prompt": dialogue_prompt(r["chosen"])} for r in _sample(rng, records, ask)]

    corpus = [{"text": r[side]} for r in splits["train"] for side in ("chosen", "rejected")]
    return _files(pairs, prompts, corpus, splits, settings, rng)


BUILDERS = {"imdb": imdb_files, "pairwise": pairwise_files, "hh": hh_files}


PAIR_FILES = ("pairs_train.jsonl", "pairs_test.jsonl")
# What check_pairs counts in each pair file, in the order the report lists them.
PAIR_CHECKS = ("identical", "context_differs", "empty_reply")


def _replies(pair: dict, data_format: str) -> tuple[str, str, bool]:
    """(chosen's final reply, rejected's final reply, whether their contexts differ) of one built pair."""
    chosen, rejected = pair["chosen"], pair["rejected"]
    if data_format == "hh":
        chosen_context, rejected_context = dialogue_prompt(chosen), dialogue_prompt(rejected)
        return chosen[len(chosen_context) :], rejected[len(rejected_context) :], chosen_context != rejected_context
    prompt = pair["prompt"]  # pairwise: both texts start with it; imdb: "" (a whole review is the reply)
    return chosen[len(prompt) :], rejected[len(prompt) :], False


def check_pairs(pairs: list[dict], settings: DataSettings) -> tuple[list[dict], dict]:
    """The pairs to write and the counts of each PAIR_CHECKS kind among those built, with how many were
    dropped (identical pairs, unless settings.keep_identical_pairs) and written."""
    counts = dict.fromkeys(PAIR_CHECKS, 0)
    kept = []
    for pair in pairs:
        chosen_reply, rejected_reply, context_differs = _replies(pair, settings.format)
        identical = pair["chosen"] == pair["rejected"]
        counts["identical"] += identical
        counts["context_differs"] += context_differs
        counts["empty_reply"] += not chosen_reply.strip() or not rejected_reply.strip()
        if settings.keep_identical_pairs or not identical:
            kept.append(pair)
    return kept, {"built": len(pairs), **counts, "dropped": len(pairs) - len(kept), "written": len(kept)}


def build(settings: DataSettings) -> tuple[dict[str, list[dict]], dict[str, dict]]:
    """The experiment's data files as records, and the pair checks of each pair file (check_pairs)."""
    splits = load_splits(settings)
    files = BUILDERS[settings.format](splits, settings, random.Random(settings.seed))
    checks = {}
    for name in PAIR_FILES:
        files[name], checks[name] = check_pairs(files[name], settings)
    return files, checks


def describe_checks(checks: dict[str, dict]) -> str:
    """`pairs_train.jsonl: 2 identical (dropped), 0 context differs, 1 empty reply, 998 written; ...`."""
    parts = []
    for name, c in checks.items():
        identical = (
            f"{c['identical']} identical ({'dropped' if c['dropped'] else 'kept'})" if c["identical"] else "0 identical"
        )
        parts.append(
            f"{name}: {identical}, {c['context_differs']} context differs, {c['empty_reply']} empty reply, "
            f"{c['written']} written"
        )
    return "; ".join(parts)


def prepare(settings: DataSettings, out_dir: Path) -> dict[str, str]:
    """Write the experiment's data files and checksums.json; return the checksums."""
    return write_files(build(settings)[0], out_dir)


def write_files(files: dict[str, list[dict]], out_dir: Path) -> dict[str, str]:
    """Write the data files (DATA_FILES) and checksums.json; return the checksums."""
    checksums = {}
    for name in DATA_FILES:
        lines = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in files[name])
        atomic_write_text(out_dir / name, lines)
        checksums[name] = sha256_file(out_dir / name)
    write_json(out_dir / "checksums.json", checksums)
    return checksums


# The fields each of this stage's own files holds in every record (the module docstring), checked as it is read back.
OWN_FIELDS = {
    "prompts_train.jsonl": ("prompt",),
    "prompts_eval.jsonl": ("prompt",),
    "pairs_train.jsonl": ("prompt", "chosen", "rejected"),
    "pairs_test.jsonl": ("prompt", "chosen", "rejected"),
    "corpus.jsonl": ("text",),
}


def load_records(path: str | Path) -> list[dict]:
    """Read one of this stage's own files back (later stages); a bad line is one StageError naming file and line."""
    path = Path(path)
    if not path.exists():
        raise StageError(f"{path}: missing. Fix: run the data rule first.")
    # Line by line as a text file, not str.splitlines(): that also splits on U+2028 and friends, which real
    # reviews contain inside strings. No length limit: a pairwise text is prompt plus answer, each within it.
    rows = json_rows(path, "rerun the data rule (the file is its output)", lines_only=True, encoding="utf-8")
    return [check_record(record, OWN_FIELDS.get(path.name, ()), where, max_chars=None) for where, record in rows]


def main(argv=None) -> int:
    stage = Stage("data", "Prepare prompts, preference pairs and the sft corpus for one experiment.", experiment=True)
    stage.add_out_arg("results/<profile>/<experiment>/data")

    def body(run):
        files, checks = build(run.experiment.data)
        run.provenance["data_checksums"] = write_files(files, run.out)
        run.provenance["pair_checks"] = checks
        print(f"{stage.module}: pair checks: {describe_checks(checks)}")
        return run.out

    return stage.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
