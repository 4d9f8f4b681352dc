"""Statistics over seeds for the aggregate, claims and compare stages: intervals, tests, effect sizes.

Pair counts (reward-model accuracy) are tested in analysis/proportions.py; Holm, power and the IQM bootstrap
are in analysis/power.py; both share the conventions and checks here.

Thin wrappers around scipy and statsmodels. They exist so that every caller gets the same conventions:
NaN or infinite input is an error (a NaN that slips into a mean or a rank test silently changes the answer, an
inf makes every mean and SD inf or NaN), degenerate samples (one seed, all values equal) give NaN instead of a
library warning or an invented certainty, and results are plain Python floats that write cleanly to CSV.
"All values equal" allows rounding noise: values whose spread is at most CONSTANT_RTOL of their largest
magnitude count as equal (see _constant), so that 0.1 and 0.09999999999999998 are not a difference.
Alternatives are named as in scipy ('greater', 'less', 'two-sided') everywhere; the statsmodels wrappers
translate.

rliable's stratified bootstrap is reproduced with scipy.stats.bootstrap rather than imported: rliable 1.2
requires arch < 8, and arch 7 does not import with the pandas 3 of envs/requirements.lock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps
from statsmodels.stats import weightstats

ALTERNATIVES = ("greater", "less", "two-sided")
# statsmodels names the one-sided alternatives differently.
SM_ALTERNATIVE = {"greater": "larger", "less": "smaller", "two-sided": "two-sided"}


# Relative spread below which values count as equal: float64 rounding is about 1e-16 per operation, and a mean
# of a million values carries at most about 1e-10 of its magnitude; real seed-to-seed spread is far larger.
CONSTANT_RTOL = 1e-10


def _finite_array(values: Sequence[float], name: str, func: str) -> np.ndarray:
    """Return values as a 1-D float array; raise ValueError naming the caller if any value is NaN or inf."""
    arr = np.asarray(values, dtype=float).ravel()
    bad = ~np.isfinite(arr)
    if bad.any():
        kinds = {"NaN" if np.isnan(v) else "inf" for v in arr[bad]}
        what = " and ".join(sorted(kinds))
        where = np.flatnonzero(bad).tolist()
        raise ValueError(f"{func}: {name} contains {what} at position(s) {where}; drop or fill them first")
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


UNBOUNDED = (-math.inf, math.inf)


def clip_to_bounds(low: float, high: float, limits: tuple[float, float]) -> tuple[float, float]:
    """An interval intersected with the range the quantity can take (metrics.bounds), NaN kept.

    Mandelkern (2002), "Setting confidence intervals for bounded parameters", Statistical Science 17(2): the
    intersection of a confidence interval with the parameter space has at least the same coverage (whenever the
    interval covers the true value, so does its intersection, as the true value lies in the space). Cheap and
    honest: a judge ratio reads 0.312 [0, 1] rather than 0.312 [-0.482, 1.11]. The price is that an interval that
    reaches a bound is shorter than its coverage would need, never longer.
    """
    lo, hi = limits
    if not lo <= hi:
        raise ValueError(f"clip_to_bounds: need lower bound <= upper bound, got {limits}")
    return (max(low, lo) if not math.isnan(low) else low, min(high, hi) if not math.isnan(high) else high)


def t_interval(
    values: Sequence[float], confidence: float = 0.95, limits: tuple[float, float] = UNBOUNDED
) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of the mean, e.g. over PPO seeds, clipped to `limits`
    (the range the values can take, metrics.bounds; see clip_to_bounds).

    One value has no spread to estimate: (v, nan, nan). Identical values (to within CONSTANT_RTOL) have
    no spread to estimate either: (mean, nan, nan), not a zero-width interval that would claim a certainty
    that a handful of seeds cannot give. No values: all NaN.
    """
    _check_confidence(confidence, "t_interval")
    arr = _finite_array(values, "values", "t_interval")
    if arr.size == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(arr.mean())
    if arr.size == 1 or _constant(arr):
        return (mean, math.nan, math.nan)
    sem = float(sps.sem(arr))
    low, high = sps.t.interval(confidence, df=arr.size - 1, loc=mean, scale=sem)
    return (mean, *clip_to_bounds(float(low), float(high), limits))


def mann_whitney_one_sided(a: Sequence[float], b: Sequence[float], alternative: str) -> tuple[float, float]:
    """Mann-Whitney U test of a against b (U is a's statistic); alternative 'greater' means a > b.

    Used per seed on per-sample values (rewards, word counts) through proportions.per_sample_test, which
    tests 0/1 judge labels with Fisher's exact test instead: under heavy ties scipy uses the normal
    approximation, which is liberal on indicator data. Rank-based, so it needs no normality. An empty sample
    gives (nan, nan).
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

    Used over seed means, the unit that is actually replicated: welch_diff_test against 0, the one Welch
    implementation (see there for constant groups).
    """
    return _welch(a, b, 0.0, alternative, "welch_t")


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
    if not math.isfinite(value):
        raise ValueError(f"{func}: {name} is {'NaN' if math.isnan(value) else value}, not a finite number")
    return value


def _constant(arr: np.ndarray) -> bool:
    """All values equal to within CONSTANT_RTOL of their largest magnitude: rounding noise is no spread."""
    if not arr.size:
        return False
    return bool(np.ptp(arr) <= CONSTANT_RTOL * np.max(np.abs(arr)))


def _exactly_constant(arr: np.ndarray) -> np.ndarray:
    """A group that is constant up to rounding noise, replaced by its mean, so that its variance is exactly 0."""
    return np.full(arr.shape, arr.mean()) if _constant(arr) else arr


def outside_p(p_below: float, p_above: float) -> float:
    """p-value that a quantity lies outside [low, high], from the one-sided p-values of each side.

    The alternative is a union of two disjoint one-sided alternatives, so each side is tested at alpha/2
    (Bonferroni): rejection at alpha means the two-sided (1 - alpha) interval lies wholly outside the band.
    """
    if math.isnan(p_below) or math.isnan(p_above):
        return math.nan
    return min(1.0, 2.0 * min(p_below, p_above))


# ------------------------------------------------------------------------- one sample (over seeds)


def bounded_skewness(mean: float, sd: float, limits: tuple[float, float]) -> float:
    """Skewness of the beta distribution on `limits` with this mean and SD: the skew a metric bounded on both
    sides has near a bound (a ratio of 0.85 can fall further than it can rise). Its variance is capped below
    the largest a beta allows (u (1 - u)), as in analysis/calibration.draw."""
    low, high = limits
    u = min(max((mean - low) / (high - low), 1e-9), 1 - 1e-9)
    var = min((sd / (high - low)) ** 2, 0.99 * u * (1 - u))
    kappa = u * (1 - u) / var - 1  # alpha + beta of the beta
    return 2 * (1 - 2 * u) * math.sqrt(kappa + 1) / ((kappa + 2) * math.sqrt(u * (1 - u)))


def seed_skewness(values: Sequence[float], limits: tuple[float, float], minus: Sequence[float] | None = None) -> float:
    """The skewness one_sample_t corrects for: of a policy's seed values of a metric bounded by `limits`
    (bounded_skewness at their mean and SD), or, with `minus`, of the per-seed differences values - minus, whose
    parts are taken as independent: g = (m3(values) - m3(minus)) / (var(values) + var(minus))^1.5, a constant
    part adding nothing. 3 seeds cannot estimate a third moment (the sample skewness of 3 values is at most 0.71
    in magnitude, and 3 differences can have almost no spread by chance): the bound's is used instead. NaN where
    there is no spread."""
    arr = _finite_array(values, "values", "seed_skewness")
    parts = [arr] if minus is None else [arr, _finite_array(minus, "minus", "seed_skewness")]
    moments = []  # (variance, third central moment) of each part
    for part in parts:
        sd = 0.0 if part.size < 2 or _constant(part) else float(part.std(ddof=1))
        m3 = bounded_skewness(float(part.mean()), sd, limits) * sd**3 if sd > 0 else 0.0
        moments.append((sd * sd, m3))
    variance = sum(v for v, _ in moments)
    if not variance > 0:
        return math.nan
    third = moments[0][1] - (moments[1][1] if minus is not None else 0.0)
    return third / variance**1.5


def one_sample_t(
    values: Sequence[float], value: float, alternative: str, skewness: float | None = None
) -> tuple[float, float]:
    """Student's t test of mean(values) against value (statsmodels DescrStatsW.ttest_mean): (t, p).

    With `skewness` g (seed_skewness: values of a metric bounded on both sides, or their differences), the t
    statistic is corrected for the population's skewness by Hall's (1992) monotone cubic transformation (JRSS B
    54: 221-228; Johnson's 1978 correction made monotone), with a = g / sqrt(n):
    t1 = t + a t^2 / 3 + a^2 t^3 / 27 + a / 6, against the same t distribution. Plain t is liberal on a ratio
    near its bound: 6.2% false REPRODUCED at a band edge of 0.8 with 3 seeds at nominal 5% (docs/claims.md); the
    corrected t holds 5% (benchmarks/out/verdict_calibration.txt). With g = 0 (the middle of the range) t1 is t.

    Fewer than two values, or values that are all equal (zero standard error: the statistic is undefined),
    give (nan, nan).
    """
    _check_alternative(alternative, "one_sample_t")
    arr = _finite_array(values, "values", "one_sample_t")
    value = _finite_number(value, "value", "one_sample_t")
    if arr.size < 2 or _constant(arr):
        return (math.nan, math.nan)
    if skewness is None or not math.isfinite(skewness):
        stat, p, _ = weightstats.DescrStatsW(arr).ttest_mean(value, alternative=SM_ALTERNATIVE[alternative])
        return (float(stat), float(p))
    n = arr.size
    t = (float(arr.mean()) - value) / (float(arr.std(ddof=1)) / math.sqrt(n))
    a = skewness / math.sqrt(n)
    stat = t + a * t * t / 3 + a * a * t**3 / 27 + a / 6  # derivative (1 + a t / 3)^2 >= 0: monotone in t
    df = n - 1
    p = {"greater": sps.t.sf(stat, df), "less": sps.t.cdf(stat, df), "two-sided": 2 * sps.t.sf(abs(stat), df)}
    return (float(stat), float(p[alternative]))


def tost_one_sample(values: Sequence[float], low: float, high: float, skewness: float | None = None) -> float:
    """TOST p-value that the mean of values lies inside (low, high) (statsmodels DescrStatsW.ttost_mean).

    Equivalence is declared at level alpha when p < alpha, which is the (1 - 2 alpha) t interval lying
    inside the band. `skewness`: one_sample_t's correction. Fewer than two values or all equal: NaN.
    """
    arr = _finite_array(values, "values", "tost_one_sample")
    if not low < high:
        raise ValueError(f"tost_one_sample: need low < high, got {low}, {high}")
    if arr.size < 2 or _constant(arr):
        return math.nan
    if skewness is None:
        p, _, _ = weightstats.DescrStatsW(arr).ttost_mean(low, high)
        return float(p)
    return max(one_sample_t(arr, low, "greater", skewness)[1], one_sample_t(arr, high, "less", skewness)[1])


def one_sample_outside(values: Sequence[float], low: float, high: float, skewness: float | None = None) -> float:
    """t-test p-value that the mean of values lies outside [low, high] (see outside_p; skewness: one_sample_t)."""
    _, p_below = one_sample_t(values, low, "less", skewness)
    _, p_above = one_sample_t(values, high, "greater", skewness)
    return outside_p(p_below, p_above)


# ------------------------------------------------------------------------- two samples (over seeds)


def welch_diff_test(a: Sequence[float], b: Sequence[float], value: float, alternative: str) -> tuple[float, float]:
    """Welch t test of mean(a) - mean(b) against value (statsmodels ttest_ind, usevar='unequal'): (t, p).

    value = 0 is welch_t; a non-zero value tests against the smallest effect of interest. A group that is
    constant up to rounding noise (_constant) has variance exactly 0: a judge ratio of 0.0 in every base seed
    is tested against the other group's spread alone, and ten 0.1s against five 0.1s and five
    0.09999999999999998 are two constant groups, not a significant difference. Fewer than two values in a
    group, or both groups constant (the statistic is undefined), give (nan, nan).
    """
    return _welch(a, b, value, alternative, "welch_diff_test")


def _welch(a, b, value: float, alternative: str, func: str) -> tuple[float, float]:
    _check_alternative(alternative, func)
    x = _finite_array(a, "a", func)
    y = _finite_array(b, "b", func)
    value = _finite_number(value, "value", func)
    if x.size < 2 or y.size < 2 or (_constant(x) and _constant(y)):
        return (math.nan, math.nan)
    x, y = _exactly_constant(x), _exactly_constant(y)
    stat, p, _ = weightstats.ttest_ind(x, y, alternative=SM_ALTERNATIVE[alternative], usevar="unequal", value=value)
    return (float(stat), float(p))


def welch_diff_interval(
    a: Sequence[float], b: Sequence[float], confidence: float = 0.95, limits: tuple[float, float] = UNBOUNDED
) -> tuple[float, float, float]:
    """mean(a) - mean(b) with the Welch-Satterthwaite t interval (statsmodels CompareMeans.tconfint_diff),
    clipped to `limits` (the range of a difference, metrics.bounds; see clip_to_bounds).

    Fewer than two values in a group, or both groups constant (no spread to estimate, as t_interval):
    (diff, nan, nan).
    """
    _check_confidence(confidence, "welch_diff_interval")
    x = _finite_array(a, "a", "welch_diff_interval")
    y = _finite_array(b, "b", "welch_diff_interval")
    if x.size == 0 or y.size == 0:
        return (math.nan, math.nan, math.nan)
    diff = float(x.mean() - y.mean())
    if x.size < 2 or y.size < 2 or (_constant(x) and _constant(y)):
        return (diff, math.nan, math.nan)
    x, y = _exactly_constant(x), _exactly_constant(y)
    compare = weightstats.CompareMeans(weightstats.DescrStatsW(x), weightstats.DescrStatsW(y))
    low, high = compare.tconfint_diff(alpha=1 - confidence, usevar="unequal")
    return (diff, *clip_to_bounds(float(low), float(high), limits))


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
        return 0.0 if low < x.mean() - y.mean() < high else 1.0
    x, y = _exactly_constant(x), _exactly_constant(y)
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
