"""What is measured and how it is printed: the policies, metrics, confidence level and verdicts, in one place."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

POLICIES = ("base", "rlhf")
SPLITS = ("train", "test")  # the reward model's pair splits
# Table order of the per-policy metrics that evaluate writes (metrics.json is written with sorted keys).
METRIC_ORDER = (
    "reward_mean", "reward_std", "judge_score_mean", "judge_negative_ratio", "judge_positive_ratio",
    "length_mean", "length_median", "kl_mean", "perplexity", "distinct_2",
)  # fmt: skip
LENGTH_METRICS = ("length_mean", "length_median")
RM_METRICS = {"rm_accuracy_train": "train", "rm_accuracy_test": "test"}  # documented key -> split
# Where a per-policy metric can lie, and so its mean over seeds: judge scores (a probability, or VADER's compound
# mapped to [0, 1]), judge ratios and distinct-2 are proportions; lengths count words; a perplexity is at least 1.
# Intervals are clipped to these bounds, and a smallest detectable effect past them reads "not detectable".
BOUNDS = {
    "judge_score_mean": (0.0, 1.0), "judge_negative_ratio": (0.0, 1.0), "judge_positive_ratio": (0.0, 1.0),
    "distinct_2": (0.0, 1.0), "length_mean": (0.0, math.inf), "length_median": (0.0, math.inf),
    "perplexity": (1.0, math.inf),
}  # fmt: skip
NOT_DETECTABLE = "not detectable with this many seeds"  # an mde past the metric's bounds (mde = inf in claims.csv)
DIRECTIONS = {"increase": "greater", "decrease": "less"}  # objective direction -> one-sided alternative
CONFIDENCE = 0.95
ALPHA = 0.05  # one-sided tests; 1 - CONFIDENCE
VERDICTS = ("REPRODUCED", "NOT REPRODUCED", "INCONCLUSIVE", "NOT COMPARABLE", "NOT RUN")
# ppo/seed<k>/timings.csv: how long each PPO step took (the machine's, not the run's: kept out of train_log.csv)
TIMING_COLUMNS = ("step", "seconds", "samples_per_s")


def bounds(metric: str, difference: bool = False) -> tuple[float, float]:
    """The range of a metric (BOUNDS; unbounded if not listed), or of a difference of two of its values."""
    low, high = BOUNDS.get(metric, (-math.inf, math.inf))
    return (low - high, high - low) if difference else (low, high)


def bounds_note(limits: tuple[float, float]) -> str:
    """', clipped to [0, 1]' for an interval method on a bounded metric; '' when unbounded."""
    low, high = limits
    if math.isinf(low) and math.isinf(high):
        return ""
    return f", clipped to [{fmt(low)}, {fmt(high) if math.isfinite(high) else 'inf'}]"


def word_count(text: str) -> int:
    """Words as the seed counts them: whitespace-separated tokens (length metrics, the instruct-short reward)."""
    return len(text.split())


def missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt(value, digits: int = 3) -> str:
    """A number for a table or a reason line: `digits` significant digits, whole numbers with thousands
    separators from 10**digits up (never 1.23e+03), 'n/a' if missing."""
    if missing(value):
        return "n/a"
    value = float(value)
    if abs(value) >= 10**digits - 0.5:  # where :g would switch to an exponent
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def fmt_p(p) -> str:
    """A p-value: 2 significant digits."""
    return "n/a" if missing(p) else f"{p:.2g}"


def analytic_kl(n: int) -> float:
    """KL(best-of-n || base) in nats where rewards never tie: log n - (n - 1) / n (Stiennon et al. 2020, appendix;
    Gao et al. 2022); an upper bound where they do (Beirami et al. 2024)."""
    return math.log(n) - (n - 1) / n


def distinct_2(texts: list[str]) -> float:
    bigrams = [tuple(words[i : i + 2]) for words in (t.split() for t in texts) for i in range(len(words) - 1)]
    return len(set(bigrams)) / len(bigrams) if bigrams else float("nan")


def policy_metrics(frame: pd.DataFrame, has_judge: bool) -> dict:
    labels = frame["judge_label"]
    return {
        "reward_mean": float(frame["reward"].mean()),
        "reward_std": float(frame["reward"].std(ddof=1)),
        "judge_score_mean": float(frame["judge_score"].mean()) if has_judge else None,
        "judge_negative_ratio": float((labels == "negative").mean()) if has_judge else None,
        "judge_positive_ratio": float((labels == "positive").mean()) if has_judge else None,
        "length_mean": float(frame["word_count"].mean()),
        "length_median": float(frame["word_count"].median()),
        "kl_mean": float(frame["kl"].mean()),
        "perplexity": float(np.exp(-frame["logprob_base"].sum() / max(frame["n_tokens"].sum(), 1))),
        "distinct_2": distinct_2(frame["response"].tolist()),
    }
