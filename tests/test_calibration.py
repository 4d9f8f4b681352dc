"""The verdict engine's error rates on simulated runs with known truth (a reduced benchmarks/verdict_calibration.py).

Each simulated run draws every measured claim of config/claims.yaml at one truth and decides it with the project's
own verdict code; the false-verdict rates must stay at or below alpha within Monte-Carlo error."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlhf_bench.analysis import calibration
from rlhf_bench.analysis.claims_file import load_claims
from rlhf_bench.io import StageError

RUNS = 40  # per (seed count, truth): 320 simulated runs of 16 measured claims, about 15 s


@pytest.fixture(scope="module")
def simulated():
    settings = load_claims()
    frame = calibration.simulate(settings, RUNS, seed_counts=(3, 10), seed=1)
    return settings, frame


def test_false_verdicts_are_at_most_alpha(simulated):
    settings, frame = simulated
    alpha = settings.alpha
    pooled = {
        "REPRODUCED": frame[frame.position == "edge"],
        "NOT REPRODUCED": frame[frame.position.isin(["refute_edge", "inside"])],
    }
    for verdict, rows in pooled.items():
        rate = float((rows.worst_case_verdict == verdict).mean())
        assert rate <= alpha + calibration.mc_tolerance(alpha, len(rows)), (verdict, rate, len(rows))
    table = calibration.rates(frame, alpha)
    assert set(table.test) == {c.test for c in settings.claims} - {"not_measured"}
    assert table.calibrated.all(), table[~table.calibrated].to_string()


def test_the_rules_have_power_where_the_truth_is_clear(simulated):
    settings, frame = simulated
    table = calibration.rates(frame, settings.alpha).set_index(["test", "n_seeds"])
    # Ten seeds decide equivalence and accuracy claims whose truth is the documented value.
    for kind in ("proportion_equivalence", "value_equivalence", "threshold"):
        assert table.loc[(kind, 10), "power_inside_worst"] > 0.8, kind
    # And the refute tests find truths twice the margin away.
    assert table.loc[("value_equivalence", 10), "refuted_outside_family"] > 0.8


def test_simulated_seeds_have_the_true_mean_within_the_bounds():
    rng = np.random.default_rng(0)
    ratio = calibration.draw("judge_positive_ratio", 0.9, 0.86, 0.047, 100_000, rng)
    assert ratio.min() >= 0 and ratio.max() <= 1 and ratio.mean() == pytest.approx(0.9, abs=1e-3)
    assert ratio.std() == pytest.approx(0.047, rel=0.02)
    perplexity = calibration.draw("perplexity", 2.17, 84.2, 68.1, 100_000, rng)
    assert perplexity.min() >= 1 and perplexity.mean() == pytest.approx(2.17, rel=0.01)
    assert math.isclose(calibration.mc_tolerance(0.05, 100), 3 * math.sqrt(0.05 * 0.95 / 100))


def test_the_committed_calibration_is_verified_before_it_is_quoted(tmp_path):
    """The report quotes benchmarks/out/verdict_calibration.csv only as its record's sha256 says it was written."""
    meta, rates = calibration.load_calibration()
    assert meta["runs"] >= 1000 and set(rates.n_seeds) == set(calibration.SEED_COUNTS)
    assert set(rates.test) == {c.test for c in load_claims().claims} - {"not_measured"}
    for name in (calibration.CALIBRATION_TABLE, calibration.CALIBRATION_RECORD.name):
        (tmp_path / name).write_bytes((calibration.CALIBRATION_RECORD.parent / name).read_bytes())
    table = tmp_path / calibration.CALIBRATION_TABLE
    table.write_text(table.read_text().replace("0.0", "0.1", 1))  # one rate edited by hand
    with pytest.raises(StageError, match=r"verdict_calibration.csv: its sha256 is not the one .* records.*Fix: rerun"):
        calibration.load_calibration(tmp_path / calibration.CALIBRATION_RECORD.name)
    table.unlink()
    with pytest.raises(StageError, match=r"verdict_calibration.csv: missing"):
        calibration.load_calibration(tmp_path / calibration.CALIBRATION_RECORD.name)
