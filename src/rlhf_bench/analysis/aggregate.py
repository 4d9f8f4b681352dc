"""Aggregate stage: statistics over PPO seeds, reward-model accuracy intervals and one-sided tests.

Reads what the evaluate and reward stages wrote for every experiment and seed named in the
resolved config, and writes three tidy CSV files that the claims check and the report read:

- summary.csv     one row per (experiment, per-policy metric, policy): mean, std and t interval over seeds
- rm_summary.csv  one row per (experiment, split): pairwise accuracy with its Wilson interval
- tests.csv       one-sided tests that RLHF moved the objective (and the reward) in the documented
                  direction: Mann-Whitney U per seed on per-sample values, Welch t over seed means

A missing or malformed input ends the stage with one line on stderr and exit code 2, and nothing is
written: outputs are staged in a temporary folder and moved into place only when all of them exist.

    python -m rlhf_bench.analysis.aggregate --config results/smoke/config.json \
        --results-dir results/smoke --out-dir results/smoke
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa

from rlhf_bench.analysis.stats import mann_whitney_one_sided, t_interval, welch_t, wilson_interval

CONFIDENCE = 0.95
CI_TYPE = "t 95% over seeds"
ALPHA = 0.05
POLICIES = ("base", "rlhf")
SPLITS = ("train", "test")
DIRECTIONS = {"increase": "greater", "decrease": "less"}
# Table order of the per-policy metrics (metrics.json is written with sorted keys); others follow by name.
METRIC_ORDER = (
    "reward_mean", "reward_std", "judge_score_mean", "judge_negative_ratio", "judge_positive_ratio",
    "length_mean", "length_median", "kl_mean", "perplexity", "distinct_2",
)  # fmt: skip

# Which Snakemake rule makes each input, so that a missing-file message says what to run.
STAGE_RULES = {
    "data": "data",
    "sft": "sft",
    "reward": "reward",
    "ppo": "ppo",
    "evaluate": "evaluate",
}
FILE_RULES = {
    "config.json": "resolved_config",
    "summary.csv": "aggregate",
    "rm_summary.csv": "aggregate",
    "tests.csv": "aggregate",
}

SAMPLE_COLUMNS = ("seed", "policy", "prompt_id", "reward", "judge_score", "judge_label", "word_count")
SUMMARY_COLUMNS = [
    "experiment", "metric", "policy", "n_seeds", "mean", "std", "ci_low", "ci_high", "ci_type", "documented",
]  # fmt: skip
RM_COLUMNS = [
    "experiment", "split", "n_pairs", "n_correct", "accuracy", "wilson_low", "wilson_high", "documented", "scorer",
]  # fmt: skip
REWARD_MODEL = "reward model"  # rm_summary.csv `scorer` of the reward model; baselines carry their titles
TEST_COLUMNS = [
    "experiment", "metric", "test", "seed", "direction", "statistic", "p_value", "significant",
]  # fmt: skip


class InputError(Exception):
    """An input is missing or malformed: main() prints the message as one line and exits with 2."""


def producing_rule(path: Path) -> str:
    """The rule that makes path, from its place in results/<profile>/<experiment>/<stage>/ ('' if unknown)."""
    if path.name in FILE_RULES:
        return FILE_RULES[path.name]
    for part in reversed(path.parts[:-1]):
        if part in STAGE_RULES:
            return STAGE_RULES[part]
    return ""


def require(path: Path) -> Path:
    """Return path if it is a file, else raise InputError naming it and the rule that makes it."""
    if not path.is_file():
        rule = producing_rule(path)
        fix = f"run the Snakemake rule '{rule}' first (it makes this file)" if rule else "rerun the workflow"
        raise InputError(f"{path}: missing. Fix: {fix}.")
    return path


def read_json(path: Path) -> dict:
    """Load a JSON object, turning a missing file or bad JSON into a one-line InputError."""
    try:
        data = json.loads(require(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def field(mapping: dict, key: str, source: Path | str):
    """mapping[key], or an InputError that names the file and the missing field."""
    if not isinstance(mapping, dict) or key not in mapping:
        raise InputError(f"{source}: missing field '{key}'")
    return mapping[key]


def read_table(path: Path, columns: tuple[str, ...], kind: str = "csv") -> pd.DataFrame:
    """Read a CSV or parquet file and check that it has the columns this stage relies on."""
    require(path)
    try:
        frame = pd.read_parquet(path) if kind == "parquet" else pd.read_csv(path, sep="\t" if kind == "tsv" else ",")
    except (OSError, ValueError, pa.ArrowException) as err:  # each means "unreadable file"
        raise InputError(f"{path}: cannot read {kind} ({type(err).__name__}: {err})".splitlines()[0]) from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    return frame


def load_config(path: Path) -> dict:
    """Read the resolved config and check the fields every later step indexes into."""
    config = read_json(path)
    seeds = field(config, "seeds", path)
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise InputError(f"{path}: field 'seeds' must be a non-empty list of integers, found {seeds!r}")
    experiments = field(config, "experiments", path)
    if not isinstance(experiments, dict) or not experiments:
        raise InputError(f"{path}: field 'experiments' must be a non-empty mapping")
    for name, exp in experiments.items():
        objective = field(exp, "objective", f"{path} experiments.{name}")
        field(objective, "metric", f"{path} experiments.{name}.objective")
        direction = field(objective, "direction", f"{path} experiments.{name}.objective")
        if direction not in DIRECTIONS:
            raise InputError(
                f"{path}: experiments.{name}.objective.direction must be one of {sorted(DIRECTIONS)}, "
                f"found {direction!r}"
            )
    return config


def documented(config: dict, experiment: str) -> dict:
    """The experiment's documented numbers ({} when the config documents none)."""
    return config["experiments"][experiment].get("documented") or {}


def evaluate_dir(results_dir: Path, experiment: str, seed: int) -> Path:
    return results_dir / experiment / "evaluate" / f"seed{seed}"


def ppo_dir(results_dir: Path, experiment: str, seed: int) -> Path:
    return results_dir / experiment / "ppo" / f"seed{seed}"


def as_float(value) -> float:
    """JSON null (or an absent documented value) -> NaN, so pandas treats it as missing."""
    return math.nan if value is None else float(value)


def load_seed_metrics(config: dict, results_dir: Path) -> pd.DataFrame:
    """Long table (experiment, seed, policy, metric, value) from every evaluate/seed<k>/metrics.json."""
    rows = []
    for experiment in config["experiments"]:
        for seed in config["seeds"]:
            path = evaluate_dir(results_dir, experiment, seed) / "metrics.json"
            metrics = read_json(path)
            if field(metrics, "seed", path) != seed:
                raise InputError(f"{path}: field 'seed' is {metrics['seed']!r}, expected {seed}")
            policies = field(metrics, "policies", path)
            for policy in POLICIES:
                for metric, value in field(policies, policy, f"{path} policies").items():
                    try:
                        rows.append((experiment, seed, policy, metric, as_float(value)))
                    except (TypeError, ValueError):
                        raise InputError(f"{path}: policies.{policy}.{metric} is not a number: {value!r}") from None
    return pd.DataFrame(rows, columns=["experiment", "seed", "policy", "metric", "value"])


def ordered_metrics(metrics) -> list[str]:
    """Known metrics in METRIC_ORDER, then any others alphabetically."""
    known = [m for m in METRIC_ORDER if m in set(metrics)]
    return known + sorted(set(metrics) - set(known))


def summarize_metrics(config: dict, seed_metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and t interval over seeds for each (experiment, metric, policy).

    A metric that is null in every seed (a judge metric without a judge) keeps its row with n_seeds 0,
    so the table says plainly that it was not measured instead of dropping it.
    """
    rows = []
    for experiment, exp_rows in seed_metrics.groupby("experiment", sort=False):
        docs = documented(config, experiment)
        for metric in ordered_metrics(exp_rows["metric"].unique()):
            for policy in POLICIES:
                values = exp_rows.loc[(exp_rows.metric == metric) & (exp_rows.policy == policy), "value"].dropna()
                mean, low, high = t_interval(values.to_numpy(), CONFIDENCE)
                std = float(values.std(ddof=1)) if len(values) >= 2 else math.nan
                rows.append({
                    "experiment": experiment, "metric": metric, "policy": policy, "n_seeds": len(values),
                    "mean": mean, "std": std, "ci_low": low, "ci_high": high, "ci_type": CI_TYPE,
                    "documented": as_float(docs.get(f"{metric}_{policy}")),
                })  # fmt: skip
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def summarize_reward_models(config: dict, results_dir: Path) -> pd.DataFrame:
    """Pairwise accuracy per split with a Wilson interval, recomputed from the pair counts: the reward model's,
    then each baseline's on the same pairs (rm_metrics.json `baselines`)."""
    rows = []
    for experiment in config["experiments"]:
        path = results_dir / experiment / "reward" / "rm_metrics.json"
        rm = read_json(path)
        docs = documented(config, experiment)
        scorers = [(REWARD_MODEL, rm, str(path))]
        for name, result in (rm.get("baselines") or {}).items():
            scorers.append((result.get("title", name), result, f"{path} baselines.{name}"))
        for scorer, metrics, where in scorers:
            for split in SPLITS:
                counts = field(metrics, split, where)
                n_pairs = int(field(counts, "n_pairs", f"{where} {split}"))
                n_correct = int(field(counts, "n_correct", f"{where} {split}"))
                if not 0 <= n_correct <= n_pairs:
                    raise InputError(f"{where}: {split}.n_correct={n_correct} is not within 0..n_pairs={n_pairs}")
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
    path = evaluate_dir(results_dir, experiment, seed) / "samples.parquet"
    samples = read_table(path, SAMPLE_COLUMNS, kind="parquet")
    seeds_found = set(samples["seed"].unique().tolist())
    if seeds_found - {seed}:
        raise InputError(f"{path}: column 'seed' holds {sorted(seeds_found)}, expected only {seed}")
    policies_found = set(samples["policy"].unique().tolist())
    if not set(POLICIES) <= policies_found:
        raise InputError(f"{path}: column 'policy' must hold both 'base' and 'rlhf', found {sorted(policies_found)}")
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
            path = evaluate_dir(results_dir, experiment, seed) / "samples.parquet"
            if metric.startswith("judge_") and not has_judge(frame):
                raise InputError(f"{path}: metric '{metric}' needs a judge, but judge_label is empty in every row")
            values = per_sample_values(frame, metric)
            if values is None:  # corpus-level metric: no per-sample test
                continue
            if values.isna().any():
                raise InputError(f"{path}: per-sample values for '{metric}' contain NaN")
            rlhf, base = values[frame.policy == "rlhf"], values[frame.policy == "base"]
            stat, p = mann_whitney_one_sided(rlhf, base, alternative)
            rows.append((experiment, metric, "mann_whitney_u", str(seed), direction, stat, p, bool(p < ALPHA)))
        by_policy = {}
        for policy in POLICIES:
            values = seed_metrics[
                (seed_metrics.experiment == experiment)
                & (seed_metrics.metric == metric)
                & (seed_metrics.policy == policy)
            ].set_index("seed")["value"]
            for seed in seeds:
                if pd.isna(values.get(seed, math.nan)):
                    path = evaluate_dir(results_dir, experiment, seed) / "metrics.json"
                    raise InputError(f"{path}: policies.{policy}.{metric} is missing or null, but it is tested")
            by_policy[policy] = values.to_numpy()
        stat, p = welch_t(by_policy["rlhf"], by_policy["base"], alternative)
        rows.append((experiment, metric, "welch_t", "all", direction, stat, p, bool(p < ALPHA)))
    return rows


def run_tests(config: dict, seed_metrics: pd.DataFrame, results_dir: Path) -> pd.DataFrame:
    rows = []
    for experiment, exp_config in config["experiments"].items():
        rows.extend(experiment_tests(experiment, exp_config, config["seeds"], seed_metrics, results_dir))
    return pd.DataFrame(rows, columns=TEST_COLUMNS)


@contextmanager
def staged_outputs(out_dir: Path) -> Iterator[Path]:
    """Yield a temporary folder inside out_dir; on success move its entries into out_dir by rename.

    Renames within one folder are atomic, so a reader never sees a half-written file, and an error
    while writing leaves out_dir as it was (the staging folder is always removed).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    try:
        yield staging
        for item in sorted(staging.iterdir()):
            target = out_dir / item.name
            if item.is_dir() and target.is_dir():
                shutil.rmtree(target)
            os.replace(item, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def aggregate(config_path: Path, results_dir: Path, out_dir: Path) -> dict[str, pd.DataFrame]:
    """Compute all three tables (reading every input first), then write them together."""
    config = load_config(config_path)
    seed_metrics = load_seed_metrics(config, results_dir)
    tables = {
        "summary.csv": summarize_metrics(config, seed_metrics),
        "rm_summary.csv": summarize_reward_models(config, results_dir),
        "tests.csv": run_tests(config, seed_metrics, results_dir),
    }
    with staged_outputs(out_dir) as staging:
        for name, table in tables.items():
            table.to_csv(staging / name, index=False)
    return tables


def parse_args(argv: list[str] | None, description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", type=Path, required=True, help="resolved config: results/<profile>/config.json")
    parser.add_argument("--results-dir", type=Path, required=True, help="results/<profile>")
    parser.add_argument("--out-dir", type=Path, required=True, help="where to write the outputs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, "Statistics over seeds, reward-model accuracy intervals and one-sided tests.")
    try:
        tables = aggregate(args.config, args.results_dir, args.out_dir)
    except InputError as err:
        print(f"rlhf_bench.analysis.aggregate: error: {err}", file=sys.stderr)
        return 2
    n_rows = ", ".join(f"{name} ({len(table)} rows)" for name, table in tables.items())
    print(f"rlhf_bench.analysis.aggregate: wrote {n_rows} to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
