"""Tests and intervals on counts: a reward model's pairwise accuracy (binomial, TOST) and 0/1 judge labels (Fisher)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps
from statsmodels.stats import proportion

from rlhf_bench.analysis.stats import (
    SM_ALTERNATIVE,
    _check_alternative,
    _check_confidence,
    _counts,
    _finite_array,
    _finite_number,
    mann_whitney_one_sided,
    outside_p,
)

# The per-sample tests of tests.csv (`test`) and claims.csv (`per_seed_test`), with the words the report uses.
PER_SAMPLE_TESTS = {"fisher_exact": "Fisher exact", "mann_whitney_u": "Mann-Whitney U"}

# ------------------------------------------------------------------------------------ proportions


def binomial_test(successes: int, n: int, p0: float, alternative: str = "two-sided") -> float:
    """Exact binomial test of a proportion against p0 (scipy.stats.binomtest): its p-value.

    Used for a reward model's pairwise accuracy against the documented one. p0 may be 0 or 1 (a null that
    only a perfect count is consistent with); n == 0 gives NaN.
    """
    _check_alternative(alternative, "binomial_test")
    successes, n = _counts(successes, n, "binomial_test")
    p0 = _finite_number(p0, "p0", "binomial_test")
    if not 0.0 <= p0 <= 1.0:
        raise ValueError(f"binomial_test: p0 must lie in [0, 1], got {p0}")
    if n == 0:
        return math.nan
    return float(sps.binomtest(successes, n, p0, alternative=alternative).pvalue)


def binomial_tost(successes: int, n: int, low: float, high: float) -> float:
    """Exact-binomial TOST p-value that the proportion lies inside (low, high).

    Two one-sided exact tests, H0: p <= low and H0: p >= high; the TOST p is the larger. A bound beyond
    [0, 1] has no null to reject on that side (its p is 0).
    """
    successes, n = _counts(successes, n, "binomial_tost")
    if not low < high:
        raise ValueError(f"binomial_tost: need low < high, got {low}, {high}")
    if n == 0:
        return math.nan
    p_low = binomial_test(successes, n, low, "greater") if low >= 0.0 else 0.0
    p_high = binomial_test(successes, n, high, "less") if high <= 1.0 else 0.0
    return max(p_low, p_high)


def binomial_outside(successes: int, n: int, low: float, high: float) -> float:
    """Exact-binomial p-value that the proportion lies outside [low, high] (see outside_p)."""
    successes, n = _counts(successes, n, "binomial_outside")
    if n == 0:
        return math.nan
    p_below = binomial_test(successes, n, low, "less") if low >= 0.0 else 1.0
    p_above = binomial_test(successes, n, high, "greater") if high <= 1.0 else 1.0
    return outside_p(p_below, p_above)


def diff_proportions_interval(
    successes_a: int, n_a: int, successes_b: int, n_b: int, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Difference p_a - p_b of two independent proportions with Newcomb's hybrid-score interval.

    Newcomb's interval is built from the two Wilson intervals (statsmodels confint_proportions_2indep), so it
    behaves near 0 and 1 and on ten samples, where the Wald interval does not.
    """
    _check_confidence(confidence, "diff_proportions_interval")
    successes_a, n_a = _counts(successes_a, n_a, "diff_proportions_interval")
    successes_b, n_b = _counts(successes_b, n_b, "diff_proportions_interval")
    if n_a == 0 or n_b == 0:
        return (math.nan, math.nan, math.nan)
    low, high = proportion.confint_proportions_2indep(
        successes_a, n_a, successes_b, n_b, method="newcomb", compare="diff", alpha=1 - confidence
    )
    return (successes_a / n_a - successes_b / n_b, float(low), float(high))


def fisher_exact(successes_a: int, n_a: int, successes_b: int, n_b: int, alternative: str) -> float:
    """Fisher's exact test of p_a against p_b ('greater': p_a > p_b); its p-value."""
    _check_alternative(alternative, "fisher_exact")
    successes_a, n_a = _counts(successes_a, n_a, "fisher_exact")
    successes_b, n_b = _counts(successes_b, n_b, "fisher_exact")
    if n_a == 0 or n_b == 0:
        return math.nan
    table = [[successes_a, n_a - successes_a], [successes_b, n_b - successes_b]]
    return float(sps.fisher_exact(table, alternative=alternative).pvalue)


def two_proportions_test(
    successes_a: int, n_a: int, successes_b: int, n_b: int, value: float, alternative: str
) -> float:
    """p-value of the test that p_a - p_b exceeds / falls short of value (statsmodels test_proportions_2indep,
    Agresti-Caffo: it adds one success and one failure to each group, so 400 of 400 is no special case)."""
    _check_alternative(alternative, "two_proportions_test")
    successes_a, n_a = _counts(successes_a, n_a, "two_proportions_test")
    successes_b, n_b = _counts(successes_b, n_b, "two_proportions_test")
    if n_a == 0 or n_b == 0:
        return math.nan
    with warnings.catch_warnings():
        # statsmodels also computes an odds ratio, which divides by zero at 0% or 100%; it is not used here.
        warnings.simplefilter("ignore", RuntimeWarning)
        res = proportion.test_proportions_2indep(
            successes_a, n_a, successes_b, n_b, value=value, compare="diff", alternative=SM_ALTERNATIVE[alternative]
        )
    return float(res.pvalue)


def tost_two_proportions(successes_a: int, n_a: int, successes_b: int, n_b: int, low: float, high: float) -> float:
    """TOST p-value that p_a - p_b lies inside (low, high) (statsmodels tost_proportions_2indep, Agresti-Caffo)."""
    if not low < high:
        raise ValueError(f"tost_two_proportions: need low < high, got {low}, {high}")
    successes_a, n_a = _counts(successes_a, n_a, "tost_two_proportions")
    successes_b, n_b = _counts(successes_b, n_b, "tost_two_proportions")
    if n_a == 0 or n_b == 0:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the unused odds ratio, as in two_proportions_test
        res = proportion.tost_proportions_2indep(successes_a, n_a, successes_b, n_b, low, high, compare="diff")
    return float(res.pvalue)


def per_sample_test(a: Sequence[float], b: Sequence[float], alternative: str) -> tuple[str, float, float]:
    """One seed's per-sample test of a against b ('greater': a > b): (test, statistic, p-value).

    0/1 indicators in both samples (judge labels behind a judge ratio): Fisher's exact test of the two
    proportions, conditional on the total count (fisher_exact); the statistic is the difference of the two
    proportions. The normal approximation that scipy's Mann-Whitney U uses under ties is liberal on such data
    (30/64 against 20/64: p 0.036, where the exact test gives 0.051). Fisher's test is exact and never liberal;
    it is conservative on small tables, the price of exactness (Agresti 2002, Categorical Data Analysis, 3.5).
    Any other values (rewards, word counts): Mann-Whitney U (mann_whitney_one_sided). An empty sample gives
    (test, nan, nan).
    """
    _check_alternative(alternative, "per_sample_test")
    x = _finite_array(a, "a", "per_sample_test")
    y = _finite_array(b, "b", "per_sample_test")
    if not (np.isin(x, (0.0, 1.0)).all() and np.isin(y, (0.0, 1.0)).all()):
        return ("mann_whitney_u", *mann_whitney_one_sided(x, y, alternative))
    if x.size == 0 or y.size == 0:
        return ("fisher_exact", math.nan, math.nan)
    k_a, k_b = int(x.sum()), int(y.sum())
    p = fisher_exact(k_a, x.size, k_b, y.size, alternative)
    return ("fisher_exact", k_a / x.size - k_b / y.size, p)
