"""Tests for the synthetic dataset generators used by the offline smoke profile."""

from __future__ import annotations

import random
import re

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from rlhf_bench.train.synthetic import make_dialogues, make_instructions, make_reviews, make_unlabelled_reviews

GENERATORS = (make_reviews, make_instructions, make_dialogues, make_unlabelled_reviews)
ASSISTANT = "\n\nAssistant: "


@pytest.fixture(scope="module")
def vader() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def _words(text: str) -> int:
    return len(text.split())


def _last_reply(dialogue: str) -> str:
    return dialogue.rsplit(ASSISTANT, 1)[1]


@pytest.mark.parametrize("make", GENERATORS)
def test_deterministic_and_seed_dependent(make) -> None:
    assert make(60, 7) == make(60, 7)
    assert make(60, 7) != make(60, 8)
    assert len(make(60, 7)) == 60
    assert make(0, 7) == []


@pytest.mark.parametrize("make", GENERATORS)
def test_does_not_use_global_rng(make) -> None:
    random.seed(0)
    state = random.getstate()
    first = make(30, 3)
    assert random.getstate() == state
    random.seed(12345)
    assert make(30, 3) == first


def test_review_schema_and_lengths() -> None:
    for r in make_reviews(300, 0):
        assert set(r) == {"text", "label", "rating"}
        assert isinstance(r["text"], str) and type(r["label"]) is int and type(r["rating"]) is int
        assert r["label"] in (0, 1)
        assert 25 <= _words(r["text"]) <= 70
        assert r["text"].endswith(".")
        assert r["text"].count(". ") >= 2  # several sentences


def test_review_labels_balanced_and_ratings_follow_label() -> None:
    reviews = make_reviews(401, 5)
    positive = sum(r["label"] for r in reviews) / len(reviews)
    assert abs(positive - 0.5) <= 0.1
    for r in reviews:
        assert (1 <= r["rating"] <= 4) if r["label"] == 0 else (7 <= r["rating"] <= 10)
    ratings = {r["rating"] for r in reviews}
    assert {1, 2} & ratings and {9, 10} & ratings and {4, 7} <= ratings  # graded intensity


def test_reviews_small_vocabulary_with_negations() -> None:
    texts = [r["text"].lower() for r in make_reviews(1000, 1)]
    vocab = {w for t in texts for w in re.findall(r"[a-z']+", t)}
    assert 100 <= len(vocab) <= 500
    assert sum(" not " in t or " never " in t or " hardly " in t for t in texts) > 100
    assert sum("film" in t or "movie" in t for t in texts) > 300


def test_unlabelled_reviews_schema() -> None:
    records = make_unlabelled_reviews(100, 0)
    assert all(set(r) == {"text", "label", "rating"} for r in records)
    assert all(r["label"] == -1 and r["rating"] == 0 for r in records)
    assert all(25 <= _words(r["text"]) <= 70 and r["text"].endswith(".") for r in records)
    assert [r["text"] for r in records] != [r["text"] for r in make_reviews(100, 0)]


def test_vader_separates_reviews_but_not_perfectly(vader) -> None:
    reviews = make_reviews(400, 0)
    correct = sum((vader.polarity_scores(r["text"])["compound"] > 0) == (r["label"] == 1) for r in reviews)
    assert 0.80 <= correct / len(reviews) <= 0.99


def test_instruction_schema_and_prompt_variety() -> None:
    records = make_instructions(1000, 0)
    for r in records:
        assert set(r) == {"prompt", "chosen", "rejected"}
        assert all(isinstance(v, str) and v for v in r.values())
        assert 4 <= _words(r["chosen"]) <= 15
        assert r["chosen"] != r["rejected"]
    assert len({r["prompt"] for r in records}) >= 60


def test_instruction_length_signal_strong_but_imperfect() -> None:
    records = make_instructions(500, 0)
    shorter = sum(_words(r["chosen"]) < _words(r["rejected"]) for r in records) / len(records)
    assert 0.90 <= shorter < 1.0
    long_rejected = [_words(r["rejected"]) for r in records if _words(r["rejected"]) > 15]
    assert all(30 <= n <= 60 for n in long_rejected)


def test_dialogue_format_shares_all_but_last_reply() -> None:
    for d in make_dialogues(300, 0):
        assert set(d) == {"chosen", "rejected"}
        for text in d.values():
            assert text.startswith("\n\nHuman: ") and ASSISTANT in text
            assert text.count("\n\nHuman: ") == text.count(ASSISTANT) in (1, 2)
        prefix_c, last_c = d["chosen"].rsplit(ASSISTANT, 1)
        prefix_r, last_r = d["rejected"].rsplit(ASSISTANT, 1)
        assert prefix_c == prefix_r
        assert last_c != last_r and last_c and last_r


def test_dialogue_multi_turn_present() -> None:
    turns = [d["chosen"].count("\n\nHuman: ") for d in make_dialogues(200, 2)]
    assert 1 in turns and 2 in turns


def test_vader_prefers_chosen_reply(vader) -> None:
    dialogues = make_dialogues(400, 0)
    agree = sum(
        vader.polarity_scores(_last_reply(d["chosen"]))["compound"]
        > vader.polarity_scores(_last_reply(d["rejected"]))["compound"]
        for d in dialogues
    )
    assert 0.80 <= agree / len(dialogues) < 1.0
