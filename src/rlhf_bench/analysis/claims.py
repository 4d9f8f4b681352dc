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

import argparse
import copy
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from scipy import stats as sps

from rlhf_bench.analysis import stats
from rlhf_bench.analysis.aggregate import (
    InputError,
    evaluate_dir,
    load_config,
    load_samples,
    load_seed_metrics,
    per_sample_values,
    read_json,
)
from rlhf_bench.analysis.aggregate import (
    field as required_field,
)
from rlhf_bench.config import ConfigError, _describe, _with_defaults
from rlhf_bench.io import atomic_write_text

DEFAULT_CLAIMS = Path(__file__).resolve().parents[3] / "config" / "claims.yaml"
VERDICTS = ("REPRODUCED", "NOT REPRODUCED", "INCONCLUSIVE", "NOT COMPARABLE")
CONFIDENCE = 0.95
RM_METRICS = {"rm_accuracy_train": "train", "rm_accuracy_test": "test"}
POLICY_METRICS = (
    "reward_mean", "reward_std", "judge_score_mean", "judge_negative_ratio", "judge_positive_ratio",
    "length_mean", "length_median", "kl_mean", "perplexity", "distinct_2",
)  # fmt: skip
LENGTH_METRICS = ("length_mean", "length_median")
KINDS = (
    "proportion_equivalence", "value_equivalence", "difference_equivalence", "direction", "threshold",
    "non_inferiority", "not_measured",
)  # fmt: skip


def _requires(kind: str, fields: list[str]) -> dict:
    return {"if": {"properties": {"test": {"const": kind}}}, "then": {"required": fields}}


# The claims file's schema. Kept here rather than in config/schema.yaml: it is a different file with its own
# life (it changes when a write-up is read again, not when a profile is tuned).
CLAIMS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["claims"],
    "properties": {
        "alpha": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.5, "default": 0.05},
        "power": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "default": 0.8},
        "bootstrap_resamples": {"type": "integer", "minimum": 100, "default": 10000},
        "rerun_margins": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "properties": {
                "relative": {"type": "number", "exclusiveMinimum": 0, "default": 0.05},
                "absolute": {
                    "type": "object",
                    "default": {},
                    "propertyNames": {"enum": [*POLICY_METRICS, *RM_METRICS]},
                    "additionalProperties": {"type": "number", "exclusiveMinimum": 0},
                },
            },
        },
        "claims": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "seed_file", "quote", "experiment", "metric", "test", "definition", "required"],
                "properties": {
                    "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$"},
                    "seed_file": {"type": "string", "minLength": 1},
                    "quote": {"type": "string", "minLength": 1},
                    "experiment": {"type": "string", "minLength": 1},
                    "metric": {"enum": [*POLICY_METRICS, *RM_METRICS, "none"]},
                    "test": {"enum": list(KINDS)},
                    "policy": {"enum": ["base", "rlhf"], "default": "rlhf"},
                    "documented": {"type": "number"},
                    "documented_pair": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
                    "documented_n": {"type": "integer", "minimum": 1},
                    "margin": {"type": "number", "exclusiveMinimum": 0},
                    "threshold": {"type": "number"},
                    "direction": {"enum": ["increase", "decrease"]},
                    "min_effect": {"type": "number", "minimum": 0},
                    "worse": {"enum": ["higher", "lower"]},
                    "relative": {"type": "boolean", "default": False},
                    "definition": {"type": "string", "minLength": 1},
                    "required": {"type": "boolean"},
                },
                "allOf": [
                    _requires("proportion_equivalence", ["documented", "margin"]),
                    _requires("value_equivalence", ["documented", "margin", "policy"]),
                    _requires("difference_equivalence", ["documented", "margin"]),
                    _requires("direction", ["direction", "min_effect"]),
                    _requires("threshold", ["threshold"]),
                    _requires("non_inferiority", ["worse", "margin"]),
                ],
            },
        },
    },
}


@dataclass(frozen=True)
class Claim:
    id: str
    """Unique name of the claim; the row key of claims.csv."""
    seed_file: str
    """The write-up in ../shared/seeds the claim comes from."""
    quote: str
    """The sentence (or figure) of the write-up, verbatim."""
    experiment: str
    """The experiment of the config that tests it."""
    metric: str
    """A per-policy metric of the evaluate stage, rm_accuracy_train/test, or `none` (not measured)."""
    test: str
    """How it is tested: one of KINDS, described at the top of config/claims.yaml."""
    definition: str
    """The stated operational definition: what counts as reproduced, in words a reader can disagree with."""
    required: bool
    """`python -m rlhf_bench.analysis.check` fails when a required claim is NOT REPRODUCED."""
    policy: str = "rlhf"
    """value_equivalence / threshold: the policy whose metric is tested."""
    documented: float | None = None
    """The documented value (accuracy, level, or RLHF-minus-base difference), where there is one."""
    documented_pair: tuple[float, float] | None = None
    """difference_equivalence: the documented (base, rlhf) values the difference comes from."""
    documented_n: int | None = None
    """Samples behind the documented figure, where the write-up says (seeds/002: 10)."""
    margin: float | None = None
    """Equivalence: half-width of the band around `documented`; non_inferiority: how much worse is allowed."""
    threshold: float | None = None
    """threshold: the level the mean must exceed."""
    direction: str | None = None
    """direction: `increase` or `decrease` of RLHF against base."""
    min_effect: float | None = None
    """direction: the smallest change that counts as the claimed effect (refuted when significantly smaller)."""
    worse: str | None = None
    """non_inferiority: `higher` or `lower`, whichever way the metric gets worse."""
    relative: bool = False
    """margin / min_effect as a fraction of the base policy's mean over seeds instead of metric units."""


@dataclass(frozen=True)
class ClaimsFile:
    alpha: float
    """Level of every support and refute test, after Holm across the claims of one run."""
    power: float
    """Power at which each claim's minimal detectable effect is computed."""
    bootstrap_resamples: int
    """Resamples of the IQM's stratified bootstrap."""
    rerun_margins: dict
    """compare's TOST margins: `relative` (fraction of the earlier mean) and `absolute` per metric."""
    claims: list[Claim] = field(default_factory=list)
    """The claims, in file order (the order of claims.csv)."""


def _where(message: str, claims: list) -> str:
    """Name a claim by its id, not only its index, in a one-line error, and point at the claims schema."""
    message = message.replace("see config/schema.yaml", "see the header of config/claims.yaml")
    parts = message.split(": ", 2)
    if len(parts) == 3 and parts[1].startswith("claims."):
        index = parts[1].split(".")[1]
        if index.isdigit() and int(index) < len(claims) and isinstance(claims[int(index)], dict):
            claim_id = claims[int(index)].get("id", "?")
            return f"{parts[0]}: {parts[1]} (claim '{claim_id}'): {parts[2]}"
    return message


def parse_claims(raw, source: str) -> ClaimsFile:
    """Validate a parsed claims file and build the dataclasses; ConfigError (one line) on anything wrong."""
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: a claims file must be a mapping with a 'claims' list. Fix: see config/claims.yaml."
        )
    filled = copy.deepcopy(raw)
    # The config's own default-filling validator and error wording, so both files fail the same way.
    error = best_match(_with_defaults(Draft202012Validator)(CLAIMS_SCHEMA).iter_errors(filled))
    if error is not None:
        raise ConfigError(_where(_describe(error, source), raw.get("claims") or []))
    seen = set()
    claims = []
    for index, item in enumerate(filled["claims"]):
        if item["id"] in seen:
            raise ConfigError(
                f"{source}: claims.{index}: duplicate id '{item['id']}'. Fix: give each claim its own id."
            )
        seen.add(item["id"])
        measured = item["test"] != "not_measured"
        if measured and item["metric"] == "none":
            raise ConfigError(
                f"{source}: claims.{index} (claim '{item['id']}'): metric 'none' needs test: not_measured."
            )
        if item["test"] == "proportion_equivalence" and item["metric"] not in RM_METRICS:
            raise ConfigError(
                f"{source}: claims.{index} (claim '{item['id']}'): proportion_equivalence tests "
                f"{' or '.join(RM_METRICS)}, not '{item['metric']}'. Fix: use value_equivalence."
            )
        if measured and item["test"] != "proportion_equivalence" and item["metric"] in RM_METRICS:
            raise ConfigError(
                f"{source}: claims.{index} (claim '{item['id']}'): '{item['metric']}' is tested with "
                "proportion_equivalence. Fix: change test."
            )
        if item.get("documented_pair") is not None:
            item["documented_pair"] = tuple(item["documented_pair"])
        claims.append(Claim(**item))
    return ClaimsFile(
        alpha=filled["alpha"],
        power=filled["power"],
        bootstrap_resamples=filled["bootstrap_resamples"],
        rerun_margins=filled["rerun_margins"],
        claims=claims,
    )


def load_claims(path: str | Path = DEFAULT_CLAIMS) -> ClaimsFile:
    """Read and validate a claims file (YAML); ConfigError with one line naming file, field and fix."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the claims file ({exc.strerror}). Fix: check the path.") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{line} is not valid YAML ({getattr(exc, 'problem', exc)}).") from None
    return parse_claims(raw, str(path))


def validated_or_exit(path: str | Path) -> ClaimsFile:
    """For the Snakefile: a broken claims file stops the run before any job, with one line."""
    try:
        return load_claims(path)
    except ConfigError as exc:
        print(f"rlhf-bench: claims error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


# ---------------------------------------------------------------------------------------- the run


class Run:
    """What a finished run holds for the claims: per-seed metrics, pair counts and per-sample tables."""

    def __init__(self, config_path: Path, results_dir: Path):
        self.config = load_config(config_path)
        self.results_dir = results_dir
        self.seeds = list(self.config["seeds"])
        self.metrics = load_seed_metrics(self.config, results_dir)
        self._samples = {}

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
        rows = self.metrics[
            (self.metrics.experiment == experiment) & (self.metrics.metric == metric) & (self.metrics.policy == policy)
        ].set_index("seed")["value"]
        return np.array([rows.get(seed, math.nan) for seed in self.seeds], dtype=float)

    def pair_counts(self, experiment: str, split: str) -> tuple[int, int]:
        path = self.results_dir / experiment / "reward" / "rm_metrics.json"
        counts = required_field(read_json(path), split, path)
        n_pairs = int(required_field(counts, "n_pairs", f"{path} {split}"))
        n_correct = int(required_field(counts, "n_correct", f"{path} {split}"))
        if not 0 <= n_correct <= n_pairs:
            raise InputError(f"{path}: {split}.n_correct={n_correct} is not within 0..n_pairs={n_pairs}")
        return n_correct, n_pairs

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
            path = evaluate_dir(self.results_dir, experiment, seed) / "samples.parquet"
            raise InputError(f"{path}: per-sample values for '{metric}' contain NaN")
        return {p: values[frame.policy == p].to_numpy(dtype=float) for p in ("base", "rlhf")}


# ----------------------------------------------------------------------------------- one claim


COLUMNS = [
    "claim_id", "experiment", "metric", "test", "policy", "required", "verdict", "reason", "statistical_verdict",
    "documented", "bound_low", "bound_high", "n_seeds", "n_samples", "seed_values", "estimate", "ci_low",
    "ci_high", "ci_method", "iqm", "iqm_ci_low", "iqm_ci_high", "p_support", "p_support_holm", "p_refute",
    "p_refute_holm", "p_vs_documented", "cohens_d", "cliffs_delta", "mwu_p_max", "ks_statistic_max", "ks_p_max",
    "mde", "mde_effect_size", "documented_n", "documented_ci_low", "documented_ci_high", "documented_p",
    "documented_note", "definition", "quote", "seed_file",
]  # fmt: skip


def fmt(value: float, digits: int = 3) -> str:
    """A number for a reason line: 3 significant digits, 'n/a' for NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}g}"


def fmt_p(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2g}"


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
        seed_values="", ci_method="", documented_note="", reason="",
    )  # fmt: skip
    if claim.test in ("proportion_equivalence", "value_equivalence", "difference_equivalence"):
        row["bound_low"], row["bound_high"] = claim.documented - claim.margin, claim.documented + claim.margin
    elif claim.test == "threshold":
        row["bound_low"] = claim.threshold
    return row


def _seed_summary(row: dict, values: np.ndarray, resamples: int) -> None:
    """Every seed's value, the mean with its t interval and the IQM with its stratified bootstrap interval."""
    row["n_seeds"] = int(values.size)
    row["seed_values"] = ";".join(f"{v:.6g}" for v in values)
    row["estimate"], row["ci_low"], row["ci_high"] = stats.t_interval(values, CONFIDENCE)
    row["ci_method"] = "t 95% over seeds"
    row["iqm"], row["iqm_ci_low"], row["iqm_ci_high"] = stats.iqm_stratified_bootstrap(
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
            _, row["documented_ci_low"], row["documented_ci_high"] = stats.diff_proportions_interval(rlhf, n, base, n)
            row["documented_p"] = stats.fisher_exact(rlhf, n, base, n, "greater")
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
        row["p_support"] = stats.binomial_tost(k, n, low, high)
        row["p_refute"] = stats.binomial_outside(k, n, low, high)
        row["p_vs_documented"] = stats.binomial_test(k, n, claim.documented)
        row["mde"], row["mde_effect_size"] = stats.mde_proportion(n, claim.documented, alpha, pw)
        row["reason"] = f"accuracy {fmt(row['estimate'])} [{fmt(row['ci_low'])}, {fmt(row['ci_high'])}] ({k}/{n} pairs)"
        _documented_interval(row, claim, run)
        return row

    base = run.seed_values(claim.experiment, claim.metric, "base")
    rlhf = run.seed_values(claim.experiment, claim.metric, "rlhf")
    if np.isnan(base).all() and np.isnan(rlhf).all():
        row["reason"] = f"not measured in this profile: '{claim.metric}' is null in every seed (no judge?)"
        return row
    for policy, values in (("base", base), ("rlhf", rlhf)):
        if np.isnan(values).any():
            seed = run.seeds[int(np.flatnonzero(np.isnan(values))[0])]
            path = evaluate_dir(run.results_dir, claim.experiment, seed) / "metrics.json"
            raise InputError(f"{path}: policies.{policy}.{claim.metric} is null, but claim '{claim.id}' tests it")
    n = len(run.seeds)

    if claim.test in ("value_equivalence", "threshold"):
        values = rlhf if claim.policy == "rlhf" else base
        _seed_summary(row, values, settings.bootstrap_resamples)
        if claim.test == "value_equivalence":
            low, high = row["bound_low"], row["bound_high"]
            row["p_support"] = stats.tost_one_sample(values, low, high)
            row["p_refute"] = stats.one_sample_outside(values, low, high)
            row["p_vs_documented"] = stats.one_sample_t(values, claim.documented, "two-sided")[1]
            row["mde"], row["mde_effect_size"] = stats.mde_one_sample(n, _sd(values), alpha, pw, "two-sided")
        else:
            row["p_support"] = stats.one_sample_t(values, claim.threshold, "greater")[1]
            row["p_refute"] = stats.one_sample_t(values, claim.threshold, "less")[1]
            row["mde"], row["mde_effect_size"] = stats.mde_one_sample(n, _sd(values), alpha, pw, "greater")
        row["reason"] = (
            f"{claim.policy} {claim.metric} {fmt(row['estimate'])} [{fmt(row['ci_low'])}, {fmt(row['ci_high'])}]"
        )
        _documented_interval(row, claim, run)
        return row

    diffs = rlhf - base
    _seed_summary(row, diffs, settings.bootstrap_resamples)
    if claim.test == "difference_equivalence":
        low, high = row["bound_low"], row["bound_high"]
        row["p_support"] = stats.tost_one_sample(diffs, low, high)
        row["p_refute"] = stats.one_sample_outside(diffs, low, high)
        row["p_vs_documented"] = stats.one_sample_t(diffs, claim.documented, "two-sided")[1]
        row["mde"], row["mde_effect_size"] = stats.mde_one_sample(n, _sd(diffs), alpha, pw, "two-sided")
    elif claim.test == "non_inferiority":
        margin = _scale(claim, base, claim.margin)
        # Worse by more than the margin is the null of the support test and the alternative of the refute test.
        limit, better = (margin, "less") if claim.worse == "higher" else (-margin, "greater")
        worse = "greater" if better == "less" else "less"
        row["bound_low" if claim.worse == "lower" else "bound_high"] = limit
        row["p_support"] = stats.one_sample_t(diffs, limit, better)[1]
        row["p_refute"] = stats.one_sample_t(diffs, limit, worse)[1]
        row["mde"], row["mde_effect_size"] = stats.mde_one_sample(n, _sd(diffs), alpha, pw, better)
    elif claim.test == "direction":
        claimed = "greater" if claim.direction == "increase" else "less"
        smallest = _scale(claim, base, claim.min_effect) * (1 if claimed == "greater" else -1)
        row["bound_low" if claimed == "greater" else "bound_high"] = smallest
        row["estimate"], row["ci_low"], row["ci_high"] = stats.welch_diff_interval(rlhf, base, CONFIDENCE)
        row["ci_method"] = "Welch 95% over seed means"
        row["p_support"] = stats.welch_diff_test(rlhf, base, 0.0, claimed)[1]
        row["p_refute"] = stats.welch_diff_test(rlhf, base, smallest, "less" if claimed == "greater" else "greater")[1]
        row["cohens_d"] = stats.cohens_d(rlhf, base)
        row["mde"], row["mde_effect_size"] = stats.mde_two_sample(n, n, _pooled_sd(rlhf, base), alpha, pw, claimed)
        _per_sample_tests(row, claim, run, claimed)
    row["reason"] = f"RLHF - base {claim.metric} {fmt(row['estimate'])} [{fmt(row['ci_low'])}, {fmt(row['ci_high'])}]"
    _documented_interval(row, claim, run)
    return row


def _per_sample_tests(row: dict, claim: Claim, run: Run, claimed: str) -> None:
    """Within seeds: Mann-Whitney U per seed (the largest p), Cliff's delta over all samples, KS for lengths."""
    per_seed = [run.sample_values(claim.experiment, claim.metric, seed) for seed in run.seeds]
    if any(values is None for values in per_seed):
        return  # a corpus-level metric (perplexity, distinct-2): only the test over seeds applies
    row["n_samples"] = int(sum(v["rlhf"].size for v in per_seed))
    row["mwu_p_max"] = max(stats.mann_whitney_one_sided(v["rlhf"], v["base"], claimed)[1] for v in per_seed)
    pooled = {p: np.concatenate([v[p] for v in per_seed]) for p in ("base", "rlhf")}
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
        if row["reason"].startswith(("not measured", "not run")):
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
    mde = f"; smallest effect detectable at {power_:.0%} power {fmt(row['mde'])}" if not math.isnan(row["mde"]) else ""
    return "INCONCLUSIVE", f"interval too wide to decide: {numbers}; {ps}{mde}"


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


def claims_table(config_path: Path, results_dir: Path, claims_path: Path) -> pd.DataFrame:
    """Test every claim, apply Holm across the run's claims, and give each its verdict."""
    settings = load_claims(claims_path)
    run = Run(config_path, results_dir)
    rows = [assess_claim(claim, run, settings) for claim in settings.claims]
    for column in ("p_support", "p_refute"):
        for row, adjusted in zip(rows, stats.holm([r[column] for r in rows]), strict=True):
            row[f"{column}_holm"] = adjusted
    for row in rows:
        row["statistical_verdict"], reason = decide(row, settings.alpha, settings.power)
        if run.comparable:
            row["verdict"], row["reason"] = row["statistical_verdict"], reason
        else:
            row["verdict"] = "NOT COMPARABLE"
            row["reason"] = (
                f"profile '{run.profile}' is not the documented setting (comparable_to_documented: false); "
                f"as measured: {row['statistical_verdict']}: {reason}"
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rlhf_bench.analysis.claims", description="Test every documented claim on a finished run."
    )
    parser.add_argument("--config", type=Path, required=True, help="resolved config: results/<profile>/config.json")
    parser.add_argument("--results-dir", type=Path, required=True, help="results/<profile>")
    parser.add_argument("--claims", type=Path, default=DEFAULT_CLAIMS, help="claims file (config/claims.yaml)")
    parser.add_argument("--out", type=Path, required=True, help="where to write claims.csv")
    args = parser.parse_args(argv)
    try:
        table = claims_table(args.config, args.results_dir, args.claims)
    except (InputError, ConfigError) as err:
        print(f"rlhf_bench.analysis.claims: error: {err}", file=sys.stderr)
        return 2
    atomic_write_text(args.out, table.to_csv(index=False))
    counts = ", ".join(f"{v} {k}" for k, v in table.verdict.value_counts().items())
    print(f"rlhf_bench.analysis.claims: wrote {len(table)} claims ({counts}) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
