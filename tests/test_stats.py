"""rlhf_bench.stats against independent computations: closed forms, hand counts and fixed numbers."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from rlhf_bench.stats import mann_whitney_one_sided, t_interval, welch_t, wilson_interval

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


def test_t_interval_all_equal_is_a_point():
    assert t_interval([0.25, 0.25, 0.25]) == (0.25, 0.25, 0.25)


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


def test_welch_t_edge_cases():
    assert all(math.isnan(x) for x in welch_t([1.0], [1.0, 2.0], "greater"))
    assert all(math.isnan(x) for x in welch_t([1.0, 1.0], [0.0, 0.0], "greater"))  # no variance at all
    t, p = welch_t([1.0, 1.0, 1.0], [0.0, 0.5, 0.2], "greater")  # one group constant is fine
    assert t > 0 and p < 0.05
    with pytest.raises(ValueError, match="welch_t: a contains NaN"):
        welch_t([float("nan"), 1.0], [1.0, 2.0], "greater")
