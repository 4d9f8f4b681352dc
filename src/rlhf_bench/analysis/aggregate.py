"""Aggregate stage: statistics over PPO seeds, reward-model accuracy intervals and one-sided tests.

Reads what the evaluate and reward stages wrote for every experiment and seed named in the
resolved config, and writes three tidy CSV files that the claims check and the report read:

- summary.csv     one row per (experiment, per-policy metric, policy): mean, std and t interval over seeds
- rm_summary.csv  one row per (experiment, split): pairwise accuracy with its Wilson interval
- improvement.csv for each tested metric, the IQM over seeds of base and RLHF and rliable's probability that an
                  RLHF seed beats a base seed in the documented direction, with its stratified bootstrap interval
- tests.csv       one-sided tests that RLHF moved the objective (and the reward) in the documented
                  direction: per seed on per-sample values (Fisher's exact test on 0/1 judge labels,
                  Mann-Whitney U otherwise: proportions.per_sample_test), Welch t over seed means

A missing or malformed input ends the stage with one line on stderr and exit code 2 (the stage frame), and
nothing is written: the four tables are moved into place together (Stage.write_tables).

    python -m rlhf_bench.analysis.aggregate --config results/smoke/config.json \
        --results-dir results/smoke --out-dir results/smoke
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from rlhf_bench.analysis.metrics import (
    ALPHA,
    CONFIDENCE,
    DIRECTIONS,
    METRIC_ORDER,
    POLICIES,
    SPLITS,
    bounds,
    bounds_note,
)
from rlhf_bench.analysis.power import iqm, probability_of_improvement
from rlhf_bench.analysis.proportions import per_sample_test
from rlhf_bench.analysis.stats import t_interval, welch_t, wilson_interval
from rlhf_bench.io import StageError, field, read_json, read_table, verified
from rlhf_bench.layout import SUMMARY_TABLES, stage_dir
from rlhf_bench.runtime import Stage

CI_TYPE = "t 95% over seeds"
SAMPLE_COLUMNS = ("seed", "policy", "prompt_id", "reward", "judge_score", "judge_label", "word_count")
SUMMARY_COLUMNS = [
    "experiment", "metric", "policy", "n_seeds", "mean", "std", "ci_low", "ci_high", "ci_type", "documented",
]  # fmt: skip
RM_COLUMNS = [
    "experiment", "split", "n_pairs", "n_correct", "accuracy", "wilson_low", "wilson_high", "documented", "scorer",
]  # fmt: skip
REWARD_MODEL = "reward model"  # rm_summary.csv `scorer` of the reward model; baselines carry their titles
IMPROVEMENT_COLUMNS = [
    "experiment", "metric", "direction", "n_seeds", "iqm_base", "iqm_rlhf", "probability_of_improvement",
    "poi_ci_low", "poi_ci_high",
]  # fmt: skip
POI_RESAMPLES = 10_000  # rliable's default number of bootstrap resamples
TEST_COLUMNS = [
    "experiment", "metric", "test", "seed", "direction", "statistic", "p_value", "significant",
]  # fmt: skip


def evaluate_file(results_dir: Path, experiment: str, seed: int, name: str) -> Path:
    """A file the evaluate stage wrote for one seed: metrics.json or samples.parquet."""
    return Path(stage_dir(results_dir, experiment, "evaluate", seed), name)


def rm_metrics_file(results_dir: Path, experiment: str) -> Path:
    return Path(stage_dir(results_dir, experiment, "reward"), "rm_metrics.json")


def pair_counts(counts: dict, split: str, where: Path | str) -> tuple[int, int]:
    """(n_correct, n_pairs) of one split of rm_metrics.json (the reward model's or a baseline's), checked."""
    split_counts = field(counts, split, where)
    n_pairs = int(field(split_counts, "n_pairs", f"{where} {split}"))
    n_correct = int(field(split_counts, "n_correct", f"{where} {split}"))
    if not 0 <= n_correct <= n_pairs:
        raise StageError(f"{where}: {split}.n_correct={n_correct} is not within 0..n_pairs={n_pairs}")
    return n_correct, n_pairs


def documented(config: dict, experiment: str) -> dict:
    """The experiment's documented numbers ({} when the config documents none)."""
    return config["experiments"][experiment].get("documented") or {}


def as_float(value) -> float:
    """JSON null (or an absent documented value) -> NaN, so pandas treats it as missing."""
    return math.nan if value is None else float(value)


def load_seed_metrics(config: dict, results_dir: Path) -> pd.DataFrame:
    """Long table (experiment, seed, policy, metric, value) from every evaluate/seed<k>/metrics.json."""
    rows = []
    for experiment in config["experiments"]:
        for seed in config["seeds"]:
            path = evaluate_file(results_dir, experiment, seed, "metrics.json")
            metrics = read_json(verified(path))
            if field(metrics, "seed", path) != seed:
                raise StageError(f"{path}: field 'seed' is {metrics['seed']!r}, expected {seed}")
            policies = field(metrics, "policies", path)
            for policy in POLICIES:
                for metric, value in field(policies, policy, f"{path} policies").items():
                    try:
                        number = as_float(value)
                    except (TypeError, ValueError):
                        raise StageError(f"{path}: policies.{policy}.{metric} is not a number: {value!r}") from None
                    if math.isinf(number):  # null / NaN means not measured; an infinite mean is a broken input
                        raise StageError(f"{path}: policies.{policy}.{metric} is {value!r}, not a finite number")
                    rows.append((experiment, seed, policy, metric, number))
    return pd.DataFrame(rows, columns=["experiment", "seed", "policy", "metric", "value"])


def ordered_metrics(metrics) -> list[str]:
    """Known metrics in METRIC_ORDER, then any others alphabetically."""
    known = [m for m in METRIC_ORDER if m in set(metrics)]
    return known + sorted(set(metrics) - set(known))


def summarize_metrics(config: dict, seed_metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and t interval over seeds for each (experiment, metric, policy), clipped to the metric's bounds.

    A metric that is null in every seed (a judge metric without a judge) keeps its row with n_seeds 0,
    so the table says plainly that it was not measured instead of dropping it.
    """
    rows = []
    for experiment, exp_rows in seed_metrics.groupby("experiment", sort=False):
        docs = documented(config, experiment)
        for metric in ordered_metrics(exp_rows["metric"].unique()):
            for policy in POLICIES:
                values = exp_rows.loc[(exp_rows.metric == metric) & (exp_rows.policy == policy), "value"].dropna()
                mean, low, high = t_interval(values.to_numpy(), CONFIDENCE, bounds(metric))
                std = float(values.std(ddof=1)) if len(values) >= 2 else math.nan
                rows.append({
                    "experiment": experiment, "metric": metric, "policy": policy, "n_seeds": len(values),
                    "mean": mean, "std": std, "ci_low": low, "ci_high": high,
                    "ci_type": CI_TYPE + bounds_note(bounds(metric)),
                    "documented": as_float(docs.get(f"{metric}_{policy}")),
                })  # fmt: skip
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def summarize_reward_models(config: dict, results_dir: Path) -> pd.DataFrame:
    """Pairwise accuracy per split with a Wilson interval, recomputed from the pair counts: the reward model's,
    then each baseline's on the same pairs (rm_metrics.json `baselines`)."""
    rows = []
    for experiment in config["experiments"]:
        path = rm_metrics_file(results_dir, experiment)
        rm = read_json(verified(path))
        docs = documented(config, experiment)
        scorers = [(REWARD_MODEL, rm, str(path))]
        for name, result in (rm.get("baselines") or {}).items():
            scorers.append((result.get("title", name), result, f"{path} baselines.{name}"))
        for scorer, metrics, where in scorers:
            for split in SPLITS:
                n_correct, n_pairs = pair_counts(metrics, split, where)
                accuracy = n_correct / n_pairs if n_pairs else math.nan
                low, high = wilson_interval(n_correct, n_pairs, CONFIDENCE)
                rows.append({
                    "experiment": experiment, "split": split, "n_pairs": n_pairs, "n_correct": n_correct,
                    "accuracy": accuracy, "wilson_low": low, "wilson_high": high,
                    "documented": as_float(docs.get(f"rm_accuracy_{split}")), "scorer": scorer,
                })  # fmt: skip
    return pd.DataFrame(rows, columns=RM_COLUMNS)


def load_samples(results_dir: Path, experiment: str, seed: int) -> pd.DataFrame:
    """One seed's evaluation samples, checked for the columns and the seed this stage relies on."""
    path = evaluate_file(results_dir, experiment, seed, "samples.parquet")
    samples = read_table(verified(path), SAMPLE_COLUMNS, kind="parquet")
    seeds_found = set(samples["seed"].unique().tolist())
    if seeds_found - {seed}:
        raise StageError(f"{path}: column 'seed' holds {sorted(seeds_found)}, expected only {seed}")
    policies_found = set(samples["policy"].unique().tolist())
    if not set(POLICIES) <= policies_found:
        raise StageError(f"{path}: column 'policy' must hold both 'base' and 'rlhf', found {sorted(policies_found)}")
    return samples


def has_judge(samples: pd.DataFrame) -> bool:
    """True when the samples carry judge labels (the evaluate stage leaves them '' without a judge)."""
    return bool(samples["judge_label"].fillna("").astype(str).ne("").any())


def per_sample_values(samples: pd.DataFrame, metric: str) -> pd.Series | None:
    """The per-sample quantity whose mean is the per-policy metric, or None if it has none.

    A ratio of judge labels is the mean of a 0/1 indicator, length_mean the mean word count, reward_mean
    the mean reward. Metrics such as perplexity or distinct_2 are corpus-level: only Welch tests them.
    """
    if metric in ("judge_negative_ratio", "judge_positive_ratio"):
        label = metric.removeprefix("judge_").removesuffix("_ratio")
        return samples["judge_label"].eq(label).astype(float)
    columns = {
        "reward_mean": "reward",
        "judge_score_mean": "judge_score",
        "length_mean": "word_count",
        "length_median": "word_count",
        "kl_mean": "kl",
    }
    if metric in columns and columns[metric] in samples.columns:
        return samples[columns[metric]].astype(float)
    return None


def tested_metrics(exp_config: dict) -> list[tuple[str, str]]:
    """(metric, direction) pairs to test: the PPO objective, plus the reward, which PPO always raises."""
    objective = exp_config["objective"]
    pairs = [(objective["metric"], objective["direction"])]
    if objective["metric"] != "reward_mean":
        pairs.append(("reward_mean", "increase"))
    return pairs


def experiment_tests(
    experiment: str, exp_config: dict, seeds: list[int], seed_metrics: pd.DataFrame, results_dir: Path
) -> list[tuple]:
    """One-sided tests that RLHF moved each tested metric in its direction, per seed and over seeds."""
    rows = []
    samples = {seed: load_samples(results_dir, experiment, seed) for seed in seeds}
    for metric, direction in tested_metrics(exp_config):
        alternative = DIRECTIONS[direction]
        for seed, frame in samples.items():
            path = evaluate_file(results_dir, experiment, seed, "samples.parquet")
            if metric.startswith("judge_") and not has_judge(frame):
                raise StageError(f"{path}: metric '{metric}' needs a judge, but judge_label is empty in every row")
            values = per_sample_values(frame, metric)
            if values is None:  # corpus-level metric: no per-sample test
                continue
            if values.isna().any():
                raise StageError(f"{path}: per-sample values for '{metric}' contain NaN")
            rlhf, base = values[frame.policy == "rlhf"], values[frame.policy == "base"]
            test, stat, p = per_sample_test(rlhf, base, alternative)
            rows.append((experiment, metric, test, str(seed), direction, stat, p, bool(p < ALPHA)))
        by_policy = policy_seed_values(seed_metrics, experiment, metric, seeds)
        if any(pd.isna(v).any() for v in by_policy.values()):
            # Null or NaN in some seed's metrics.json (e.g. distinct_2 of a policy whose responses are all empty):
            # not measured there, so no test over seeds: NaN, not significant, as with one seed.
            rows.append((experiment, metric, "welch_t", "all", direction, math.nan, math.nan, False))
            continue
        stat, p = welch_t(by_policy["rlhf"], by_policy["base"], alternative)
        rows.append((experiment, metric, "welch_t", "all", direction, stat, p, bool(p < ALPHA)))
    return rows


def policy_seed_values(seed_metrics: pd.DataFrame, experiment: str, metric: str, seeds: list[int]) -> dict:
    """Each policy's values of one metric, in the order of `seeds` (NaN where a seed did not measure it)."""
    rows = seed_metrics[(seed_metrics.experiment == experiment) & (seed_metrics.metric == metric)]
    return {
        policy: rows[rows.policy == policy].set_index("seed")["value"].reindex(seeds).to_numpy(dtype=float)
        for policy in POLICIES
    }


def summarize_improvement(config: dict, seed_metrics: pd.DataFrame) -> pd.DataFrame:
    """Per tested metric: IQM of each policy over seeds and P(an RLHF seed beats a base seed) in the metric's
    documented direction (Agarwal et al. 2021), with the stratified bootstrap interval; NaN where a seed lacks it."""
    rows = []
    for experiment, exp_config in config["experiments"].items():
        for metric, direction in tested_metrics(exp_config):
            values = policy_seed_values(seed_metrics, experiment, metric, config["seeds"])
            measured = not any(pd.isna(v).any() for v in values.values())
            sign = 1.0 if direction == "increase" else -1.0  # "better" is lower for a decrease
            poi = (
                probability_of_improvement(sign * values["rlhf"], sign * values["base"], CONFIDENCE, POI_RESAMPLES)
                if measured
                else (math.nan,) * 3
            )
            rows.append({
                "experiment": experiment, "metric": metric, "direction": direction, "n_seeds": len(config["seeds"]),
                "iqm_base": iqm(values["base"]) if measured else math.nan,
                "iqm_rlhf": iqm(values["rlhf"]) if measured else math.nan,
                "probability_of_improvement": poi[0], "poi_ci_low": poi[1], "poi_ci_high": poi[2],
            })  # fmt: skip
    return pd.DataFrame(rows, columns=IMPROVEMENT_COLUMNS)


def run_tests(config: dict, seed_metrics: pd.DataFrame, results_dir: Path) -> pd.DataFrame:
    rows = []
    for experiment, exp_config in config["experiments"].items():
        rows.extend(experiment_tests(experiment, exp_config, config["seeds"], seed_metrics, results_dir))
    return pd.DataFrame(rows, columns=TEST_COLUMNS)


def aggregate(config: dict, results_dir: Path) -> dict[str, pd.DataFrame]:
    """All four tables, by file name (every input read before anything is written)."""
    seed_metrics = load_seed_metrics(config, results_dir)
    tables = dict(
        zip(
            SUMMARY_TABLES,
            (
                summarize_metrics(config, seed_metrics),
                summarize_reward_models(config, results_dir),
                summarize_improvement(config, seed_metrics),
                run_tests(config, seed_metrics, results_dir),
            ),
            strict=True,
        )
    )
    return tables


def main(argv: list[str] | None = None) -> int:
    stage = Stage("aggregate", "Statistics over seeds, reward-model accuracy intervals and one-sided tests.")
    stage.add_results_args()

    def body(run):
        stage.write_tables(run, aggregate(run.config.raw, run.args.results_dir))

    return stage.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
