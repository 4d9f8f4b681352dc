"""How sure a set of seeds can be: IQM and probability of improvement with a stratified bootstrap, Holm across
claims, minimal detectable effects."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps
from statsmodels.stats import power

from rlhf_bench.analysis.stats import (
    SM_ALTERNATIVE,
    _check_alternative,
    _check_confidence,
    _constant,
    _finite_array,
    _finite_number,
)

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


def _improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + P(X = Y) / 2 over all pairs of the last axes' values (vectorised over leading axes)."""
    wins = (x[..., :, None] > y[..., None, :]) + 0.5 * (x[..., :, None] == y[..., None, :])
    return wins.mean(axis=(-2, -1))


def probability_of_improvement(
    x, y, confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0
) -> tuple[float, float, float]:
    """rliable's probability of improvement of X over Y (Agarwal et al. 2021) with its stratified bootstrap interval.

    P(X > Y) on one task is the Mann-Whitney U of X against Y over all pairs of runs, ties counting a half (so two
    equal sets of runs give 0.5, as rliable's special case does); the interval resamples X's runs and Y's runs
    independently (rliable's StratifiedIndependentBootstrap, percentile method). Unlike a test it answers "how
    often does a run of X beat a run of Y", which stays readable with few seeds. Fewer than two runs on either
    side: (point, nan, nan). All values equal: (0.5, 0.5, 0.5).
    """
    _check_confidence(confidence, "probability_of_improvement")
    a = _finite_array(x, "x", "probability_of_improvement")
    b = _finite_array(y, "y", "probability_of_improvement")
    if a.size == 0 or b.size == 0:
        return (math.nan, math.nan, math.nan)
    point = float(_improvement(a, b))
    if a.size < 2 or b.size < 2:
        return (point, math.nan, math.nan)
    if _constant(np.concatenate([a, b])):
        return (point, point, point)
    res = sps.bootstrap(
        (a, b),
        lambda xs, ys, axis=-1: _improvement(np.moveaxis(xs, axis, -1), np.moveaxis(ys, axis, -1)),
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        paired=False,
        rng=np.random.default_rng(seed),
    )
    return (point, float(res.confidence_interval.low), float(res.confidence_interval.high))


# --------------------------------------------------------------------------- many claims, power


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values; NaN entries stay NaN and are not counted in the family (a claim that could not be
    tested does not make the others harder to pass).

    Holm (1979): sorted ascending, the i-th of m gets max over j <= i of min(1, (m - j + 1) p_(j)). Computed here
    rather than by statsmodels' multipletests, which it equals to rounding (the tests check), because that calls
    gc.collect() on every call: 60 ms, which the verdict calibration's thousands of simulated runs cannot pay."""
    arr = np.asarray(p_values, dtype=float).ravel()
    out = np.full(arr.shape, math.nan)
    tested = ~np.isnan(arr)
    if tested.any():
        if ((arr[tested] < 0) | (arr[tested] > 1)).any():
            raise ValueError(f"holm: p-values must lie in [0, 1], got {arr[tested].tolist()}")
        p = arr[tested]
        order = np.argsort(p, kind="stable")
        factors = np.arange(p.size, 0, -1)
        adjusted = np.empty_like(p)
        adjusted[order] = np.minimum(1.0, np.maximum.accumulate(factors * p[order]))
        out[tested] = adjusted
    return [float(p) for p in out]


@functools.cache
def _solve_d(kind: str, n_a: int, ratio: float, alpha: float, power_: float, alternative: str) -> float:
    """|Cohen's d| that a t test of `kind` ('one', 'two') detects with the given power (statsmodels root finding,
    cached: it depends on the design only, and claims and calibration ask for the same designs again and again)."""
    if kind == "one":
        solver = power.TTestPower().solve_power(nobs=n_a, alpha=alpha, power=power_, alternative=alternative)
    else:
        solver = power.TTestIndPower().solve_power(
            nobs1=n_a, ratio=ratio, alpha=alpha, power=power_, alternative=alternative
        )
    # statsmodels returns a negative d for alternative 'smaller'; the size of the effect is what is asked.
    return abs(float(solver))


def mde_one_sample(n: int, sd: float, alpha: float = 0.05, power_: float = 0.8, alternative: str = "greater"):
    """Smallest mean shift a one-sample t test on n values detects with the given power: (shift, |Cohen's d|).

    statsmodels TTestPower solves for d; the shift is d times sd (the observed SD of the tested values).
    n < 2, or sd zero or NaN, gives NaN (no test is possible, or no scale to express the effect in).
    """
    _check_alternative(alternative, "mde_one_sample")
    if n < 2:
        return (math.nan, math.nan)
    d = _solve_d("one", int(n), 1.0, float(alpha), float(power_), SM_ALTERNATIVE[alternative])
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
    d = _solve_d("two", int(n_a), n_b / n_a, float(alpha), float(power_), SM_ALTERNATIVE[alternative])
    shift = d * sd if sd and not math.isnan(sd) else math.nan
    return (float(shift), d)


def detectable(start: float, shift: float, alternative: str, limits: tuple[float, float]) -> bool:
    """Whether an effect of `shift` away from `start` can exist for a quantity in `limits` (metrics.bounds).

    'greater': start + shift must not pass the upper bound; 'less': start - shift the lower; 'two-sided':
    either. A smallest detectable effect of 1.02 on a ratio that starts at 0.5 is past both bounds: nothing a
    ratio can do is detectable with this many seeds. NaN shifts are not judged here (True).
    """
    _check_alternative(alternative, "detectable")
    if math.isnan(shift) or math.isnan(start):
        return True
    low, high = limits
    up, down = start + shift <= high, start - shift >= low
    return {"greater": up, "less": down, "two-sided": up or down}[alternative]


@functools.cache
def _solve_h(n: int, alpha: float, power_: float) -> float:
    """Cohen's h that a two-sided test on n trials detects with the given power (cached as _solve_d)."""
    return float(power.NormalIndPower().solve_power(nobs1=n, ratio=0, alpha=alpha, power=power_))


def mde_proportion(n: int, p0: float, alpha: float = 0.05, power_: float = 0.8) -> tuple[float, float]:
    """Smallest drop below p0 that a two-sided test on n trials detects with the given power: (drop, h).

    statsmodels NormalIndPower with ratio 0 is the one-sample test on Cohen's h = 2 asin(sqrt p) - 2 asin(sqrt
    p0); the proportion p0 - drop is the one at distance h below p0. The drop, not the rise, because the
    documented accuracies sit near 1, where there is little room above.
    """
    p0 = _finite_number(p0, "p0", "mde_proportion")
    if n < 1 or not 0.0 <= p0 <= 1.0:
        return (math.nan, math.nan)
    h = _solve_h(int(n), float(alpha), float(power_))
    angle = 2.0 * math.asin(math.sqrt(p0)) - h
    p1 = math.sin(max(angle, 0.0) / 2.0) ** 2
    return (p0 - p1, h)


# --------------------------------------------------------------------------- how many would decide

MAX_N = 100_000  # beyond this many seeds or samples, "would decide" is reported as never (inf)


def _n_for(d: float, alpha: float, power_: float, two_sample: bool) -> float:
    """Smallest n (per group) at which a one-sided t test at alpha detects Cohen's d with the given power."""
    if not d > 0 or math.isnan(d):
        return math.inf
    solver = power.TTestIndPower() if two_sample else power.TTestPower()
    try:
        kwargs = {"nobs1": None, "ratio": 1.0} if two_sample else {"nobs": None}
        n = float(solver.solve_power(effect_size=d, alpha=alpha, power=power_, alternative="larger", **kwargs))
    except (ValueError, RuntimeError):  # statsmodels' root finder gives up far out: as good as never
        return math.inf
    if not math.isfinite(n):
        return math.inf
    n = max(2.0, math.ceil(n - 1e-9))
    return n if n <= MAX_N else math.inf


def n_to_decide_one_sample(values, low: float, high: float, alpha: float = 0.05, power_: float = 0.8) -> float:
    """How many seeds would decide a claim on the mean of `values` lying in (low, high) at the given power, if the
    observed mean and SD were the truth (Colas et al. 2018, "How many random seeds?"): the support test when the
    mean lies inside (TOST: its nearer edge at alpha), else the refute test (the farther side of a band at
    alpha / 2, as outside_p; a one-sided bound at alpha). An infinite bound is no bound. NaN without spread."""
    arr = _finite_array(values, "values", "n_to_decide_one_sample")
    if arr.size < 2 or _constant(arr):
        return math.nan
    mean, sd = float(arr.mean()), float(arr.std(ddof=1))
    if low < mean < high:
        return _n_for(min(mean - low, high - mean) / sd, alpha, power_, two_sample=False)
    level = alpha / 2 if math.isfinite(low) and math.isfinite(high) else alpha
    return _n_for(max(low - mean, mean - high) / sd, level, power_, two_sample=False)


def n_to_decide_two_sample(a, b, smallest: float, alternative: str, alpha: float = 0.05, power_: float = 0.8):
    """As n_to_decide_one_sample for a direction claim over seeds (Welch, both groups the same size): the support
    test (mean(a) - mean(b) beyond 0 in `alternative`) or the refute test (short of `smallest`), whichever the
    observed difference points to needs fewer seeds per group."""
    _check_alternative(alternative, "n_to_decide_two_sample")
    x = _finite_array(a, "a", "n_to_decide_two_sample")
    y = _finite_array(b, "b", "n_to_decide_two_sample")
    if x.size < 2 or y.size < 2 or (_constant(x) and _constant(y)):
        return math.nan
    sd = math.sqrt((x.var(ddof=1) + y.var(ddof=1)) / 2)
    sign = 1.0 if alternative == "greater" else -1.0
    diff = sign * float(x.mean() - y.mean())
    support = _n_for(diff / sd, alpha, power_, two_sample=True)
    refute = _n_for((sign * smallest - diff) / sd, alpha, power_, two_sample=True)
    return min(support, refute)


def n_to_decide_proportion(successes: int, n: int, low: float, high: float, alpha=0.05, power_=0.8) -> float:
    """Pairs that would decide an accuracy's equivalence band at the given power if the observed proportion were
    the truth (normal approximation of the exact binomial tests): n = ((z_a + z_power) sqrt(p (1 - p)) / dist)^2."""
    if n == 0:
        return math.nan
    p = successes / n
    inside = low < p < high
    dist = min(p - low, high - p) if inside else max(low - p, p - high)
    level = alpha if inside else alpha / 2
    sd = math.sqrt(max(p * (1 - p), 1.0 / (4 * n * n)))  # at 0/n or n/n, the spread of half a pair
    if not dist > 0:
        return math.inf
    need = math.ceil(((sps.norm.isf(level) + sps.norm.ppf(power_)) * sd / dist) ** 2)
    return float(need) if need <= MAX_N * 100 else math.inf
