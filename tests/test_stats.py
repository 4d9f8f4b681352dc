"""rlhf_bench.analysis.stats against independent computations: closed forms, hand counts, other libraries' functions
and published worked examples, edge cases included (all-equal samples, one seed, zero successes, NaN)."""

import math
import warnings

import numpy as np
import pytest
from scipy import stats as sps

from rlhf_bench.analysis import power, proportions, stats
from rlhf_bench.analysis.stats import mann_whitney_one_sided, t_interval, welch_t, wilson_interval

Z95 = 1.959963984540054  # standard normal 97.5% quantile


def wilson_closed_form(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson (1927): (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)."""
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize(
    ("k", "n", "expected"),
    [
        (8, 10, (0.4901624715, 0.9433178485)),
        (190, 200, (0.9104218519, 0.9726173544)),
        (0, 10, (0.0, 0.2775327999)),  # zero successes: the upper bound is z²/(n + z²)
    ],
)
def test_wilson_matches_closed_form_and_fixed_values(k, n, expected):
    low, high = wilson_interval(k, n)
    assert (low, high) == pytest.approx(wilson_closed_form(k, n), abs=1e-9)
    assert (low, high) == pytest.approx(expected, abs=1e-9)


def test_wilson_zero_successes_upper_bound():
    assert wilson_interval(0, 10)[1] == pytest.approx(Z95**2 / (10 + Z95**2), abs=1e-12)


def test_wilson_all_successes_reaches_one():
    low, high = wilson_interval(10, 10)
    assert high == pytest.approx(1.0)
    assert low == pytest.approx(wilson_closed_form(10, 10)[0], abs=1e-9)


def test_wilson_other_confidence_is_narrower():
    low90, high90 = wilson_interval(8, 10, confidence=0.90)
    assert (low90, high90) == pytest.approx(wilson_closed_form(8, 10, z=sps.norm.ppf(0.95)), abs=1e-9)
    low95, high95 = wilson_interval(8, 10)
    assert low95 < low90 < high90 < high95


def test_wilson_n_zero_is_nan():
    low, high = wilson_interval(0, 0)
    assert math.isnan(low) and math.isnan(high)


@pytest.mark.parametrize(("k", "n"), [(11, 10), (-1, 10), (2.5, 10), (float("nan"), 10)])
def test_wilson_rejects_impossible_counts(k, n):
    with pytest.raises(ValueError, match="wilson_interval"):
        wilson_interval(k, n)


def test_t_interval_matches_manual_computation():
    values = [1.0, 2.0, 4.0]
    mean, low, high = t_interval(values)
    sd = math.sqrt(sum((v - 7 / 3) ** 2 for v in values) / 2)
    half = sps.t.ppf(0.975, df=2) * sd / math.sqrt(3)
    assert mean == pytest.approx(7 / 3)
    assert (low, high) == pytest.approx((7 / 3 - half, 7 / 3 + half))
    assert (low, high) == pytest.approx((-1.4612497, 6.1279164), abs=1e-6)  # t(0.975, 2) = 4.3026527


def test_t_interval_one_value_has_no_interval():
    mean, low, high = t_interval([0.7])
    assert mean == 0.7 and math.isnan(low) and math.isnan(high)


def test_t_interval_all_equal_has_no_interval():
    """All seeds equal: no spread to estimate, so no interval (NaN), as the module says of degenerate samples;
    rounding noise counts as equal."""
    mean, low, high = t_interval([0.25, 0.25, 0.25])
    assert mean == 0.25 and math.isnan(low) and math.isnan(high)
    mean, low, high = t_interval([0.1] * 5 + [0.09999999999999998] * 5)
    assert mean == pytest.approx(0.1) and math.isnan(low) and math.isnan(high)


def test_t_interval_of_a_bounded_metric_stays_in_its_bounds():
    """Three seeds of a judge ratio, 0, 0 and 0.936: the t interval [-1.03, 1.65] is clipped to [0, 1]
    (Mandelkern 2002: the intersection keeps the coverage); an unbounded metric keeps the plain interval."""
    values = [0.0, 0.0, 0.936]
    mean, low, high = t_interval(values)
    assert low < 0 and high > 1
    assert t_interval(values, limits=(0.0, 1.0)) == (mean, 0.0, 1.0)
    narrow = [0.2, 0.25, 0.3]
    assert t_interval(narrow, limits=(0.0, 1.0)) == t_interval(narrow)  # inside the bounds: unchanged
    diff, low, high = stats.welch_diff_interval([0.9, 0.1, 0.95], [0.0, 0.05, 0.0], limits=(-1.0, 1.0))
    assert -1.0 <= low < diff < high == 1.0
    with pytest.raises(ValueError, match="clip_to_bounds"):
        stats.clip_to_bounds(0.0, 1.0, (1.0, 0.0))


def test_an_effect_past_the_bounds_is_not_detectable():
    assert power.detectable(0.5, 0.3, "greater", (0.0, 1.0))
    assert not power.detectable(0.5, 0.6, "greater", (0.0, 1.0)) and power.detectable(0.5, 0.5, "less", (0.0, 1.0))
    assert not power.detectable(0.5, 1.02, "two-sided", (0.0, 1.0))  # the mde of 1.02 for a ratio
    assert power.detectable(0.9, 0.6, "two-sided", (0.0, 1.0))  # 0.9 - 0.6 = 0.3 is a ratio
    assert power.detectable(0.5, 10.0, "greater", (-math.inf, math.inf))
    assert power.detectable(0.5, math.nan, "greater", (0.0, 1.0))


@pytest.mark.parametrize("bad", [math.inf, -math.inf])
def test_infinite_values_are_refused_like_nan(bad):
    with pytest.raises(ValueError, match=r"t_interval: values contains inf at position\(s\) \[1\]"):
        t_interval([1.0, bad, 2.0])
    with pytest.raises(ValueError, match="welch_t: b contains inf"):
        welch_t([1.0, 2.0], [bad, 1.0], "greater")
    with pytest.raises(ValueError, match=r"iqm: values contains NaN and inf at position\(s\) \[0, 1\]"):
        power.iqm([math.nan, bad, 1.0])
    with pytest.raises(ValueError, match="one_sample_t: value is inf"):
        stats.one_sample_t([1.0, 2.0], math.inf, "greater")


def test_t_interval_empty_is_nan():
    assert all(math.isnan(x) for x in t_interval([]))


def test_t_interval_nan_raises_clear_error():
    with pytest.raises(ValueError, match=r"t_interval: values contains NaN at position\(s\) \[1\]"):
        t_interval([1.0, float("nan"), 2.0])


def test_mann_whitney_u_counts_pairs_and_matches_scipy():
    a = [3.0, 4.0, 5.0, 6.0, 7.0, 7.5]
    b = [1.0, 2.0, 3.0, 4.0, 5.0]
    # U of a: pairs with a_i > b_j, ties counted one half.
    u_by_hand = sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in a for y in b)
    u, p = mann_whitney_one_sided(a, b, "greater")
    assert u == u_by_hand == 25.5
    assert p == pytest.approx(sps.mannwhitneyu(a, b, alternative="greater").pvalue)
    assert p < 0.05
    _, p_less = mann_whitney_one_sided(a, b, "less")
    assert p_less > 0.9


def test_mann_whitney_indicator_data_with_ties():
    rlhf = np.array([1] * 18 + [0] * 6, dtype=float)
    base = np.array([1] * 8 + [0] * 16, dtype=float)
    u, p = mann_whitney_one_sided(rlhf, base, "greater")
    assert u == pytest.approx(sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in rlhf for y in base))
    assert p == pytest.approx(sps.mannwhitneyu(rlhf, base, alternative="greater").pvalue)


def test_judge_labels_get_fishers_exact_test_not_the_normal_approximation():
    """30/64 against 20/64 positive labels: Mann-Whitney's normal approximation says p = 0.036, the exact
    conditional test (the hypergeometric tail) p = 0.051, which is not significant at 0.05."""
    rlhf = np.array([1.0] * 30 + [0.0] * 34)
    base = np.array([1.0] * 20 + [0.0] * 44)
    assert sps.mannwhitneyu(rlhf, base, alternative="greater").pvalue == pytest.approx(0.0358, abs=1e-4)
    test, diff, p = proportions.per_sample_test(rlhf, base, "greater")
    # P(X >= 30) for X hypergeometric: 128 labels, 50 positive, 64 drawn for RLHF.
    assert test == "fisher_exact"
    assert p == pytest.approx(sps.hypergeom.sf(29, 128, 50, 64), rel=1e-9)
    assert p == pytest.approx(0.0513, abs=1e-4) and not p < 0.05
    assert diff == pytest.approx(10 / 64)
    assert proportions.per_sample_test(rlhf, base, "less")[2] > 0.95


def test_per_sample_test_uses_mann_whitney_on_other_values():
    a, b = [3.0, 4.0, 5.0, 6.0, 7.0, 7.5], [1.0, 2.0, 3.0, 4.0, 5.0]
    assert proportions.per_sample_test(a, b, "greater") == ("mann_whitney_u", *mann_whitney_one_sided(a, b, "greater"))
    # One non-indicator value is enough to make it Mann-Whitney.
    assert proportions.per_sample_test([0.0, 1.0, 0.5], [0.0, 1.0], "greater")[0] == "mann_whitney_u"
    test, diff, p = proportions.per_sample_test([], [1.0, 0.0], "greater")
    assert test == "fisher_exact" and math.isnan(diff) and math.isnan(p)


def test_mann_whitney_edge_cases():
    u, p = mann_whitney_one_sided([], [1.0, 2.0], "greater")
    assert math.isnan(u) and math.isnan(p)
    with pytest.raises(ValueError, match="mann_whitney_one_sided: b contains NaN"):
        mann_whitney_one_sided([1.0, 2.0], [1.0, float("nan")], "greater")
    with pytest.raises(ValueError, match="alternative must be one of"):
        mann_whitney_one_sided([1.0], [2.0], "increase")


def test_welch_t_matches_hand_formula():
    a = [5.1, 4.9, 5.6, 5.8]
    b = [4.0, 4.2, 4.8]
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    t_by_hand = (np.mean(a) - np.mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))  # Welch-Satterthwaite
    t, p = welch_t(a, b, "greater")
    assert t == pytest.approx(t_by_hand)
    assert p == pytest.approx(sps.t.sf(t_by_hand, df))
    _, p_less = welch_t(a, b, "less")
    assert p_less == pytest.approx(1 - p)


def test_welch_t_is_not_fooled_by_rounding_noise():
    """Ten 0.1s against five 0.1s and five 0.09999999999999998: two constant groups, no difference. The old
    scipy-based welch_t said t = 3.0, p = 0.0075 (its precision-loss warning filtered away)."""
    a, b = [0.1] * 10, [0.1] * 5 + [0.09999999999999998] * 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning may be raised, nor hidden
        t, p = welch_t(a, b, "greater")
        assert (t, p) == pytest.approx(stats.welch_diff_test(a, b, 0.0, "greater"), nan_ok=True)
        assert not p < 0.05
        assert math.isnan(p)  # both groups constant: no test (the claims call this "no spread")
        # One group constant up to noise, the other spread: tested against the other's spread alone.
        t, p = welch_t([0.3, 0.5, 0.4], b, "greater")
        assert (t, p) == pytest.approx(sps.ttest_1samp([0.3, 0.5, 0.4], 0.1, alternative="greater"))


def test_welch_t_edge_cases():
    assert all(math.isnan(x) for x in welch_t([1.0], [1.0, 2.0], "greater"))
    assert all(math.isnan(x) for x in welch_t([1.0, 1.0], [0.0, 0.0], "greater"))  # no variance at all
    t, p = welch_t([1.0, 1.0, 1.0], [0.0, 0.5, 0.2], "greater")  # one group constant is fine
    assert t > 0 and p < 0.05
    with pytest.raises(ValueError, match="welch_t: a contains NaN"):
        welch_t([float("nan"), 1.0], [1.0, 2.0], "greater")


# ------------------------------------------------------------------------------ proportions


def test_binomial_test_published_example():
    """R's binom.test documentation (Conover 1971, p. 97): 682 of 925 against p = 3/4, p-value 0.3825."""
    assert proportions.binomial_test(682, 925, 0.75) == pytest.approx(0.3825, abs=5e-5)


def test_binomial_one_sided_equals_binomial_tail_sums():
    assert proportions.binomial_test(386, 400, 0.95, "greater") == pytest.approx(sps.binom.sf(385, 400, 0.95), rel=1e-9)
    assert proportions.binomial_test(386, 400, 0.99, "less") == pytest.approx(sps.binom.cdf(386, 400, 0.99), rel=1e-9)


def test_binomial_zero_successes():
    assert proportions.binomial_test(0, 10, 0.5, "less") == pytest.approx(0.5**10)
    assert proportions.binomial_test(0, 10, 0.0, "two-sided") == 1.0
    assert math.isnan(proportions.binomial_test(0, 0, 0.5))


def test_binomial_tost_is_the_larger_one_sided_p():
    k, n, low, high = 386, 400, 0.953, 0.993
    expected = max(sps.binom.sf(k - 1, n, low), sps.binom.cdf(k, n, high))
    assert proportions.binomial_tost(k, n, low, high) == pytest.approx(expected, rel=1e-9)
    # A band reaching past 1 has no upper null: only the lower test counts.
    assert proportions.binomial_tost(399, 400, 0.989, 1.009) == pytest.approx(sps.binom.sf(398, 400, 0.989), rel=1e-9)
    # 400 of 400 against a band ending at exactly 1: H0 p >= 1 cannot be rejected by a perfect count.
    assert proportions.binomial_tost(400, 400, 0.98, 1.0) == 1.0


def test_binomial_outside_doubles_the_smaller_side():
    k, n, low, high = 300, 400, 0.953, 0.993
    expected = min(1.0, 2 * min(sps.binom.cdf(k, n, low), sps.binom.sf(k - 1, n, high)))
    assert proportions.binomial_outside(k, n, low, high) == pytest.approx(expected, rel=1e-9)
    assert proportions.binomial_outside(k, n, low, high) < 1e-10  # 75% is far below 95.3%


def test_binomial_rejects_nan_and_impossible_counts():
    with pytest.raises(ValueError, match="binomial_test: successes and n must be numbers"):
        proportions.binomial_test(float("nan"), 10, 0.5)
    with pytest.raises(ValueError, match="binomial_test: p0 is NaN"):
        proportions.binomial_test(3, 10, float("nan"))
    with pytest.raises(ValueError, match="binomial_tost: need 0 <= successes <= n"):
        proportions.binomial_tost(11, 10, 0.1, 0.2)


def test_newcomb_interval_published_example():
    """Newcomb (1998), Stat Med 17:873, example (a): 56/70 - 48/80, hybrid score interval 0.0524 to 0.3339."""
    diff, low, high = proportions.diff_proportions_interval(56, 70, 48, 80)
    assert diff == pytest.approx(0.2)
    assert (low, high) == pytest.approx((0.0524, 0.3339), abs=5e-5)


def test_newcomb_interval_on_ten_samples_is_wide():
    """The hh-positive figures (9/10 against 6/10): the documented rise of 0.3 is compatible with none."""
    _, low, high = proportions.diff_proportions_interval(9, 10, 6, 10)
    assert low < 0 < 0.3 < high


def test_fisher_exact_equals_hypergeometric_tail():
    # 9/10 against 6/10: P(X >= 9) for X ~ hypergeometric(20 trials, 15 successes, 10 drawn).
    expected = sps.hypergeom.sf(8, 20, 15, 10)
    assert proportions.fisher_exact(9, 10, 6, 10, "greater") == pytest.approx(expected, rel=1e-9)
    assert expected > 0.05  # the documented rise is not significant on its own ten samples


def test_two_proportion_tost_matches_statsmodels_and_one_sided_tests():
    from statsmodels.stats.proportion import tost_proportions_2indep

    p = proportions.tost_two_proportions(390, 400, 386, 400, -0.01, 0.01)
    assert p == pytest.approx(tost_proportions_2indep(390, 400, 386, 400, -0.01, 0.01).pvalue)
    lower = proportions.two_proportions_test(390, 400, 386, 400, -0.01, "greater")
    upper = proportions.two_proportions_test(390, 400, 386, 400, 0.01, "less")
    assert p == pytest.approx(max(lower, upper))
    assert proportions.tost_two_proportions(400, 400, 400, 400, -0.01, 0.01) < 0.05  # 100% vs 100%: no warning, no NaN


# ---------------------------------------------------------------------------- one sample


def test_one_sample_t_matches_scipy():
    values = [0.53125, 0.71875, 0.671875]
    for alternative in ("greater", "less", "two-sided"):
        t, p = stats.one_sample_t(values, 0.5, alternative)
        expected = sps.ttest_1samp(values, 0.5, alternative=alternative)
        assert (t, p) == pytest.approx((expected.statistic, expected.pvalue))


def test_one_sample_edge_cases():
    assert all(math.isnan(x) for x in stats.one_sample_t([0.7], 0.5, "greater"))  # one seed
    assert all(math.isnan(x) for x in stats.one_sample_t([0.7, 0.7, 0.7], 0.5, "greater"))  # all equal
    assert math.isnan(stats.tost_one_sample([0.7], 0.6, 0.8))
    assert math.isnan(stats.tost_one_sample([0.7, 0.7], 0.6, 0.8))
    with pytest.raises(ValueError, match=r"one_sample_t: values contains NaN at position\(s\) \[0\]"):
        stats.one_sample_t([float("nan"), 1.0], 0.5, "greater")
    with pytest.raises(ValueError, match="tost_one_sample: need low < high"):
        stats.tost_one_sample([1.0, 2.0], 1.0, 1.0)


def test_tost_one_sample_is_two_one_sided_t_tests():
    values = [0.64, 0.67, 0.64]
    low, high = 0.573, 0.673
    expected = max(
        sps.ttest_1samp(values, low, alternative="greater").pvalue,
        sps.ttest_1samp(values, high, alternative="less").pvalue,
    )
    assert stats.tost_one_sample(values, low, high) == pytest.approx(expected)
    outside = min(1.0, 2 * min(
        sps.ttest_1samp(values, low, alternative="less").pvalue,
        sps.ttest_1samp(values, high, alternative="greater").pvalue,
    ))  # fmt: skip
    assert stats.one_sample_outside(values, low, high) == pytest.approx(outside)


def test_bounded_skewness_is_the_betas():
    for mean, sd in ((0.8, 0.047), (0.3, 0.1), (0.5, 0.05), (0.95, 0.02)):
        kappa = mean * (1 - mean) / sd**2 - 1
        expected = float(sps.beta(mean * kappa, (1 - mean) * kappa).stats(moments="s"))
        assert stats.bounded_skewness(mean, sd, (0.0, 1.0)) == pytest.approx(expected, rel=1e-12)
    # the same shape on another range: a score in [-1, 1] at 0.6 is a ratio in [0, 1] at 0.8
    assert stats.bounded_skewness(0.6, 0.094, (-1.0, 1.0)) == pytest.approx(stats.bounded_skewness(0.8, 0.047, (0, 1)))


def test_skew_corrected_t_is_halls_transformation():
    values = np.array([0.86, 0.79, 0.83])
    n, mean, sd = 3, values.mean(), values.std(ddof=1)
    g, t = stats.bounded_skewness(mean, sd, (0.0, 1.0)), (mean - 0.8) / (sd / math.sqrt(n))
    a = g / math.sqrt(n)
    t1 = t + a * t**2 / 3 + a**2 * t**3 / 27 + a / 6  # Hall (1992); Zhou and Dinh (2005), eq. 2
    assert stats.seed_skewness(values, (0.0, 1.0)) == pytest.approx(g, rel=1e-12)
    t, p = stats.one_sample_t(values, 0.8, "greater", g)
    assert g < -0.3 and (t, p) == pytest.approx((t1, sps.t.sf(t1, n - 1)), rel=1e-12)
    assert t < sps.ttest_1samp(values, 0.8).statistic  # skewed towards 0: a rise is worth less
    # monotone: a mean further above the tested value never gives a larger p (Johnson's own form is not)
    ps = [stats.one_sample_t(values, value, "greater", -1.5)[1] for value in np.linspace(0.9, 0.3, 61)]
    assert all(later <= earlier for earlier, later in zip(ps, ps[1:], strict=False)) and ps[-1] < 1e-3
    # at the middle of the range there is no skew to correct: plain t
    centred = values - mean + 0.5
    for alternative in ("greater", "less", "two-sided"):
        assert stats.one_sample_t(centred, 0.45, alternative, stats.seed_skewness(centred, (0, 1))) == pytest.approx(
            stats.one_sample_t(centred, 0.45, alternative), rel=1e-9
        )


def test_seed_skewness_of_a_difference():
    """Third central moments and variances of independent parts combine; a constant part adds nothing."""
    rlhf, base = np.array([0.86, 0.79, 0.83]), np.array([0.58, 0.61, 0.60])
    m3 = [stats.bounded_skewness(x.mean(), x.std(ddof=1), (0, 1)) * x.std(ddof=1) ** 3 for x in (rlhf, base)]
    expected = (m3[0] - m3[1]) / (rlhf.var(ddof=1) + base.var(ddof=1)) ** 1.5
    assert stats.seed_skewness(rlhf, (0, 1), minus=base) == pytest.approx(expected, rel=1e-12) and expected < 0
    constant = stats.seed_skewness(rlhf, (0, 1), minus=[0.6, 0.6, 0.6])  # a constant part adds no moment
    assert constant == pytest.approx(stats.seed_skewness(rlhf, (0, 1)), rel=1e-12)
    assert math.isnan(stats.seed_skewness([0.6, 0.6], (0, 1), minus=[0.5, 0.5]))  # no spread: no skewness


def test_skew_corrected_tost_holds_its_level_near_a_bound():
    """hh-ratio-rlhf's band edge, 0.8, with its seed-to-seed SD, beta-distributed seed values: plain t says
    equivalent 6.2% of the time at nominal 5% (3 seeds); the corrected t holds 5% within Monte-Carlo error."""
    rng = np.random.default_rng(7)
    runs, alpha, u, sd = 20000, 0.05, 0.8, 0.047
    kappa = u * (1 - u) / sd**2 - 1
    seeds = rng.beta(u * kappa, (1 - u) * kappa, size=(runs, 3))
    plain = np.mean([stats.tost_one_sample(v, 0.8, 1.0) < alpha for v in seeds])
    corrected = np.mean([stats.tost_one_sample(v, 0.8, 1.0, stats.seed_skewness(v, (0, 1))) < alpha for v in seeds])
    tolerance = 3 * math.sqrt(alpha * (1 - alpha) / runs)
    assert plain > alpha + tolerance  # the defect the correction removes
    assert corrected <= alpha + tolerance


# ---------------------------------------------------------------------------- two samples


def test_welch_diff_test_equals_scipy_on_shifted_data():
    a, b = [5.1, 4.9, 5.6, 5.8], [4.0, 4.2, 4.8]
    assert stats.welch_diff_test(a, b, 0.0, "greater") == pytest.approx(welch_t(a, b, "greater"))
    shifted = sps.ttest_ind(np.subtract(a, 0.5), b, equal_var=False, alternative="less")
    assert stats.welch_diff_test(a, b, 0.5, "less") == pytest.approx((shifted.statistic, shifted.pvalue))


def test_welch_diff_interval_matches_hand_formula():
    a, b = [5.1, 4.9, 5.6, 5.8], [4.0, 4.2, 4.8]
    va, vb = np.var(a, ddof=1) / 4, np.var(b, ddof=1) / 3
    df = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 2)
    half = sps.t.ppf(0.975, df) * math.sqrt(va + vb)
    diff = np.mean(a) - np.mean(b)
    assert stats.welch_diff_interval(a, b) == pytest.approx((diff, diff - half, diff + half))


def test_two_sample_edge_cases():
    diff, low, high = stats.welch_diff_interval([1.0, 1.0], [0.5, 0.5])  # both constant: no spread, no interval
    assert diff == 0.5 and math.isnan(low) and math.isnan(high)
    diff, low, high = stats.welch_diff_interval([1.0], [0.5, 0.7])  # one seed
    assert diff == pytest.approx(0.4) and math.isnan(low) and math.isnan(high)
    assert all(math.isnan(x) for x in stats.welch_diff_test([1.0, 1.0], [0.5, 0.5], 0.0, "greater"))
    assert stats.tost_two_sample([1.0, 1.0], [0.95, 0.95], -0.1, 0.1) == 0.0
    assert stats.tost_two_sample([1.0, 1.0], [0.5, 0.5], -0.1, 0.1) == 1.0
    assert math.isnan(stats.tost_two_sample([1.0], [0.5, 0.6], -0.1, 0.1))
    with pytest.raises(ValueError, match="welch_diff_interval: b contains NaN"):
        stats.welch_diff_interval([1.0, 2.0], [float("nan"), 1.0])


def test_tost_two_sample_is_two_one_sided_welch_tests():
    a, b = [0.61, 0.63, 0.60, 0.62], [0.60, 0.61, 0.63]
    expected = max(
        sps.ttest_ind(np.add(a, 0.05), b, equal_var=False, alternative="greater").pvalue,
        sps.ttest_ind(np.subtract(a, 0.05), b, equal_var=False, alternative="less").pvalue,
    )
    assert stats.tost_two_sample(a, b, -0.05, 0.05) == pytest.approx(expected)
    assert stats.tost_two_sample(a, b, -0.05, 0.05) < 0.05


def test_ks_statistic_is_the_largest_ecdf_gap():
    a = [3.0, 5.0, 5.0, 8.0, 9.0, 12.0]
    b = [1.0, 2.0, 2.0, 3.0, 4.0, 6.0, 7.0]
    grid = np.union1d(a, b)
    gap = max(
        abs(np.searchsorted(np.sort(a), x, "right") / 6 - np.searchsorted(np.sort(b), x, "right") / 7) for x in grid
    )
    d, p = stats.ks_two_sample(a, b)
    assert d == pytest.approx(gap)
    assert p == pytest.approx(sps.ks_2samp(a, b).pvalue)
    assert stats.ks_two_sample([2.0] * 5, [2.0] * 5) == (0.0, 1.0)  # all equal: no difference
    with pytest.raises(ValueError, match="ks_two_sample: a contains NaN"):
        stats.ks_two_sample([float("nan")], [1.0])


def test_cohens_d_hand_example_and_statsmodels():
    a, b = [2.0, 4.0, 6.0], [1.0, 2.0, 3.0]
    # pooled SD: sqrt((2*4 + 2*1) / 4) = sqrt(2.5); d = (4 - 2) / sqrt(2.5)
    assert stats.cohens_d(a, b) == pytest.approx(2 / math.sqrt(2.5))
    from statsmodels.stats.meta_analysis import effectsize_smd

    hedges_g, _ = effectsize_smd(4.0, 2.0, 3, 2.0, 1.0, 3)
    assert stats.cohens_d(a, b) * (1 - 3 / (4 * 6 - 9)) == pytest.approx(hedges_g)


def test_cohens_d_edge_cases():
    assert math.isnan(stats.cohens_d([1.0, 1.0], [1.0, 1.0]))  # all equal: no scale
    assert math.isnan(stats.cohens_d([1.0], [2.0]))  # one value each
    assert stats.cohens_d([1.0], [2.0, 4.0]) == pytest.approx((1 - 3) / math.sqrt(2.0))
    with pytest.raises(ValueError, match="cohens_d: a contains NaN"):
        stats.cohens_d([float("nan"), 1.0], [1.0, 2.0])


def test_cliffs_delta_counts_pairs():
    a = [3.0, 4.0, 5.0, 6.0, 7.0, 7.5]
    b = [1.0, 2.0, 3.0, 4.0, 5.0]
    by_hand = (sum(x > y for x in a for y in b) - sum(x < y for x in a for y in b)) / (len(a) * len(b))
    assert stats.cliffs_delta(a, b) == pytest.approx(by_hand)
    assert stats.cliffs_delta([1.0, 1.0], [1.0, 1.0]) == 0.0
    assert stats.cliffs_delta([5.0, 6.0], [1.0, 2.0]) == 1.0
    assert math.isnan(stats.cliffs_delta([], [1.0]))


# ------------------------------------------------------------------------------------ IQM


def test_iqm_is_the_mean_of_the_middle_half():
    assert power.iqm([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    values = [9.0, 0.1, 0.5, 0.4, 0.45, 0.6, 0.55, 0.2]
    assert power.iqm(values) == pytest.approx(np.mean(np.sort(values)[2:6]))


def rliable_stratified_bootstrap(scores: np.ndarray, reps: int, rng) -> tuple[float, float]:
    """rliable's StratifiedBootstrap written out: resample runs within each task, IQM of all, percentiles."""
    runs, tasks = scores.shape
    resampled = np.concatenate([scores[rng.integers(0, runs, (reps, runs)), j] for j in range(tasks)], axis=1)
    draws = sps.trim_mean(resampled, 0.25, axis=1)
    return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def test_iqm_stratified_bootstrap_agrees_with_rliable_algorithm():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(10, 4)) + np.arange(4)  # 10 runs x 4 tasks with different levels
    point, low, high = power.iqm_stratified_bootstrap(scores, n_resamples=20_000, seed=1)
    ref_low, ref_high = rliable_stratified_bootstrap(scores, 20_000, np.random.default_rng(2))
    assert point == pytest.approx(sps.trim_mean(scores.ravel(), 0.25))
    # Two independent Monte-Carlo estimates of the same percentiles.
    assert (low, high) == pytest.approx((ref_low, ref_high), abs=0.02)
    assert low < point < high


def test_iqm_bootstrap_is_seeded_and_edge_cases():
    values = [0.53, 0.72, 0.67]
    assert power.iqm_stratified_bootstrap(values, seed=0) == power.iqm_stratified_bootstrap(values, seed=0)
    point, low, high = power.iqm_stratified_bootstrap([0.7])  # one seed: no spread to resample
    assert point == 0.7 and math.isnan(low) and math.isnan(high)
    assert power.iqm_stratified_bootstrap([0.25, 0.25, 0.25]) == (0.25, 0.25, 0.25)
    assert all(math.isnan(x) for x in power.iqm_stratified_bootstrap([]))
    with pytest.raises(ValueError, match="iqm_stratified_bootstrap: scores contains NaN"):
        power.iqm_stratified_bootstrap([0.1, float("nan"), 0.3])


def test_probability_of_improvement_is_rliables():
    """rliable.metrics.probability_of_improvement on one task: Mann-Whitney U of X over Y divided by the pairs,
    and its StratifiedIndependentBootstrap (X's and Y's runs resampled apart, percentile) written out."""
    rng = np.random.default_rng(5)
    x, y = rng.normal(0.6, 0.1, 7), rng.normal(0.5, 0.1, 5)
    x[0] = y[0]  # a tie counts a half
    point, low, high = power.probability_of_improvement(x, y, n_resamples=20_000, seed=1)
    u = sps.mannwhitneyu(x, y, alternative="greater").statistic
    assert point == pytest.approx(u / (7 * 5), abs=1e-15)
    draw = np.random.default_rng(2)
    xs, ys = x[draw.integers(0, 7, (20_000, 7))], y[draw.integers(0, 5, (20_000, 5))]
    draws = ((xs[:, :, None] > ys[:, None, :]) + 0.5 * (xs[:, :, None] == ys[:, None, :])).mean(axis=(1, 2))
    assert (low, high) == pytest.approx(tuple(np.percentile(draws, [2.5, 97.5])), abs=0.02)
    assert low < point < high
    # Swapping the sides gives the complement; a decrease objective passes negated values.
    assert power.probability_of_improvement(y, x, n_resamples=10)[0] == pytest.approx(1 - point)
    assert power.probability_of_improvement(-x, -y, n_resamples=10)[0] == pytest.approx(1 - point)


def test_probability_of_improvement_edge_cases():
    assert power.probability_of_improvement([0.3, 0.3], [0.3, 0.3]) == (0.5, 0.5, 0.5)
    point, low, high = power.probability_of_improvement([0.9], [0.1, 0.2])  # one run: nothing to resample
    assert point == 1.0 and math.isnan(low) and math.isnan(high)
    assert power.probability_of_improvement([0.5, 0.6], [0.1, 0.2], seed=3) == power.probability_of_improvement(
        [0.5, 0.6], [0.1, 0.2], seed=3
    )
    with pytest.raises(ValueError, match="probability_of_improvement: y contains inf"):
        power.probability_of_improvement([0.1, 0.2], [math.inf, 0.3])


# ------------------------------------------------------------------------- Holm and power


def test_holm_matches_hand_computation_and_keeps_nan():
    # Holm (1979): sorted p times (m - rank + 1), running maximum, capped at 1. m = 4 (the NaN is not tested).
    adjusted = power.holm([0.01, 0.04, float("nan"), 0.03, 0.005])
    assert adjusted[:2] == pytest.approx([0.03, 0.06])
    assert math.isnan(adjusted[2])
    assert adjusted[3:] == pytest.approx([0.06, 0.02])
    assert power.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert all(math.isnan(p) for p in power.holm([float("nan")]))


def test_holm_equals_statsmodels_multipletests():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(3)
    for size in (1, 2, 7, 18):
        p = rng.uniform(0, 0.2, size)
        p[rng.integers(size)] = p[0]  # a tie
        assert power.holm(p) == pytest.approx(multipletests(p, method="holm")[1], rel=1e-12)


def test_n_to_decide_has_the_stated_power_and_says_never_when_nothing_would():
    from statsmodels.stats.power import TTestPower

    values = [0.594, 0.611, 0.514, 0.676, 0.588]  # imdb-cpu's judge-negative ratios against the threshold 0.5
    n = power.n_to_decide_one_sample(values, 0.5, math.inf, alpha=0.01)
    d = (np.mean(values) - 0.5) / np.std(values, ddof=1)
    assert (
        TTestPower().power(d, n, 0.01, alternative="larger")
        >= 0.8
        > TTestPower().power(d, n - 1, 0.01, alternative="larger")
    )
    assert math.isinf(power.n_to_decide_one_sample([0.5, 0.49, 0.51], 0.5, math.inf))  # on the edge: never
    assert math.isinf(power.n_to_decide_two_sample([1.0, 1.1, 0.9], [1.0, 0.9, 1.1], 1e-9, "greater"))
    assert math.isnan(power.n_to_decide_one_sample([0.5, 0.5], 0.0, 1.0))  # no spread


def test_mde_one_sample_has_the_stated_power():
    """Plug the detectable d back into the noncentral t distribution: the power is 0.8."""
    for n, alternative in ((3, "greater"), (5, "two-sided"), (10, "less")):
        shift, d = power.mde_one_sample(n, 0.1, alternative=alternative)
        assert shift == pytest.approx(d * 0.1) and d > 0
        nc = d * math.sqrt(n)
        if alternative == "two-sided":
            crit = sps.t.ppf(0.975, n - 1)
            achieved = sps.nct.sf(crit, n - 1, nc) + sps.nct.cdf(-crit, n - 1, nc)
        else:
            achieved = sps.nct.sf(sps.t.ppf(0.95, n - 1), n - 1, nc)
        assert achieved == pytest.approx(0.8, abs=1e-4)


def test_mde_two_sample_has_the_stated_power():
    shift, d = power.mde_two_sample(3, 3, 0.05, alternative="greater")
    nc, df = d * math.sqrt(3 / 2), 4
    assert sps.nct.sf(sps.t.ppf(0.95, df), df, nc) == pytest.approx(0.8, abs=1e-4)
    assert shift == pytest.approx(d * 0.05)
    assert d > 2  # three seeds per policy: only effects of more than two SDs are detectable


def test_mde_proportion_has_the_stated_power():
    drop, h = power.mde_proportion(400, 0.973)
    p1 = 0.973 - drop
    assert 2 * math.asin(math.sqrt(0.973)) - 2 * math.asin(math.sqrt(p1)) == pytest.approx(h)
    z = sps.norm.ppf(0.975)
    assert sps.norm.cdf(h * math.sqrt(400) - z) + sps.norm.cdf(-h * math.sqrt(400) - z) == pytest.approx(0.8, abs=1e-4)


def test_mde_edge_cases():
    assert all(math.isnan(x) for x in power.mde_one_sample(1, 0.1))  # one seed: no test
    shift, d = power.mde_one_sample(3, 0.0)  # all equal: no scale for the effect
    assert math.isnan(shift) and d > 0
    assert all(math.isnan(x) for x in power.mde_two_sample(1, 3, 0.1))
    assert all(math.isnan(x) for x in power.mde_proportion(0, 0.9))


def test_what_an_interval_on_ten_samples_is():
    """The hh-positive figures come from ten samples: 6/10 bounds the ratio only to about 0.31-0.83."""
    low, high = wilson_interval(6, 10)
    assert (low, high) == pytest.approx(wilson_closed_form(6, 10), abs=1e-9)
    assert (round(low, 2), round(high, 2)) == (0.31, 0.83)
    assert power.mde_proportion(10, 0.6)[0] > 0.35  # a drop from 0.6 to below 0.25 is all ten samples can see
