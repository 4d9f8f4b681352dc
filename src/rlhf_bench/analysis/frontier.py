"""Frontier stage: every arm's policies on one reward-vs-KL frontier per experiment (Rafailov et al. 2023,
figure 2 left; Gao et al. 2022), and which arm is best at a KL every arm reaches.

Reads the evaluate stage's samples (the base policy, at KL 0, and PPO's final policy) and every frontier arm's
(ppo_path, best_of_n, dpo), all measured alike on the same held-out prompts, and writes:

- frontier.csv          one row per point: experiment, arm, setting and its value (n, beta, step), seed; KL with its
                        t interval over prompts and the method (monte_carlo: mean of log pi(y) - log pi_base(y);
                        analytic: best-of-n's log n - (n-1)/n, with the Monte-Carlo estimate beside it); the reward
                        (the proxy PPO optimises), the objective (the gold measure: the experiment's objective
                        metric, by the judge or the word count) and the other per-policy metrics
- frontier_matched.csv  per experiment and arm: the objective at one matched KL, interpolated along each seed's
                        curve (from the base policy at 0), with a bootstrap interval over seeds; the best arm
                        against each other arm by Welch's t over seeds, Holm-adjusted across the experiments

The matched KL is the largest every curve of every arm reaches (the smallest of their largest KLs), so nothing is
extrapolated; it is 0 (and the comparison is not made) where an arm never leaves the base policy.

    python -m rlhf_bench.analysis.frontier --config results/smoke/config.json \
        --results-dir results/smoke --out-dir results/smoke
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from rlhf_bench.analysis.metrics import CONFIDENCE, DIRECTIONS, analytic_kl, policy_metrics
from rlhf_bench.analysis.power import holm
from rlhf_bench.analysis.stats import t_interval, welch_t
from rlhf_bench.io import StageError, read_table, verified
from rlhf_bench.layout import ALL_SEEDS, FRONTIER_TABLES, Layout, frontier_stages
from rlhf_bench.runtime import Stage

ARMS = ("base", "ppo", "best_of_n", "dpo")  # the order of the report's lines and tables
POINT_METRICS = (
    "reward_mean", "judge_score_mean", "judge_negative_ratio", "judge_positive_ratio", "length_mean", "perplexity",
    "distinct_2",
)  # fmt: skip
FRONTIER_COLUMNS = (
    "experiment", "arm", "setting", "value", "seed", "n_prompts", "kl", "kl_low", "kl_high", "kl_method",
    "kl_monte_carlo", "objective_metric", "objective", *POINT_METRICS,
)  # fmt: skip
MATCHED_COLUMNS = (
    "experiment", "objective_metric", "direction", "matched_kl", "arm", "n_seeds", "objective", "ci_low", "ci_high",
    "best_arm", "p_vs_best", "p_vs_best_holm",
)  # fmt: skip
BOOTSTRAP_RESAMPLES = 2000
SAMPLE_COLUMNS = ("seed", "prompt_id", "reward", "judge_score", "judge_label", "word_count", "n_tokens", "kl",
                  "logprob_base", "response")  # fmt: skip


def point_row(samples: pd.DataFrame, experiment: str, objective: str, arm: str, setting: str, value, seed: int):
    """One frontier point from its samples, with every metric as evaluate computes it."""
    metrics = policy_metrics(samples, has_judge=samples["judge_label"].fillna("").astype(str).ne("").any())
    mc, low, high = t_interval(samples["kl"].to_numpy(dtype=float), CONFIDENCE)
    if arm == "best_of_n":
        kl, method = analytic_kl(int(value)), "analytic"
        low = high = kl
    else:
        kl, method = mc, "monte_carlo"
    return {
        "experiment": experiment, "arm": arm, "setting": setting, "value": value, "seed": seed,
        "n_prompts": len(samples), "kl": kl, "kl_low": low, "kl_high": high, "kl_method": method,
        "kl_monte_carlo": mc, "objective_metric": objective, "objective": metrics[objective],
        **{name: metrics[name] for name in POINT_METRICS},
    }  # fmt: skip


def read_samples(path: str | Path, seed: int | None) -> pd.DataFrame:
    """A stage's samples, verified; those of one seed's folder hold only that seed."""
    samples = read_table(verified(path), SAMPLE_COLUMNS, kind="parquet")
    if seed is not None and set(samples["seed"].unique().tolist()) - {seed}:
        raise StageError(f"{path}: column 'seed' holds {sorted(set(samples['seed']))}, expected only {seed}")
    return samples


def frontier_points(config: dict, results_dir: Path) -> pd.DataFrame:
    layout = Layout(config, str(results_dir))
    rows = []
    for name, exp in config["experiments"].items():
        arms = [stage for stage in frontier_stages(exp) if stage != "dpo_pairs"]
        if not arms:
            continue
        objective = exp["objective"]["metric"]
        # Stages of every seed in one job wrote one table: read (and verify) it once.
        arm_samples = {stage: read_samples(layout.samples(name, stage), None) for stage in arms if stage in ALL_SEEDS}
        for seed in config["seeds"]:
            evaluated = read_samples(layout.samples(name, "evaluate", seed), seed)
            final = ("rlhf", "ppo", "step", exp["ppo"]["steps"])
            for policy, arm, setting, value in (("base", "base", "", 0), final):
                policy_samples = evaluated[evaluated.policy == policy]
                rows.append(point_row(policy_samples, name, objective, arm, setting, value, seed))
            for stage in arms:
                if stage in ALL_SEEDS:
                    samples = arm_samples[stage][arm_samples[stage].seed == seed]
                else:
                    samples = read_samples(layout.samples(name, stage, seed), seed)
                for (arm, setting, value), points in samples.groupby(["arm", "setting", "value"], sort=False):
                    rows.append(point_row(points, name, objective, arm, setting, value, seed))
    frame = pd.DataFrame(rows, columns=FRONTIER_COLUMNS)
    order = {arm: i for i, arm in enumerate(ARMS)}
    return frame.sort_values(["experiment", "arm", "value", "seed"], key=lambda c: c.map(order) if c.name == "arm"
                             else c, kind="stable").reset_index(drop=True)  # fmt: skip


def interpolate(curve: pd.DataFrame, base: pd.Series, at: float, metric: str = "objective") -> float:
    """`metric` of one seed's curve at KL `at`: linear between its points sorted by KL, from the base policy at 0."""
    kl = np.concatenate([[0.0], curve["kl"].to_numpy(dtype=float)])
    values = np.concatenate([[float(base[metric])], curve[metric].to_numpy(dtype=float)])
    order = np.argsort(kl, kind="stable")
    return float(np.interp(at, kl[order], values[order]))


def bootstrap_mean_interval(values: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the mean over seeds, resampling seeds with replacement."""
    if len(values) < 2:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (BOOTSTRAP_RESAMPLES, len(values)))].mean(axis=1)
    tail = (1 - CONFIDENCE) / 2
    return (float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail)))


def arm_curves(points: pd.DataFrame) -> dict[str, dict[int, pd.DataFrame]]:
    """Per arm but the base policy, per seed: the points of its curve."""
    return {
        arm: {seed: group for seed, group in frame.groupby("seed")}
        for arm, frame in points[points.arm != "base"].groupby("arm", sort=False)
    }


def matched(config: dict, points: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for name, exp_points in points.groupby("experiment", sort=False):
        direction = config["experiments"][name]["objective"]["direction"]
        base = {seed: row.iloc[0] for seed, row in exp_points[exp_points.arm == "base"].groupby("seed")}
        curves = arm_curves(exp_points)
        at = max(0.0, min(float(curve["kl"].max()) for seeds in curves.values() for curve in seeds.values()))
        values = {
            arm: np.array([interpolate(curve, base[seed], at) for seed, curve in seeds.items()])
            for arm, seeds in curves.items()
        }
        pick = np.nanargmax if direction == "increase" else np.nanargmin
        arms = list(values)
        best = arms[int(pick([v.mean() for v in values.values()]))] if at > 0 else ""
        for arm, seed_values in values.items():
            low, high = bootstrap_mean_interval(seed_values)
            p = math.nan
            if best and arm != best and len(seed_values) > 1 and len(values[best]) > 1:
                p = welch_t(values[best], seed_values, DIRECTIONS[direction])[1]
            rows.append({
                "experiment": name, "objective_metric": exp_points["objective_metric"].iloc[0],
                "direction": direction, "matched_kl": at, "arm": arm, "n_seeds": len(seed_values),
                "objective": float(seed_values.mean()), "ci_low": low, "ci_high": high, "best_arm": best,
                "p_vs_best": p,
            })  # fmt: skip
    table = pd.DataFrame(rows, columns=MATCHED_COLUMNS)
    # Holm across every comparison of every experiment: one family of "the best arm beats this one" tests.
    table["p_vs_best_holm"] = holm(table["p_vs_best"].tolist()) if len(table) else []
    return table


def frontier(config: dict, results_dir: Path) -> dict[str, pd.DataFrame]:
    """frontier.csv and frontier_matched.csv, by file name."""
    points = frontier_points(config, results_dir)
    return dict(zip(FRONTIER_TABLES, (points, matched(config, points)), strict=True))


def main(argv: list[str] | None = None) -> int:
    stage = Stage("frontier", "Every arm on one reward-vs-KL frontier per experiment, and the best at matched KL.")
    stage.add_results_args()

    def body(run):
        stage.write_tables(run, frontier(run.config.raw, run.args.results_dir))

    return stage.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
