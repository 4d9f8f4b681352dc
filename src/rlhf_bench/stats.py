"""Statistics used by the aggregate stage: intervals and one-sided two-sample tests.

Thin wrappers around scipy. They exist so that every caller gets the same conventions: NaN input is an
error (a NaN that slips into a mean or a rank test silently changes the answer), degenerate samples give
NaN instead of a scipy warning, and results are plain Python floats that write cleanly to CSV.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps

ALTERNATIVES = ("greater", "less", "two-sided")


def _finite_array(values: Sequence[float], name: str, func: str) -> np.ndarray:
    """Return values as a 1-D float array; raise ValueError naming the caller if any value is NaN."""
    arr = np.asarray(values, dtype=float).ravel()
    if np.isnan(arr).any():
        where = np.flatnonzero(np.isnan(arr)).tolist()
        raise ValueError(f"{func}: {name} contains NaN at position(s) {where}; drop or fill them first")
    return arr


def _check_alternative(alternative: str, func: str) -> None:
    """Reject anything but scipy's three alternatives, so that a typo cannot turn into a two-sided test."""
    if alternative not in ALTERNATIVES:
        raise ValueError(f"{func}: alternative must be one of {ALTERNATIVES}, got {alternative!r}")


def _check_confidence(confidence: float, func: str) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"{func}: confidence must lie strictly between 0 and 1, got {confidence!r}")


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion such as a reward model's pairwise accuracy.

    Wilson rather than the normal approximation because accuracies sit near 1, where the normal interval
    overshoots 1 and collapses to zero width. n == 0 gives (nan, nan): there is no proportion to bound.
    """
    _check_confidence(confidence, "wilson_interval")
    if math.isnan(float(successes)) or math.isnan(float(n)):
        raise ValueError("wilson_interval: successes and n must be numbers, got NaN")
    if int(successes) != successes or int(n) != n:
        raise ValueError(f"wilson_interval: successes and n must be whole numbers, got {successes!r}, {n!r}")
    successes, n = int(successes), int(n)
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"wilson_interval: need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return (math.nan, math.nan)
    ci = sps.binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of the mean, e.g. over PPO seeds.

    One value has no spread to estimate: (v, nan, nan). Identical values have zero standard error, and
    scipy would return NaN for a zero scale, so the interval is the point itself. No values: all NaN.
    """
    _check_confidence(confidence, "t_interval")
    arr = _finite_array(values, "values", "t_interval")
    if arr.size == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(arr.mean())
    if arr.size == 1:
        return (mean, math.nan, math.nan)
    if np.all(arr == arr[0]):
        return (float(arr[0]), float(arr[0]), float(arr[0]))
    sem = float(sps.sem(arr))
    low, high = sps.t.interval(confidence, df=arr.size - 1, loc=mean, scale=sem)
    return (mean, float(low), float(high))


def mann_whitney_one_sided(a: Sequence[float], b: Sequence[float], alternative: str) -> tuple[float, float]:
    """Mann-Whitney U test of a against b (U is a's statistic); alternative 'greater' means a > b.

    Used per seed on per-sample values (rewards, word counts, 0/1 judge labels): rank-based, so it needs
    no normality and copes with the heavy ties of indicator data (scipy then uses the normal approximation
    with tie correction). An empty sample gives (nan, nan).
    """
    _check_alternative(alternative, "mann_whitney_one_sided")
    x = _finite_array(a, "a", "mann_whitney_one_sided")
    y = _finite_array(b, "b", "mann_whitney_one_sided")
    if x.size == 0 or y.size == 0:
        return (math.nan, math.nan)
    res = sps.mannwhitneyu(x, y, alternative=alternative)
    return (float(res.statistic), float(res.pvalue))


def welch_t(a: Sequence[float], b: Sequence[float], alternative: str) -> tuple[float, float]:
    """Welch's unequal-variance t test of mean(a) against mean(b); alternative 'greater' means a > b.

    Used over seed means, the unit that is actually replicated. Fewer than two values in either group,
    or zero variance in both (the statistic is undefined), gives (nan, nan) instead of a scipy warning.
    """
    _check_alternative(alternative, "welch_t")
    x = _finite_array(a, "a", "welch_t")
    y = _finite_array(b, "b", "welch_t")
    if x.size < 2 or y.size < 2:
        return (math.nan, math.nan)
    if np.all(x == x[0]) and np.all(y == y[0]):
        return (math.nan, math.nan)
    with warnings.catch_warnings():
        if np.all(x == x[0]) or np.all(y == y[0]):
            # An exactly constant group (a judge ratio of 0.0 in every base seed) has variance exactly 0;
            # scipy cannot tell it from near-constant data and warns about precision loss. Here it is exact.
            warnings.filterwarnings("ignore", message="Precision loss occurred", category=RuntimeWarning)
        res = sps.ttest_ind(x, y, equal_var=False, alternative=alternative)
    return (float(res.statistic), float(res.pvalue))
