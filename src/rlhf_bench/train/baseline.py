"""A classical baseline beside the reward model: TF-IDF features and logistic regression, scored as a reward.

Trained on the same train pairs as the reward model (chosen texts labelled 1, rejected 0) and scored on the
same test pairs with the same accuracy (chosen scored strictly above rejected), so the two sit in one table.
It answers how much of a documented reward-model accuracy a linear bag-of-words model already gets: on IMDB,
TF-IDF + logistic regression ranks about 96.6% of all (negative, positive) test pairs correctly
(../shared/DESIGN.md, "Facts learned on these machines"), against the documented 97.3% of seeds/000.

Settings follow scikit-learn's text-classification examples: word uni- and bigrams, sublinear tf, English
accents stripped, L2-regularised logistic regression (C=1, liblinear is deterministic).
"""

from __future__ import annotations

import time

from rlhf_bench.io import StageError

BASELINES = ("tfidf_logreg",)
TITLES = {"tfidf_logreg": "TF-IDF + logistic regression"}


def tfidf_logreg(train_pairs: list[dict], seed: int):
    """Fit on the train pairs; return a scorer texts -> rewards (the decision function, higher = chosen)."""
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise StageError(
            "reward.baselines asks for tfidf_logreg but scikit-learn is not installed. "
            "Fix: `make install` (envs/requirements.lock has it) or `pip install scikit-learn`."
        ) from None
    texts = [p["chosen"] for p in train_pairs] + [p["rejected"] for p in train_pairs]
    labels = [1] * len(train_pairs) + [0] * len(train_pairs)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=200_000, sublinear_tf=True)
    features = vectorizer.fit_transform(texts)
    classifier = LogisticRegression(C=1.0, solver="liblinear", random_state=seed).fit(features, labels)
    return lambda batch: classifier.decision_function(vectorizer.transform(batch)).tolist()


def run(name: str, train_pairs: list[dict], test_pairs: list[dict], seed: int, evaluate_pairs) -> dict:
    """Train baseline `name` and measure it on both splits with the reward model's `evaluate_pairs`."""
    if name not in BASELINES:
        raise StageError(f"reward.baselines: unknown baseline '{name}'. Fix: use one of {BASELINES}.")
    started = time.time()
    scorer = tfidf_logreg(train_pairs, seed)
    return {
        "title": TITLES[name],
        "train": evaluate_pairs(scorer, train_pairs),
        "test": evaluate_pairs(scorer, test_pairs),
        "seconds": time.time() - started,
    }
