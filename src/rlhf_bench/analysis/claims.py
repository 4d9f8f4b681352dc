"""Claims stage: every documented claim (config/claims.yaml) tested on a finished run, one verdict each.

Reads the resolved config, the reward models' pair counts and every seed's metrics.json and samples.parquet
(the same inputs as aggregate), and writes results/<profile>/claims.csv: one row per claim with the numbers
behind it (every seed's value, mean with a t interval, IQM with a stratified bootstrap interval, effect sizes,
the support and refute p-values before and after Holm, the minimal detectable effect, the interval that the
documented figure itself carries) and a verdict with a one-line reason:

  REPRODUCED      the support test rejects at alpha after Holm across all claims of the run
  NOT REPRODUCED  the refute test rejects at alpha after Holm (checked first)
  INCONCLUSIVE    neither: the intervals are too wide to decide, one seed only, or not measured
  NOT COMPARABLE  the profile is not the documented setting (comparable_to_documented: false); the reason
                  still says what the numbers would have given

The test kinds and their hypotheses are described at the top of config/claims.yaml.

    python -m rlhf_bench.analysis.claims --config results/smoke/config.json --results-dir results/smoke \
        --claims config/claims.yaml --out results/smoke/claims.csv
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from rlhf_bench.analysis import power, proportions, stats
from rlhf_bench.analysis.aggregate import (
    evaluate_file,
    load_samples,
    load_seed_metrics,
    pair_counts,
    per_sample_values,
    rm_metrics_file,
)
from rlhf_bench.analysis.claims_file import DEFAULT_CLAIMS, Claim, ClaimsFile, load_claims
from rlhf_bench.analysis.metrics import (
    CONFIDENCE,
    LENGTH_METRICS,
    NOT_DETECTABLE,
    POLICIES,
    RM_METRICS,
    bounds,
    bounds_note,
    fmt,
    fmt_p,
)
from rlhf_bench.io import StageError, atomic_write_text, input_file, read_json, verified
from rlhf_bench.runtime import Stage

# ---------------------------------------------------------------------------------------- the run


class Run:
    """What a finished run holds for the claims: per-seed metrics, pair counts and per-sample tables."""

    def __init__(self, config: dict, results_dir: Path):
        self.config = config
        self.results_dir = results_dir
        self.seeds = list(self.config["seeds"])
        self.metrics = load_seed_metrics(self.config, results_dir)
        self._samples = {}
        self._values = {}

    @property
    def profile(self) -> str:
        return str(self.config.get("profile", "?"))

    @property
    def comparable(self) -> bool:
        return bool(self.config.get("comparable_to_documented", False))

    def has(self, experiment: str) -> bool:
        return experiment in self.config["experiments"]

    def seed_values(self, experiment: str, metric: str, policy: str) -> np.ndarray:
        """The metric of one policy in every seed, in seed order; NaN where metrics.json has null."""
        key = (experiment, metric, policy)
        if key not in self._values:
            self._values[key] = self._seed_values(*key)
        return self._values[key].copy()

    def _seed_values(self, experiment: str, metric: str, policy: str) -> np.ndarray:
        rows = self.metrics[
            (self.metrics.experiment == experiment) & (self.metrics.metric == metric) & (self.metrics.policy == policy)
        ].set_index("seed")["value"]
        return np.array([rows.get(seed, math.nan) for seed in self.seeds], dtype=float)

    def pair_counts(self, experiment: str, split: str) -> tuple[int, int]:
        path = rm_metrics_file(self.results_dir, experiment)
        return pair_counts(read_json(verified(path)), split, path)

    def samples(self, experiment: str, seed: int) -> pd.DataFrame:
        if (experiment, seed) not in self._samples:
            self._samples[experiment, seed] = load_samples(self.results_dir, experiment, seed)
        return self._samples[experiment, seed]

    def sample_values(self, experiment: str, metric: str, seed: int) -> dict[str, np.ndarray] | None:
        """Per-sample values behind a metric for one seed, by policy; None for corpus-level metrics."""
        frame = self.samples(experiment, seed)
        values = per_sample_values(frame, metric)
        if values is None:
            return None
        if values.isna().any():
            path = evaluate_file(self.results_dir, experiment, seed, "samples.parquet")
            raise StageError(f"{path}: per-sample values for '{metric}' contain NaN")
        return {p: values[frame.policy == p].to_numpy(dtype=float) for p in POLICIES}


# ----------------------------------------------------------------------------------- one claim


COLUMNS = [
    "claim_id", "experiment", "metric", "test", "policy", "required", "verdict", "reason", "statistical_verdict",
    "documented", "bound_low", "bound_high", "n_seeds", "n_samples", "seed_values", "estimate", "ci_low",
    "ci_high", "ci_method", "iqm", "iqm_ci_low", "iqm_ci_high", "p_support", "p_support_holm", "p_refute",
    "p_refute_holm", "p_vs_documented", "cohens_d", "cliffs_delta", "per_seed_test", "per_seed_p_max",
    "ks_statistic_max", "ks_p_max", "mde", "mde_effect_size", "n_to_decide", "verdict_stability", "documented_n",
    "documented_ci_low", "documented_ci_high", "documented_p", "documented_note", "definition", "quote", "seed_file",
]  # fmt: skip


# A claim's row holds, under this key until the verdicts, how to compute n_to_decide at a given alpha (a
# functools.partial of one of power.n_to_decide_*); claims.csv does not show it.
DECIDER = "_n_to_decide"


def _sd(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if values.size >= 2 else math.nan


def _pooled_sd(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 2 or b.size < 2:
        return math.nan
    return math.sqrt(((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2))


def _base_row(claim: Claim) -> dict:
    row = dict.fromkeys(COLUMNS, math.nan)
    row.update(
        claim_id=claim.id, experiment=claim.experiment, metric=claim.metric, test=claim.test,
        policy=claim.policy if claim.test in ("value_equivalence", "threshold") else "rlhf-base",
        required=claim.required, documented=claim.documented if claim.documented is not None else math.nan,
        documented_n=claim.documented_n if claim.documented_n is not None else math.nan,
        definition=" ".join(claim.definition.split()), quote=claim.quote, seed_file=claim.seed_file,
        seed_values="", per_seed_test="", ci_method="", documented_note="", reason="",
    )  # fmt: skip
    if claim.test in ("proportion_equivalence", "value_equivalence", "difference_equivalence"):
        row["bound_low"], row["bound_high"] = claim.documented - claim.margin, claim.documented + claim.margin
    elif claim.test == "threshold":
        row["bound_low"] = claim.threshold
    return row


def _seed_summary(row: dict, values: np.ndarray, resamples: int, limits: tuple[float, float]) -> None:
    """Every seed's value, the mean with its t interval (clipped to `limits`, the range the values can take) and
    the IQM with its stratified bootstrap interval."""
    row["n_seeds"] = int(values.size)
    row["seed_values"] = ";".join(f"{v:.6g}" for v in values)
    row["estimate"], row["ci_low"], row["ci_high"] = stats.t_interval(values, CONFIDENCE, limits)
    row["ci_method"] = "t 95% over seeds" + bounds_note(limits)
    if not resamples:  # a rerun of verdict_stability or the calibration: the IQM plays no part in a verdict
        row["iqm"] = power.iqm(values)
        return
    row["iqm"], row["iqm_ci_low"], row["iqm_ci_high"] = power.iqm_stratified_bootstrap(
        values, CONFIDENCE, n_resamples=resamples, seed=0
    )


def _per_sample_sd(run: Run, claim: Claim, policy: str) -> float:
    """SD of the per-sample values of one policy, all seeds pooled (for what an n-sample interval would be)."""
    parts = [run.sample_values(claim.experiment, claim.metric, s) for s in run.seeds]
    if any(p is None for p in parts):
        return math.nan
    return _sd(np.concatenate([p[policy] for p in parts]))


def _documented_interval(row: dict, claim: Claim, run: Run) -> None:
    """The interval the documented figure itself carries, given the n it comes from."""
    n = claim.documented_n
    if n is None or claim.documented is None:
        return
    t_crit = float(sps.t.ppf(0.975, df=max(n - 1, 1)))
    if claim.metric.endswith("_ratio") or claim.test == "proportion_equivalence":
        if claim.test == "difference_equivalence":
            base, rlhf = (round(v * n) for v in claim.documented_pair)
            _, row["documented_ci_low"], row["documented_ci_high"] = proportions.diff_proportions_interval(
                rlhf, n, base, n
            )
            row["documented_p"] = proportions.fisher_exact(rlhf, n, base, n, "greater")
            row["documented_note"] = (
                f"documented {rlhf}/{n} vs {base}/{n}: Newcomb 95% interval of the rise, Fisher exact one-sided p"
            )
        else:
            k = round(claim.documented * n)
            row["documented_ci_low"], row["documented_ci_high"] = stats.wilson_interval(k, n, CONFIDENCE)
            row["documented_note"] = f"documented {k}/{n}: Wilson 95% interval"
        return
    # A mean score: the write-up gives no SD, so borrow the per-sample SD of this run (stated in the note).
    if claim.test == "difference_equivalence":
        sd_b, sd_r = _per_sample_sd(run, claim, "base"), _per_sample_sd(run, claim, "rlhf")
        half = float(sps.t.ppf(0.975, df=2 * n - 2)) * math.sqrt((sd_b**2 + sd_r**2) / n)
        note = f"95% t interval of a difference of two means of {n} samples, with this run's per-sample SDs"
    else:
        sd = _per_sample_sd(run, claim, claim.policy)
        half = t_crit * sd / math.sqrt(n)
        note = f"95% t interval of a mean of {n} samples, with this run's per-sample SD ({fmt(sd)})"
    row["documented_ci_low"], row["documented_ci_high"] = claim.documented - half, claim.documented + half
    row["documented_note"] = note


def _scale(claim: Claim, base: np.ndarray, amount: float) -> float:
    """A margin or minimal effect in metric units: as given, or a fraction of the base mean over seeds."""
    return amount * abs(float(np.mean(base))) if claim.relative else amount


def _bounded_mde(row: dict, start: float, alternative: str, limits: tuple[float, float]) -> None:
    """An mde that no value within the metric's bounds can reach becomes inf: not detectable with these seeds."""
    if not power.detectable(start, row["mde"], alternative, limits):
        row["mde"] = math.inf


def _equivalence_over_seeds(
    row: dict, values: np.ndarray, documented: float, alpha: float, pw: float, limits: tuple[float, float], skewness
) -> None:
    """TOST of the seeds' values (a policy's, or RLHF minus base) inside the row's band, and its refutation;
    skewness: stats.seed_skewness of a metric bounded on both sides (None: plain t)."""
    low, high = row["bound_low"], row["bound_high"]
    row["p_support"] = stats.tost_one_sample(values, low, high, skewness)
    row[DECIDER] = functools.partial(power.n_to_decide_one_sample, values, low, high, power_=pw)
    row["p_refute"] = stats.one_sample_outside(values, low, high, skewness)
    row["p_vs_documented"] = stats.one_sample_t(values, documented, "two-sided")[1]
    row["mde"], row["mde_effect_size"] = power.mde_one_sample(len(values), _sd(values), alpha, pw, "two-sided")
    _bounded_mde(row, documented, "two-sided", limits)


def assess_claim(claim: Claim, run: Run, settings: ClaimsFile) -> dict:
    """The numbers of one claim before Holm: estimate, intervals, support and refute p-values, mde."""
    row = _base_row(claim)
    alpha, pw = settings.alpha, settings.power
    if claim.test == "not_measured":
        row["reason"] = "not measured: " + row["definition"]
        return row
    if not run.has(claim.experiment):
        row["reason"] = f"not run: profile '{run.profile}' has no experiment '{claim.experiment}'"
        return row

    if claim.test == "proportion_equivalence":
        k, n = run.pair_counts(claim.experiment, RM_METRICS[claim.metric])
        low, high = row["bound_low"], row["bound_high"]
        row.update(n_samples=n, estimate=k / n if n else math.nan, ci_method="Wilson 95% over pairs")
        row["ci_low"], row["ci_high"] = stats.wilson_interval(k, n, CONFIDENCE)
        row["p_support"] = proportions.binomial_tost(k, n, low, high)
        row[DECIDER] = functools.partial(power.n_to_decide_proportion, k, n, low, high, power_=pw)
        row["p_refute"] = proportions.binomial_outside(k, n, low, high)
        row["p_vs_documented"] = proportions.binomial_test(k, n, claim.documented)
        row["mde"], row["mde_effect_size"] = power.mde_proportion(n, claim.documented, alpha, pw)
        row["reason"] = f"accuracy {fmt(row['estimate'])} [{fmt(row['ci_low'])}, {fmt(row['ci_high'])}] ({k}/{n} pairs)"
        _documented_interval(row, claim, run)
        return row

    base = run.seed_values(claim.experiment, claim.metric, "base")
    rlhf = run.seed_values(claim.experiment, claim.metric, "rlhf")
    if np.isnan(base).all() and np.isnan(rlhf).all():
        row["reason"] = f"not measured in this profile: '{claim.metric}' is null in every seed (no judge?)"
        return row
    missing = _missing_seeds(claim, run, {"base": base, "rlhf": rlhf})
    if missing:
        row["reason"] = missing
        return row
    n = len(run.seeds)

    if claim.test in ("value_equivalence", "threshold"):
        values = rlhf if claim.policy == "rlhf" else base
        limits = bounds(claim.metric)
        _seed_summary(row, values, settings.bootstrap_resamples, limits)
        if claim.test == "value_equivalence":
            skewness = stats.seed_skewness(values, limits) if np.isfinite(limits).all() else None
            _equivalence_over_seeds(row, values, claim.documented, alpha, pw, limits, skewness)
        else:
            row["p_support"] = stats.one_sample_t(values, claim.threshold, "greater")[1]
            row[DECIDER] = functools.partial(power.n_to_decide_one_sample, values, claim.threshold, math.inf, power_=pw)
            row["p_refute"] = stats.one_sample_t(values, claim.threshold, "less")[1]
            row["mde"], row["mde_effect_size"] = power.mde_one_sample(n, _sd(values), alpha, pw, "greater")
            _bounded_mde(row, claim.threshold, "greater", limits)
        row["reason"] = (
            f"{claim.policy} {claim.metric} {fmt(row['estimate'])} [{fmt(row['ci_low'])}, {fmt(row['ci_high'])}]"
        )
        _documented_interval(row, claim, run)
        return row

    if claim.test == "non_inferiority" and claim.relative:
        _relative_non_inferiority(row, claim, base, rlhf, settings)
        _documented_interval(row, claim, run)
        return row
    diffs = rlhf - base
    limits = bounds(claim.metric, difference=True)
    _seed_summary(row, diffs, settings.bootstrap_resamples, limits)
    if claim.test == "difference_equivalence":
        own = bounds(claim.metric)
        skewness = stats.seed_skewness(rlhf, own, minus=base) if np.isfinite(own).all() else None
        _equivalence_over_seeds(row, diffs, claim.documented, alpha, pw, limits, skewness)
    elif claim.test == "non_inferiority":
        margin = claim.margin
        # Worse by more than the margin is the null of the support test and the alternative of the refute test.
        limit, better = (margin, "less") if claim.worse == "higher" else (-margin, "greater")
        worse = "greater" if better == "less" else "less"
        row["bound_low" if claim.worse == "lower" else "bound_high"] = limit
        row["p_support"] = stats.one_sample_t(diffs, limit, better)[1]
        band = (-math.inf, limit) if better == "less" else (limit, math.inf)
        row[DECIDER] = functools.partial(power.n_to_decide_one_sample, diffs, *band, power_=pw)
        row["p_refute"] = stats.one_sample_t(diffs, limit, worse)[1]
        row["mde"], row["mde_effect_size"] = power.mde_one_sample(n, _sd(diffs), alpha, pw, better)
        _bounded_mde(row, limit, better, limits)
    elif claim.test == "direction" and claim.relative and (base > 0).all() and (rlhf > 0).all():
        _relative_direction(row, claim, run, base, rlhf, settings)
        return row
    elif claim.test == "direction":
        claimed = "greater" if claim.direction == "increase" else "less"
        smallest = _scale(claim, base, claim.min_effect) * (1 if claimed == "greater" else -1)
        row["bound_low" if claimed == "greater" else "bound_high"] = smallest
        row["estimate"], row["ci_low"], row["ci_high"] = stats.welch_diff_interval(rlhf, base, CONFIDENCE, limits)
        row["ci_method"] = "Welch 95% over seed means" + bounds_note(limits)
        row["p_support"] = stats.welch_diff_test(rlhf, base, 0.0, claimed)[1]
        row[DECIDER] = functools.partial(power.n_to_decide_two_sample, rlhf, base, smallest, claimed, power_=pw)
        row["p_refute"] = stats.welch_diff_test(rlhf, base, smallest, "less" if claimed == "greater" else "greater")[1]
        row["cohens_d"] = stats.cohens_d(rlhf, base)
        row["mde"], row["mde_effect_size"] = power.mde_two_sample(n, n, _pooled_sd(rlhf, base), alpha, pw, claimed)
        _bounded_mde(row, float(np.mean(base)), claimed, bounds(claim.metric))
        _per_sample_tests(row, claim, run, claimed)
    row["reason"] = f"RLHF - base {claim.metric} {fmt(row['estimate'])} [{fmt(row['ci_low'])}, {fmt(row['ci_high'])}]"
    _documented_interval(row, claim, run)
    return row


def _relative_direction(row: dict, claim: Claim, run: Run, base: np.ndarray, rlhf: np.ndarray, settings) -> None:
    """direction with `relative: true` and positive values: Welch over the seeds' log values, so that the smallest
    effect is the fixed log(1 -+ min_effect) and a skewed metric is near normal (the verdict calibration found the
    raw-scale Welch test calling 13% of no-effect runs REPRODUCED with 3 seeds of lengths spread as in the smoke
    run). The estimate is the ratio of geometric means, RLHF / base, with its Welch interval."""
    alpha, pw, n = settings.alpha, settings.power, len(run.seeds)
    claimed = "greater" if claim.direction == "increase" else "less"
    factor = 1 + claim.min_effect if claimed == "greater" else 1 - claim.min_effect
    log_rlhf, log_base = np.log(rlhf), np.log(base)
    _seed_summary(row, rlhf - base, settings.bootstrap_resamples, bounds(claim.metric, difference=True))
    row["bound_low" if claimed == "greater" else "bound_high"] = factor
    estimate, low, high = stats.welch_diff_interval(log_rlhf, log_base, CONFIDENCE)
    row["estimate"], row["ci_low"], row["ci_high"] = (math.exp(v) for v in (estimate, low, high))
    row["ci_method"] = "Welch 95% over the seeds' log values, as a ratio of geometric means"
    row["p_support"] = stats.welch_diff_test(log_rlhf, log_base, 0.0, claimed)[1]
    decider = power.n_to_decide_two_sample
    row[DECIDER] = functools.partial(decider, log_rlhf, log_base, math.log(factor), claimed, power_=pw)
    refute = "less" if claimed == "greater" else "greater"
    row["p_refute"] = stats.welch_diff_test(log_rlhf, log_base, math.log(factor), refute)[1]
    row["cohens_d"] = stats.cohens_d(rlhf, base)
    shift, row["mde_effect_size"] = power.mde_two_sample(n, n, _pooled_sd(log_rlhf, log_base), alpha, pw, claimed)
    row["mde"] = math.expm1(shift)  # as a fraction of the base value, as min_effect
    _per_sample_tests(row, claim, run, claimed)
    row["reason"] = (
        f"RLHF / base {claim.metric} {fmt(row['estimate'])} [{fmt(row['ci_low'])}, {fmt(row['ci_high'])}] "
        "(ratio of geometric means over seeds)"
    )
    _documented_interval(row, claim, run)


def _relative_non_inferiority(row: dict, claim: Claim, base: np.ndarray, rlhf: np.ndarray, settings) -> None:
    """non_inferiority with `relative: true`: per seed the log of RLHF's value over base's, one-sample t against
    log(1 + margin) (or log(1 - margin) where lower is worse), shown as the geometric-mean ratio over seeds.

    On the log scale a relative margin is a fixed number, not 25% of a base mean that is itself estimated (which
    the t test would ignore), and the ratios of a skewed metric such as perplexity are far closer to normal there:
    the verdict calibration found the difference-scale test calling 15% of runs on the margin's edge REPRODUCED
    (10 seeds, perplexity spread as in the smoke run). For perplexity the log is the cross-entropy per token."""
    if (base <= 0).any() or (rlhf <= 0).any():
        row["reason"] = f"not testable: a relative margin needs positive values of '{claim.metric}' in every seed"
        return
    alpha, pw = settings.alpha, settings.power
    logs = np.log(rlhf) - np.log(base)
    factor = 1 + claim.margin if claim.worse == "higher" else 1 - claim.margin
    limit, better = math.log(factor), ("less" if claim.worse == "higher" else "greater")
    worse = "greater" if better == "less" else "less"
    _seed_summary(row, logs, settings.bootstrap_resamples, stats.UNBOUNDED)
    for column in ("estimate", "ci_low", "ci_high", "iqm", "iqm_ci_low", "iqm_ci_high"):
        row[column] = math.exp(row[column])  # NaN stays NaN
    row["seed_values"] = ";".join(f"{v:.6g}" for v in rlhf / base)
    row["ci_method"] = "t 95% over seeds of log(RLHF / base), as a ratio"
    row["bound_low" if claim.worse == "lower" else "bound_high"] = factor
    row["p_support"] = stats.one_sample_t(logs, limit, better)[1]
    band = (-math.inf, limit) if better == "less" else (limit, math.inf)
    row[DECIDER] = functools.partial(power.n_to_decide_one_sample, logs, *band, power_=pw)
    row["p_refute"] = stats.one_sample_t(logs, limit, worse)[1]
    shift, row["mde_effect_size"] = power.mde_one_sample(len(logs), _sd(logs), alpha, pw, better)
    row["mde"] = math.expm1(shift)  # as a fraction of the base value, as the margin
    row["reason"] = (
        f"RLHF / base {claim.metric} {fmt(row['estimate'])} [{fmt(row['ci_low'])}, {fmt(row['ci_high'])}] "
        "(geometric mean over seeds)"
    )


def _missing_seeds(claim: Claim, run: Run, values: dict[str, np.ndarray]) -> str:
    """'' when every seed measured the metric for the policies the claim tests; else the reason of a claim that
    cannot be tested (metrics.json holds null or NaN there: e.g. distinct_2 of a policy whose responses are all
    empty). The claim is then INCONCLUSIVE, never a crash, and never a test on the seeds that happen to remain."""
    tested = [claim.policy] if claim.test in ("value_equivalence", "threshold") else list(POLICIES)
    parts = []
    for policy in tested:
        seeds = [str(seed) for seed, value in zip(run.seeds, values[policy], strict=True) if math.isnan(value)]
        if seeds:
            parts.append(f"{policy} {claim.metric} is missing for seed {', '.join(seeds)}")
    if not parts:
        return ""
    where = f"{claim.experiment}/evaluate/seed<k>/metrics.json"
    return f"not measured: {'; '.join(parts)} (null or NaN in {where}), so the claim cannot be tested"


def _per_sample_tests(row: dict, claim: Claim, run: Run, claimed: str) -> None:
    """Within seeds: the per-sample test of each seed (Fisher's exact on judge labels, else Mann-Whitney U; the
    largest p), Cliff's delta over all samples, KS for lengths."""
    per_seed = [run.sample_values(claim.experiment, claim.metric, seed) for seed in run.seeds]
    if any(values is None for values in per_seed):
        return  # a corpus-level metric (perplexity, distinct-2): only the test over seeds applies
    row["n_samples"] = int(sum(v["rlhf"].size for v in per_seed))
    tests = [proportions.per_sample_test(v["rlhf"], v["base"], claimed) for v in per_seed]
    row["per_seed_test"] = "/".join(sorted({name for name, _, _ in tests}))
    row["per_seed_p_max"] = max(p for _, _, p in tests)
    pooled = {p: np.concatenate([v[p] for v in per_seed]) for p in POLICIES}
    row["cliffs_delta"] = stats.cliffs_delta(pooled["rlhf"], pooled["base"])
    if claim.metric in LENGTH_METRICS:
        ks = [stats.ks_two_sample(v["rlhf"], v["base"]) for v in per_seed]
        row["ks_statistic_max"] = max(d for d, _ in ks)
        row["ks_p_max"] = max(p for _, p in ks)


# ------------------------------------------------------------------------------------ verdicts


def decide(row: dict, alpha: float, power_: float) -> tuple[str, str]:
    """The statistical verdict and its one-line reason, from the Holm-adjusted p-values."""
    numbers = row["reason"]
    if math.isnan(row["p_support"]) and math.isnan(row["p_refute"]):
        if row["reason"].startswith("not run"):  # the claim's experiment is not in this profile
            return "NOT RUN", numbers
        if row["reason"].startswith("not measured"):
            return "INCONCLUSIVE", numbers
        why = "one seed: no interval over seeds" if row["n_seeds"] == 1 else "no test possible (no spread)"
        return "INCONCLUSIVE", f"{why}; {numbers}"
    ps = f"support p={fmt_p(row['p_support'])} (Holm {fmt_p(row['p_support_holm'])}), " + (
        f"refute p={fmt_p(row['p_refute'])} (Holm {fmt_p(row['p_refute_holm'])})"
    )
    bounds = f"[{fmt(row['bound_low'])}, {fmt(row['bound_high'])}]"
    if row["p_refute_holm"] < alpha:
        return "NOT REPRODUCED", f"{REFUTED[row['test']].format(bounds=bounds)}: {numbers}; {ps}"
    if row["p_support_holm"] < alpha:
        return "REPRODUCED", f"{SUPPORTED[row['test']].format(bounds=bounds)}: {numbers}; {ps}"
    mde = mde_text(row["mde"], power_, row["n_seeds"])
    mde = f"; {mde}" if mde else ""
    return "INCONCLUSIVE", f"interval too wide to decide{would_decide(row, power_)}: {numbers}; {ps}{mde}"


def would_decide(row: dict, power_: float) -> str:
    """' with 5 seeds; about 12 would decide at 80% power' (pairs for an accuracy), from n_to_decide."""
    need = row.get("n_to_decide", math.nan)
    if need is None or math.isnan(need):
        return ""
    pairs = row["test"] == "proportion_equivalence"
    unit, have = ("pairs", row["n_samples"]) if pairs else ("seeds", row["n_seeds"])
    if math.isinf(need):
        return f" with {fmt(have)} {unit}; no number up to {fmt(power.MAX_N)} would decide at {power_:.0%} power"
    if need <= have:  # the observed effect is large enough: this run was among the unlucky reruns
        return f" with {fmt(have)} {unit}; at the observed spread {fmt(need)} would decide {power_:.0%} of reruns"
    return f" with {fmt(have)} {unit}; about {fmt(need)} would decide at {power_:.0%} power"


def mde_text(mde: float, power_: float, n_seeds) -> str:
    """The smallest detectable effect in words, or that none is ('' when there is no mde)."""
    if math.isnan(mde):
        return ""
    if math.isinf(mde):
        seeds = f" ({int(n_seeds)})" if not math.isnan(n_seeds) else ""
        return f"smallest effect at {power_:.0%} power: {NOT_DETECTABLE}{seeds}"
    return f"smallest effect detectable at {power_:.0%} power {fmt(mde)}"


SUPPORTED = {
    "proportion_equivalence": "equivalent to the documented value within the band {bounds}",
    "value_equivalence": "equivalent to the documented value within the band {bounds}",
    "difference_equivalence": "equivalent to the documented difference within the band {bounds}",
    "direction": "changed in the claimed direction",
    "threshold": "above the threshold {bounds}",
    "non_inferiority": "not worse than base by more than the margin {bounds}",
}
REFUTED = {
    "proportion_equivalence": "outside the band {bounds} around the documented value",
    "value_equivalence": "outside the band {bounds} around the documented value",
    "difference_equivalence": "outside the band {bounds} around the documented difference",
    "direction": "change smaller than the smallest effect that counts {bounds}, or the other way",
    "threshold": "below the threshold {bounds}",
    "non_inferiority": "worse than base by more than the margin {bounds}",
}


def _n_to_decide(rows: list[dict], alpha: float) -> None:
    """n_to_decide of every claim that neither test decides: the seeds (pairs, for an accuracy) at which its
    support or refute test would decide with 80% power if the observed mean and spread were the truth, at the
    level Holm gave it in this run (alpha over its Holm multiplier on the support p-values)."""
    tested = [r["p_support"] for r in rows if not math.isnan(r["p_support"])]
    for row in rows:
        decider = row.pop(DECIDER, None)
        undecided = not (row["p_support_holm"] < alpha or row["p_refute_holm"] < alpha)
        if decider is None or math.isnan(row["p_support"]) or not undecided:
            continue
        multiplier = sum(p >= row["p_support"] for p in tested)
        row["n_to_decide"] = decider(alpha=alpha / max(multiplier, 1))


def give_verdicts(
    rows: list[dict],
    settings: ClaimsFile,
    comparable: bool = True,
    profile: str = "?",
    stability: list[float] | None = None,
) -> None:
    """Holm across the run's claims, then each claim's verdict and reason (in place): what claims_table does
    after testing, and what benchmarks/verdict_calibration.py and verdict_stability run on simulated or
    resampled claims. `stability`: each claim's verdict_stability, given once the verdicts are known (else no
    n_to_decide either: neither is asked of a rerun)."""
    for column in ("p_support", "p_refute"):
        for row, adjusted in zip(rows, power.holm([r[column] for r in rows]), strict=True):
            row[f"{column}_holm"] = adjusted
    if stability is not None:
        _n_to_decide(rows, settings.alpha)
    for index, row in enumerate(rows):
        row.pop(DECIDER, None)
        row["statistical_verdict"], reason = decide(row, settings.alpha, settings.power)
        if stability is not None and not math.isnan(stability[index]):
            row["verdict_stability"] = stability[index]
            rerun = (
                f"with {row['n_samples']:.0f} pairs redrawn"
                if row["test"] == "proportion_equivalence"
                else f"with {row['n_seeds']:.0f} seeds"
            )
            reason += (
                f"; the same verdict in {stability[index]:.2f} of {settings.stability_reruns} bootstrap reruns {rerun}"
            )
        if comparable or row["statistical_verdict"] == "NOT RUN":
            row["verdict"], row["reason"] = row["statistical_verdict"], reason
        else:
            row["verdict"] = "NOT COMPARABLE"
            row["reason"] = (
                f"profile '{profile}' is not the documented setting (comparable_to_documented: false); "
                f"as measured: {row['statistical_verdict']}: {reason}"
            )


class ResampledRun:
    """A bootstrap rerun of a run: its seeds drawn with replacement (one draw for all claims, as a rerun gives
    every claim the same seeds) and each accuracy's count redrawn binomially from the observed proportion."""

    def __init__(self, run, index: np.ndarray, rng: np.random.Generator):
        self.run, self.index, self.rng = run, index, rng
        self.seeds = list(range(index.size))
        self.profile, self.comparable = run.profile, run.comparable
        self._counts = {}

    def has(self, experiment: str) -> bool:
        return self.run.has(experiment)

    def seed_values(self, experiment: str, metric: str, policy: str) -> np.ndarray:
        return self.run.seed_values(experiment, metric, policy)[self.index]

    def pair_counts(self, experiment: str, split: str) -> tuple[int, int]:
        if (experiment, split) not in self._counts:
            k, n = self.run.pair_counts(experiment, split)
            self._counts[experiment, split] = (int(self.rng.binomial(n, k / n)) if n else 0, n)
        return self._counts[experiment, split]

    def sample_values(self, experiment: str, metric: str, seed: int):
        return None  # the per-sample tests beside a verdict play no part in it


def verdict_stability(run, settings: ClaimsFile, observed: list[str]) -> list[float]:
    """How often a rerun with as many seeds gives each claim its observed statistical verdict: the share of
    settings.stability_reruns bootstrap reruns (ResampledRun, the whole family with Holm) that agree. NaN for a
    claim that no test decides either way (not measured, not run) and when stability_reruns is 0.

    A bootstrap over 3 to 5 seeds is coarse (a resample of identical seeds has no spread and decides nothing),
    so read the number as a guide to how close a verdict is to flipping, not as a probability to three digits."""
    if settings.stability_reruns == 0 or not run.seeds:
        return [math.nan] * len(observed)
    fast = dataclasses.replace(settings, bootstrap_resamples=0)  # no IQM intervals (_seed_summary)
    rng = np.random.default_rng(0)
    same = np.zeros(len(observed))
    for _ in range(settings.stability_reruns):
        rerun = ResampledRun(run, rng.integers(0, len(run.seeds), len(run.seeds)), rng)
        rows = [assess_claim(claim, rerun, fast) for claim in settings.claims]
        give_verdicts(rows, fast)
        same += [row["statistical_verdict"] == verdict for row, verdict in zip(rows, observed, strict=True)]
    return (same / settings.stability_reruns).tolist()


def claims_table(config: dict, results_dir: Path, claims_path: Path) -> pd.DataFrame:
    """Test every claim, apply Holm across the run's claims, give each its verdict and its stability."""
    settings = load_claims(claims_path, config["experiments"])
    run = Run(config, results_dir)
    rows = [assess_claim(claim, run, settings) for claim in settings.claims]
    probe = [{k: v for k, v in row.items() if k != DECIDER} for row in rows]
    give_verdicts(probe, settings)
    decidable = [not (math.isnan(r["p_support"]) and math.isnan(r["p_refute"])) for r in probe]
    stability = verdict_stability(run, settings, [r["statistical_verdict"] for r in probe])
    stability = [s if ok else math.nan for s, ok in zip(stability, decidable, strict=True)]
    give_verdicts(rows, settings, run.comparable, run.profile, stability)
    return pd.DataFrame(rows, columns=COLUMNS)


def main(argv: list[str] | None = None) -> int:
    stage = Stage("claims", "Test every documented claim on a finished run.")
    stage.add_results_args(out="--out")
    stage.parser.add_argument("--claims", type=Path, default=DEFAULT_CLAIMS, help="claims file (config/claims.yaml)")

    def body(run):
        input_file(run.args.claims, "--claims", "the claims file (config/claims.yaml)")
        table = claims_table(run.config.raw, run.args.results_dir, run.args.claims)
        atomic_write_text(run.args.out, table.to_csv(index=False))
        stage.record(run, [run.args.out])
        counts = ", ".join(f"{v} {k}" for k, v in table.verdict.value_counts().items())
        print(f"{stage.module}: wrote {len(table)} claims ({counts}) to {run.args.out}")

    return stage.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
