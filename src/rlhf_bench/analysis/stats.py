"""Statistics of the aggregate, claims and compare stages: intervals, tests, effect sizes, power.

Thin wrappers around scipy and statsmodels. They exist so that every caller gets the same conventions:
NaN input is an error (a NaN that slips into a mean or a rank test silently changes the answer), degenerate
samples (one seed, all values equal) give NaN instead of a library warning or an invented certainty, and
results are plain Python floats that write cleanly to CSV. Alternatives are named as in scipy ('greater',
'less', 'two-sided') everywhere; the statsmodels wrappers translate.

rliable's stratified bootstrap is reproduced with scipy.stats.bootstrap rather than imported: rliable 1.2
requires arch < 8, and arch 7 does not import with the pandas 3 of envs/requirements.lock.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps
from statsmodels.stats import multitest, power, proportion, weightstats

ALTERNATIVES = ("greater", "less", "two-sided")
# statsmodels names the one-sided alternatives differently.
SM_ALTERNATIVE = {"greater": "larger", "less": "smaller", "two-sided": "two-sided"}


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


# ------------------------------------------------------------------------------------------ helpers


def _counts(successes, n, func: str) -> tuple[int, int]:
    """Whole-number counts with 0 <= successes <= n, or a ValueError naming the caller."""
    if math.isnan(float(successes)) or math.isnan(float(n)):
        raise ValueError(f"{func}: successes and n must be numbers, got NaN")
    if int(successes) != successes or int(n) != n:
        raise ValueError(f"{func}: successes and n must be whole numbers, got {successes!r}, {n!r}")
    successes, n = int(successes), int(n)
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"{func}: need 0 <= successes <= n, got successes={successes}, n={n}")
    return successes, n


def _finite_number(value: float, name: str, func: str) -> float:
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{func}: {name} is NaN")
    return value


def _constant(arr: np.ndarray) -> bool:
    return bool(arr.size) and bool(np.all(arr == arr[0]))


def outside_p(p_below: float, p_above: float) -> float:
    """p-value that a quantity lies outside [low, high], from the one-sided p-values of each side.

    The alternative is a union of two disjoint one-sided alternatives, so each side is tested at alpha/2
    (Bonferroni): rejection at alpha means the two-sided (1 - alpha) interval lies wholly outside the band.
    """
    if math.isnan(p_below) or math.isnan(p_above):
        return math.nan
    return min(1.0, 2.0 * min(p_below, p_above))


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


# ------------------------------------------------------------------------- one sample (over seeds)


def one_sample_t(values: Sequence[float], value: float, alternative: str) -> tuple[float, float]:
    """Student's t test of mean(values) against value (statsmodels DescrStatsW.ttest_mean): (t, p).

    Fewer than two values, or values that are all equal (zero standard error: the statistic is undefined),
    give (nan, nan).
    """
    _check_alternative(alternative, "one_sample_t")
    arr = _finite_array(values, "values", "one_sample_t")
    value = _finite_number(value, "value", "one_sample_t")
    if arr.size < 2 or _constant(arr):
        return (math.nan, math.nan)
    stat, p, _ = weightstats.DescrStatsW(arr).ttest_mean(value, alternative=SM_ALTERNATIVE[alternative])
    return (float(stat), float(p))


def tost_one_sample(values: Sequence[float], low: float, high: float) -> float:
    """TOST p-value that the mean of values lies inside (low, high) (statsmodels DescrStatsW.ttost_mean).

    Equivalence is declared at level alpha when p < alpha, which is the (1 - 2 alpha) t interval lying
    inside the band. Fewer than two values or all equal: NaN.
    """
    arr = _finite_array(values, "values", "tost_one_sample")
    if not low < high:
        raise ValueError(f"tost_one_sample: need low < high, got {low}, {high}")
    if arr.size < 2 or _constant(arr):
        return math.nan
    p, _, _ = weightstats.DescrStatsW(arr).ttost_mean(low, high)
    return float(p)


def one_sample_outside(values: Sequence[float], low: float, high: float) -> float:
    """t-test p-value that the mean of values lies outside [low, high] (see outside_p)."""
    _, p_below = one_sample_t(values, low, "less")
    _, p_above = one_sample_t(values, high, "greater")
    return outside_p(p_below, p_above)


# ------------------------------------------------------------------------- two samples (over seeds)


def welch_diff_test(a: Sequence[float], b: Sequence[float], value: float, alternative: str) -> tuple[float, float]:
    """Welch t test of mean(a) - mean(b) against value (statsmodels ttest_ind, usevar='unequal'): (t, p).

    value = 0 is welch_t; a non-zero value tests against the smallest effect of interest. Fewer than two
    values in a group, or both groups constant, give (nan, nan).
    """
    _check_alternative(alternative, "welch_diff_test")
    x = _finite_array(a, "a", "welch_diff_test")
    y = _finite_array(b, "b", "welch_diff_test")
    value = _finite_number(value, "value", "welch_diff_test")
    if x.size < 2 or y.size < 2 or (_constant(x) and _constant(y)):
        return (math.nan, math.nan)
    stat, p, _ = weightstats.ttest_ind(x, y, alternative=SM_ALTERNATIVE[alternative], usevar="unequal", value=value)
    return (float(stat), float(p))


def welch_diff_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """mean(a) - mean(b) with the Welch-Satterthwaite t interval (statsmodels CompareMeans.tconfint_diff).

    Fewer than two values in a group: (diff, nan, nan). Both groups constant: the difference is exact.
    """
    _check_confidence(confidence, "welch_diff_interval")
    x = _finite_array(a, "a", "welch_diff_interval")
    y = _finite_array(b, "b", "welch_diff_interval")
    if x.size == 0 or y.size == 0:
        return (math.nan, math.nan, math.nan)
    diff = float(x.mean() - y.mean())
    if x.size < 2 or y.size < 2:
        return (diff, math.nan, math.nan)
    if _constant(x) and _constant(y):
        return (diff, diff, diff)
    compare = weightstats.CompareMeans(weightstats.DescrStatsW(x), weightstats.DescrStatsW(y))
    low, high = compare.tconfint_diff(alpha=1 - confidence, usevar="unequal")
    return (diff, float(low), float(high))


def tost_two_sample(a: Sequence[float], b: Sequence[float], low: float, high: float) -> float:
    """Welch TOST p-value that mean(a) - mean(b) lies inside (low, high) (statsmodels ttost_ind).

    Both groups constant: the difference is known exactly, so the p-value is 0 inside the band and 1
    outside. Fewer than two values in a group: NaN.
    """
    x = _finite_array(a, "a", "tost_two_sample")
    y = _finite_array(b, "b", "tost_two_sample")
    if not low < high:
        raise ValueError(f"tost_two_sample: need low < high, got {low}, {high}")
    if x.size < 2 or y.size < 2:
        return math.nan
    if _constant(x) and _constant(y):
        return 0.0 if low < x[0] - y[0] < high else 1.0
    p, _, _ = weightstats.ttost_ind(x, y, low, high, usevar="unequal")
    return float(p)


def ks_two_sample(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test (scipy ks_2samp, two-sided): (D, p). Used for length distributions.

    A mean can stay put while the distribution changes shape (a policy that answers either very short or very
    long); KS sees that. An empty sample gives (nan, nan).
    """
    x = _finite_array(a, "a", "ks_two_sample")
    y = _finite_array(b, "b", "ks_two_sample")
    if x.size == 0 or y.size == 0:
        return (math.nan, math.nan)
    res = sps.ks_2samp(x, y)
    return (float(res.statistic), float(res.pvalue))


def cohens_d(a: Sequence[float], b: Sequence[float]) -> float:
    """Cohen's d of a against b: (mean(a) - mean(b)) / pooled standard deviation (ddof 1 in each group).

    Neither scipy nor statsmodels has Cohen's d itself (statsmodels' effectsize_smd applies Hedges' small-sample
    correction); the tests check this against it with the correction undone. An empty group, fewer than three
    values in all, or a pooled SD of zero gives NaN: no spread, no scale.
    """
    x = _finite_array(a, "a", "cohens_d")
    y = _finite_array(b, "b", "cohens_d")
    dof = x.size + y.size - 2
    if x.size == 0 or y.size == 0 or dof < 1:
        return math.nan
    ss = (x.size - 1) * (x.var(ddof=1) if x.size > 1 else 0.0) + (y.size - 1) * (y.var(ddof=1) if y.size > 1 else 0.0)
    pooled = math.sqrt(ss / dof)
    if pooled == 0.0:
        return math.nan
    return float((x.mean() - y.mean()) / pooled)


def cliffs_delta(a: Sequence[float], b: Sequence[float]) -> float:
    """Cliff's delta of a against b: P(a > b) - P(a < b) over all pairs, from scipy's Mann-Whitney U.

    delta = 2 U / (n_a n_b) - 1 with U counting ties one half (Cliff 1993): a rank effect size for the
    per-sample tests, in [-1, 1]. An empty sample gives NaN.
    """
    x = _finite_array(a, "a", "cliffs_delta")
    y = _finite_array(b, "b", "cliffs_delta")
    if x.size == 0 or y.size == 0:
        return math.nan
    u = sps.mannwhitneyu(x, y, alternative="two-sided").statistic
    return float(2.0 * u / (x.size * y.size) - 1.0)


# ------------------------------------------------------------------------------------------- IQM


def iqm(values: Sequence[float]) -> float:
    """Interquartile mean: the mean of the middle 50% (scipy trim_mean 0.25, as rliable's aggregate_iqm)."""
    arr = _finite_array(values, "values", "iqm")
    if arr.size == 0:
        return math.nan
    return float(sps.trim_mean(arr, 0.25))


def iqm_stratified_bootstrap(
    scores, confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0
) -> tuple[float, float, float]:
    """IQM of a (runs x tasks) score matrix with rliable's stratified percentile bootstrap interval.

    rliable (Agarwal et al. 2021) resamples runs with replacement within each task (the strata) and takes the
    IQM of all resampled scores; scipy.stats.bootstrap does the same when each task's column is passed as a
    separate sample (paired=False resamples each sample independently). A 1-D input is one task: runs are the
    seeds. One run: (iqm, nan, nan), as there is no between-run spread to resample. All scores equal: a point.
    """
    _check_confidence(confidence, "iqm_stratified_bootstrap")
    arr = np.asarray(scores, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"iqm_stratified_bootstrap: scores must be 1-D or (runs x tasks), got shape {arr.shape}")
    _finite_array(arr, "scores", "iqm_stratified_bootstrap")
    if arr.size == 0:
        return (math.nan, math.nan, math.nan)
    point = iqm(arr.ravel())
    if arr.shape[0] < 2:
        return (point, math.nan, math.nan)
    if _constant(arr.ravel()):
        return (point, point, point)

    def statistic(*columns, axis=-1):
        return sps.trim_mean(np.concatenate(columns, axis=axis), 0.25, axis=axis)

    res = sps.bootstrap(
        tuple(arr[:, j] for j in range(arr.shape[1])),
        statistic,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",  # rliable's default
        vectorized=True,
        paired=False,
        rng=np.random.default_rng(seed),
    )
    return (point, float(res.confidence_interval.low), float(res.confidence_interval.high))


# --------------------------------------------------------------------------- many claims, power


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (statsmodels multipletests, method 'holm'); NaN entries stay NaN and are not
    counted in the family (a claim that could not be tested does not make the others harder to pass)."""
    arr = np.asarray(p_values, dtype=float).ravel()
    out = np.full(arr.shape, math.nan)
    tested = ~np.isnan(arr)
    if tested.any():
        if ((arr[tested] < 0) | (arr[tested] > 1)).any():
            raise ValueError(f"holm: p-values must lie in [0, 1], got {arr[tested].tolist()}")
        out[tested] = multitest.multipletests(arr[tested], method="holm")[1]
    return [float(p) for p in out]


def mde_one_sample(n: int, sd: float, alpha: float = 0.05, power_: float = 0.8, alternative: str = "greater"):
    """Smallest mean shift a one-sample t test on n values detects with the given power: (shift, |Cohen's d|).

    statsmodels TTestPower solves for d; the shift is d times sd (the observed SD of the tested values).
    n < 2, or sd zero or NaN, gives NaN (no test is possible, or no scale to express the effect in).
    """
    _check_alternative(alternative, "mde_one_sample")
    if n < 2:
        return (math.nan, math.nan)
    # statsmodels returns a negative d for alternative 'smaller'; the size of the effect is what is asked.
    d = abs(
        float(
            power.TTestPower().solve_power(nobs=n, alpha=alpha, power=power_, alternative=SM_ALTERNATIVE[alternative])
        )
    )
    shift = d * sd if sd and not math.isnan(sd) else math.nan
    return (float(shift), d)


def mde_two_sample(
    n_a: int, n_b: int, sd: float, alpha: float = 0.05, power_: float = 0.8, alternative: str = "greater"
):
    """Smallest difference of means a two-sample t test detects with the given power: (difference, |d|).

    statsmodels TTestIndPower solves for d at n_a and n_b = ratio * n_a; the difference is d times sd (the
    pooled SD). n_a or n_b < 2, or sd zero or NaN, gives NaN.
    """
    _check_alternative(alternative, "mde_two_sample")
    if n_a < 2 or n_b < 2:
        return (math.nan, math.nan)
    d = abs(
        float(
            power.TTestIndPower().solve_power(
                nobs1=n_a, ratio=n_b / n_a, alpha=alpha, power=power_, alternative=SM_ALTERNATIVE[alternative]
            )
        )
    )
    shift = d * sd if sd and not math.isnan(sd) else math.nan
    return (float(shift), d)


def mde_proportion(n: int, p0: float, alpha: float = 0.05, power_: float = 0.8) -> tuple[float, float]:
    """Smallest drop below p0 that a two-sided test on n trials detects with the given power: (drop, h).

    statsmodels NormalIndPower with ratio 0 is the one-sample test on Cohen's h = 2 asin(sqrt p) - 2 asin(sqrt
    p0); the proportion p0 - drop is the one at distance h below p0. The drop, not the rise, because the
    documented accuracies sit near 1, where there is little room above.
    """
    p0 = _finite_number(p0, "p0", "mde_proportion")
    if n < 1 or not 0.0 <= p0 <= 1.0:
        return (math.nan, math.nan)
    h = float(power.NormalIndPower().solve_power(nobs1=n, ratio=0, alpha=alpha, power=power_))
    angle = 2.0 * math.asin(math.sqrt(p0)) - h
    p1 = math.sin(max(angle, 0.0) / 2.0) ** 2
    return (p0 - p1, h)
