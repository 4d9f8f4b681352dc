"""The verdict engine tested like a statistical method: simulated runs whose truth is known.

For every measured claim of config/claims.yaml, seed values are drawn around a chosen truth, and the project's
own code (claims.assess_claim, then claims.give_verdicts: Holm across the family and the verdict rules) decides.
Four truths per claim:

  inside       the claim clearly holds: the documented value itself (equivalence), the threshold plus the
               observed rise, twice the smallest effect (direction), no change (non-inferiority; for a
               relative margin the truths are geometric means, as the rule tests per-seed log ratios)
  edge         exactly on the edge of the support test's null: documented - margin, the threshold, no effect,
               worse by exactly the margin. REPRODUCED here is a false verdict: its rate must be <= alpha
  refute_edge  exactly on the edge of the refute test's null: for direction the smallest effect that counts,
               elsewhere the same as `edge`. NOT REPRODUCED here is a false verdict: its rate must be <= alpha
  outside      the claim clearly fails: documented - 2 margins, the threshold minus the observed rise, a change
               the other way, worse by twice the margin

Every simulated run is a family of all 18 claims at one truth (as a real run, Holm across them). A claim's error
rate is largest when the other claims of its family are decided with tiny p-values (Holm then tests the last one
at alpha itself), so the rates are also given for that worst case ("worst"), from the unadjusted p-values; the
calibration criterion is on the worst case.

Seed-to-seed spread: per (experiment, metric), each policy's mean and SD over seeds, from the smoke profile's
3-seed run and (imdb-negative's judge-negative ratio and lengths) the imdb-cpu 5-seed run of docs/results.md;
accuracies are binomial counts of imdb-cpu's pair numbers (2,000 train, 2,500 test). Seed values are drawn with
exactly the true mean and within the metric's bounds (metrics.BOUNDS): a beta distribution for a metric in
[0, 1] (with the observed SD), a shifted lognormal for one bounded below (lengths, perplexity: the observed
coefficient of variation above the bound, so the spread scales with the level), else a normal.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from rlhf_bench.analysis.claims import assess_claim, decide, give_verdicts
from rlhf_bench.analysis.claims_file import CALIBRATION_RECORD, CALIBRATION_TABLE, Claim, ClaimsFile
from rlhf_bench.analysis.metrics import POLICIES, RM_METRICS, bounds
from rlhf_bench.io import StageError, field, read_json, read_table, sha256_file

POSITIONS = ("inside", "edge", "refute_edge", "outside")
SEED_COUNTS = (3, 5, 10)
PAIRS = {"train": 2000, "test": 2500}  # imdb-cpu's reward-model pairs (docs/results.md)

# (experiment, metric): (base mean, base SD over seeds, RLHF mean, RLHF SD over seeds). imdb-cpu (docs/results.md,
# 5 seeds) where it reports per-seed values, else the smoke profile (3 seeds, results/smoke/summary.csv).
SPREAD = {
    ("imdb-negative", "judge_negative_ratio"): (0.296, 0.018, 0.597, 0.058),  # imdb-cpu
    ("imdb-negative", "length_mean"): (22.2, 0.13, 23.0, 1.07),  # imdb-cpu
    ("imdb-negative", "perplexity"): (2.36, 0.12, 2.55, 0.075),
    ("imdb-negative", "distinct_2"): (0.343, 0.018, 0.319, 0.0094),
    ("instruct-short", "length_mean"): (25.0, 2.04, 1.07, 0.45),
    ("instruct-short", "perplexity"): (2.17, 0.061, 84.2, 68.1),
    ("instruct-short", "distinct_2"): (0.359, 0.022, 0.933, 0.088),
    ("hh-positive", "judge_positive_ratio"): (0.609, 0.016, 0.859, 0.047),
    ("hh-positive", "judge_score_mean"): (0.652, 0.016, 0.805, 0.029),
}
# What "clearly" means where no margin says it: the rise of the threshold claim (imdb-cpu's judge-negative ratio
# went 0.5 -> 0.596 over its threshold) and, for direction, twice the smallest effect that counts.
THRESHOLD_RISE = 0.1
DIRECTION_INSIDE = 2.0


@dataclasses.dataclass
class SimulatedRun:
    """What claims.assess_claim reads from a run (claims.Run's interface), drawn instead of read from files."""

    seeds: list
    values: dict  # (experiment, metric, policy) -> seed values
    counts: dict  # (experiment, split) -> (n_correct, n_pairs)
    profile: str = "simulated"
    comparable: bool = True

    def has(self, experiment: str) -> bool:
        return True

    def seed_values(self, experiment: str, metric: str, policy: str) -> np.ndarray:
        return self.values[experiment, metric, policy]

    def pair_counts(self, experiment: str, split: str) -> tuple[int, int]:
        return self.counts[experiment, split]

    def sample_values(self, experiment: str, metric: str, seed: int):
        return None  # no per-sample values: the per-seed tests beside the verdict are not simulated


def draw(
    metric: str, mean: float, observed_mean: float, observed_sd: float, n: int, rng: np.random.Generator
) -> np.ndarray:
    """n seed values with exactly the given mean, inside the metric's bounds (see the module docstring)."""
    low, high = bounds(metric)
    if math.isfinite(low) and math.isfinite(high):
        u, s = (mean - low) / (high - low), observed_sd / (high - low)
        if not 0.0 < u < 1.0:
            return np.full(n, mean)
        s2 = min(s * s, 0.99 * u * (1 - u))  # a beta's variance is below u (1 - u)
        kappa = u * (1 - u) / s2 - 1
        return low + (high - low) * rng.beta(u * kappa, (1 - u) * kappa, n)
    if math.isfinite(low):
        above = mean - low
        cv = observed_sd / max(observed_mean - low, 1e-12)
        sigma2 = math.log1p(cv * cv)
        return low + rng.lognormal(math.log(above) - sigma2 / 2, math.sqrt(sigma2), n)
    return rng.normal(mean, observed_sd, n)


def _edge_side(centre: float, margin: float, limits: tuple[float, float]) -> float:
    """-1 (the band's lower edge) unless twice the margin below the centre leaves the metric's range."""
    return -1.0 if centre - 2 * margin >= limits[0] else 1.0


def truth(claim: Claim, position: str, experiment: str) -> tuple[float, float] | float:
    """The true (base, RLHF) means of a claim's metric at a position; for an accuracy, the true proportion.
    `experiment`: the claim's own experiment, whose spread (SPREAD) its seeds have."""
    if claim.test == "proportion_equivalence":
        side = _edge_side(claim.documented, claim.margin, (0.0, 1.0))
        offset = {"inside": 0.0, "edge": 1.0, "refute_edge": 1.0, "outside": 2.0}[position]
        return claim.documented + side * offset * claim.margin
    base = SPREAD[experiment, claim.metric][0]
    limits = bounds(claim.metric)
    if claim.test == "value_equivalence":
        side = _edge_side(claim.documented, claim.margin, limits)
        offset = {"inside": 0.0, "edge": 1.0, "refute_edge": 1.0, "outside": 2.0}[position]
        value = claim.documented + side * offset * claim.margin
        return (value, base) if claim.policy == "base" else (base, value)
    if claim.test == "difference_equivalence":
        base = claim.documented_pair[0] if claim.documented_pair else base
        side = _edge_side(claim.documented, claim.margin, bounds(claim.metric, difference=True))
        offset = {"inside": 0.0, "edge": 1.0, "refute_edge": 1.0, "outside": 2.0}[position]
        return (base, base + claim.documented + side * offset * claim.margin)
    if claim.test == "threshold":
        offset = {"inside": THRESHOLD_RISE, "edge": 0.0, "refute_edge": 0.0, "outside": -THRESHOLD_RISE}[position]
        return (base, claim.threshold + offset)
    if claim.test == "direction" and claim.relative:  # geometric means: the rule tests the seeds' log values
        factor = 1 + claim.min_effect if claim.direction == "increase" else 1 - claim.min_effect
        power_of = {"inside": DIRECTION_INSIDE, "edge": 0.0, "refute_edge": 1.0, "outside": -1.0}[position]
        return (base, base * factor**power_of)
    if claim.test == "direction":
        sign = 1.0 if claim.direction == "increase" else -1.0
        smallest = claim.min_effect * abs(base) if claim.relative else claim.min_effect
        effect = {"inside": DIRECTION_INSIDE, "edge": 0.0, "refute_edge": 1.0, "outside": -1.0}[position] * smallest
        return (base, base + sign * effect)
    if claim.test == "non_inferiority":
        worse = 1.0 if claim.worse == "higher" else -1.0
        offset = {"inside": 0.0, "edge": 1.0, "refute_edge": 1.0, "outside": 2.0}[position]
        if claim.relative:  # geometric means: the rule tests the per-seed log ratio
            return (base, base * (1 + worse * claim.margin) ** offset)
        return (base, base + worse * offset * claim.margin)
    raise ValueError(f"truth: no simulation for test kind {claim.test!r}")


def own_experiments(claims: list[Claim]) -> tuple[list[Claim], dict[str, str]]:
    """The claims with each one's id as its experiment, so that two claims on one metric (hh-ratio-base and
    hh-ratio-rlhf) each get the seeds of their own truth; and each id's real experiment (for SPREAD)."""
    return [dataclasses.replace(c, experiment=c.id) for c in claims], {c.id: c.experiment for c in claims}


def simulate_run(
    claims: list[Claim], origin: dict[str, str], position: str, n_seeds: int, rng: np.random.Generator
) -> SimulatedRun:
    """One run of every measured claim (own_experiments) at `position` with `n_seeds` seeds."""
    values, counts = {}, {}
    for claim in claims:
        if claim.test == "not_measured":
            continue
        if claim.test == "proportion_equivalence":
            split = RM_METRICS[claim.metric]
            p = truth(claim, position, origin[claim.id])
            counts[claim.experiment, split] = (int(rng.binomial(PAIRS[split], p)), PAIRS[split])
            continue
        base_mean, base_sd, rlhf_mean, rlhf_sd = SPREAD[origin[claim.id], claim.metric]
        means = dict(zip(POLICIES, truth(claim, position, origin[claim.id]), strict=True))
        observed = {"base": (base_mean, base_sd), "rlhf": (rlhf_mean, rlhf_sd)}
        geometric = claim.test in ("non_inferiority", "direction") and claim.relative
        for policy in POLICIES:
            mean, (observed_mean, observed_sd) = means[policy], observed[policy]
            if geometric:  # lognormal with this geometric mean and the observed coefficient of variation
                sigma = math.sqrt(math.log1p((observed_sd / observed_mean) ** 2))
                drawn = mean * np.exp(rng.normal(0.0, sigma, n_seeds))
            else:
                drawn = draw(claim.metric, mean, observed_mean, observed_sd, n_seeds, rng)
            values[claim.experiment, claim.metric, policy] = drawn
    return SimulatedRun(seeds=list(range(n_seeds)), values=values, counts=counts)


def verdicts(claims: list[Claim], settings: ClaimsFile, run: SimulatedRun) -> list[tuple[str, str, str]]:
    """(claim id, verdict after Holm across the family, worst-case verdict) of every claim, by the project's code."""
    rows = [assess_claim(claim, run, settings) for claim in claims]
    give_verdicts(rows, settings)
    family = [row["verdict"] for row in rows]
    for row in rows:  # the worst case: every other claim of the family decided with a tiny p-value
        row["p_support_holm"], row["p_refute_holm"] = row["p_support"], row["p_refute"]
    worst = [decide(row, settings.alpha, settings.power)[0] for row in rows]
    return list(zip([c.id for c in claims], family, worst, strict=True))


def simulate(
    settings: ClaimsFile,
    runs: int,
    seed_counts: Iterable[int] = SEED_COUNTS,
    positions: Iterable[str] = POSITIONS,
    seed: int = 0,
) -> pd.DataFrame:
    """Every verdict of `runs` simulated runs per (seed count, position): one row per claim and run."""
    claims, origin = own_experiments(settings.claims)  # not_measured claims stay: Holm leaves their NaN out
    fast = dataclasses.replace(settings, bootstrap_resamples=0)  # no IQM intervals: they play no part in verdicts
    rng = np.random.default_rng(seed)
    rows = []
    for n_seeds in seed_counts:
        for position in positions:
            for index in range(runs):
                run = simulate_run(claims, origin, position, n_seeds, rng)
                for claim_id, family, worst in verdicts(claims, fast, run):
                    rows.append((n_seeds, position, index, claim_id, family, worst))
    frame = pd.DataFrame(rows, columns=["n_seeds", "position", "run", "claim_id", "verdict", "worst_case_verdict"])
    frame.insert(3, "test", frame.claim_id.map({c.id: c.test for c in claims}))
    return frame[frame.test != "not_measured"].reset_index(drop=True)


def mc_tolerance(rate: float, n: int, z: float = 3.0) -> float:
    """z Monte-Carlo standard errors of an estimated rate near `rate` from n runs."""
    return z * math.sqrt(max(rate * (1 - rate), 1e-12) / max(n, 1))


def rates(frame: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Per test kind and seed count: the false-verdict rates (family and worst case), power and refute power."""

    def share(rows: pd.DataFrame, column: str, verdict: str) -> float:
        return float((rows[column] == verdict).mean()) if len(rows) else math.nan

    out = []
    for (kind, n_seeds), rows in frame.groupby(["test", "n_seeds"], sort=False):
        at = {p: rows[rows.position == p] for p in POSITIONS}
        record = {"test": kind, "n_seeds": n_seeds, "runs": int(at["edge"].run.nunique()) if len(at["edge"]) else 0}
        for column, suffix in (("worst_case_verdict", "worst"), ("verdict", "family")):
            record[f"false_reproduced_at_edge_{suffix}"] = share(at["edge"], column, "REPRODUCED")
            record[f"false_not_reproduced_at_refute_edge_{suffix}"] = share(at["refute_edge"], column, "NOT REPRODUCED")
            record[f"false_not_reproduced_inside_{suffix}"] = share(at["inside"], column, "NOT REPRODUCED")
        record["power_inside_family"] = share(at["inside"], "verdict", "REPRODUCED")
        record["power_inside_worst"] = share(at["inside"], "worst_case_verdict", "REPRODUCED")
        record["refuted_outside_family"] = share(at["outside"], "verdict", "NOT REPRODUCED")
        n_edge = len(at["edge"])
        record["tolerance"] = mc_tolerance(alpha, n_edge)
        worst_false = max(
            record["false_reproduced_at_edge_worst"],
            record["false_not_reproduced_at_refute_edge_worst"],
            record["false_not_reproduced_inside_worst"],
        )
        record["calibrated"] = bool(worst_false <= alpha + record["tolerance"])
        out.append(record)
    return pd.DataFrame(out)


RATE_COLUMNS = (
    "test", "n_seeds", "runs", "false_reproduced_at_edge_worst", "false_not_reproduced_at_refute_edge_worst",
    "false_not_reproduced_inside_worst", "power_inside_family", "tolerance", "calibrated",
)  # fmt: skip


def load_calibration(record: str | Path = CALIBRATION_RECORD) -> tuple[dict, pd.DataFrame]:
    """The committed calibration: (its record, the rates), the table checked against the sha256 the benchmark
    recorded, so a hand-edited rate is refused rather than quoted."""
    record = Path(record)
    if not record.is_file():
        raise StageError(
            f"{record}: missing. Fix: run `python benchmarks/verdict_calibration.py` (it writes the rates and this "
            "record)."
        )
    meta = read_json(record)
    table = record.parent / CALIBRATION_TABLE
    recorded = field(field(meta, "outputs", record), CALIBRATION_TABLE, f"{record} outputs")
    if not table.is_file() or sha256_file(table) != recorded:
        raise StageError(
            f"{table}: {'missing' if not table.is_file() else 'its sha256 is not the one'} {record} records. "
            "Fix: rerun `python benchmarks/verdict_calibration.py` (or restore both files from git)."
        )
    return meta, read_table(table, RATE_COLUMNS)
