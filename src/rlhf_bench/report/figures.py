"""The report's figures: PPO curves, every seed's objective, lengths, reward against KL, judge labels and scores,
reward against judge."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from scipy.stats import spearmanr

from rlhf_bench.analysis.metrics import POLICIES, fmt
from rlhf_bench.report.inputs import Inputs
from rlhf_bench.report.markup import POLICY_NAMES, REWARD_UNITS

PALETTE = {"base": "#4C72B0", "RLHF": "#DD8452"}
BY_POLICY = {"hue": "policy", "hue_order": list(PALETTE), "palette": PALETTE}  # base vs RLHF, in PALETTE's colours
JUDGE_LABELS = ("negative", "neutral", "positive")
DPI = 110


MIN_WIDTH = 7.5  # inches: a one-experiment profile's figure (imdb-cpu) still fits its title, which names the profile


def new_figure(n_panels: int, n_rows: int = 1, height: float = 3.4) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(max(4.6 * n_panels, MIN_WIDTH), height * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_panels, squeeze=False)
    return fig, axes


def with_policy_names(samples: pd.DataFrame) -> pd.DataFrame:
    return samples.assign(policy=samples.policy.map(POLICY_NAMES))


def seed_greys(n_seeds: int) -> list:
    """One grey per seed, the lightest left out (it would vanish on white)."""
    return sns.color_palette("Greys", n_colors=n_seeds + 2)[2:]


def figure_ppo_curves(inp: Inputs) -> Figure:
    """Reward and KL per PPO step: a thin line per seed and the mean over seeds."""
    fig, axes = new_figure(len(inp.experiments), n_rows=2)
    greys = seed_greys(len(inp.seeds))
    for col, experiment in enumerate(inp.experiments):
        logs = inp.train_logs[inp.train_logs.experiment == experiment]
        reward = inp.ppo_reward(experiment)
        panels = (
            ("reward_mean", "reward", f"mean reward per batch\n({REWARD_UNITS.get(reward, reward or 'reward')})"),
            ("kl", "KL", "KL to base per response (nats)"),
        )
        for row, (column, name, label) in enumerate(panels):
            ax = axes[row, col]
            sns.lineplot(
                data=logs.assign(seed=logs.seed.map("seed {}".format)),
                x="step",
                y=column,
                hue="seed",
                units="seed",
                estimator=None,
                linewidth=0.8,
                palette=greys,
                ax=ax,
            )
            spread = logs.groupby("step")[column].agg(["mean", "min", "max"]).reset_index()
            ax.fill_between(
                spread.step,
                spread["min"],
                spread["max"],
                color="#C44E52",
                alpha=0.15,
                linewidth=0,
                label="range over seeds",
            )
            ax.plot(spread.step, spread["mean"], color="#C44E52", linewidth=2.2, label="mean over seeds")
            ax.set(xlabel="PPO step (batches)", ylabel=label, title=f"{experiment}: {name}")
            ax.legend(fontsize="small")
    fig.suptitle(f"PPO training curves, profile {inp.profile}")
    return fig


def figure_length_hist(inp: Inputs) -> Figure:
    """Word-count histograms of base vs RLHF generations, pooled over seeds."""
    fig, axes = new_figure(len(inp.experiments))
    for col, experiment in enumerate(inp.experiments):
        data = with_policy_names(inp.samples_of(experiment))
        spread = data.word_count.max() - data.word_count.min()
        ax = axes[0, col]
        sns.histplot(data=data, x="word_count", **BY_POLICY, element="step", discrete=bool(spread <= 60), ax=ax)
        ax.set(xlabel="response length (words)", ylabel="responses (count)", title=experiment)
    fig.suptitle(f"Response length, base vs RLHF (all seeds), profile {inp.profile}")
    return fig


def label_shares(samples: pd.DataFrame) -> pd.DataFrame:
    """Share of each judge label per (experiment, seed, policy), zero-filled for absent labels."""
    counts = (
        samples.groupby(["experiment", "seed", "policy"])
        .judge_label.value_counts(normalize=True)
        .unstack(fill_value=0.0)
        .reindex(columns=list(JUDGE_LABELS), fill_value=0.0)
    )
    return counts.stack().rename("share").reset_index()


def figure_judge_labels(inp: Inputs, experiments: list[str]) -> Figure:
    """Judge label shares base vs RLHF: bar = mean over seeds, whisker = min-max over seeds."""
    fig, axes = new_figure(len(experiments))
    shares = with_policy_names(label_shares(inp.samples[inp.samples.experiment.isin(experiments)]))
    shares["share"] *= 100
    for col, experiment in enumerate(experiments):
        sns.barplot(
            data=shares[shares.experiment == experiment],
            x="judge_label",
            y="share",
            order=list(JUDGE_LABELS),
            **BY_POLICY,
            errorbar=("pi", 100),
            capsize=0.1,
            ax=axes[0, col],
        )
        axes[0, col].set(xlabel="judge label", ylabel="share of responses (%)", title=experiment, ylim=(0, 100))
    fig.suptitle(f"Judge labels, base vs RLHF (mean over seeds, whiskers min-max), profile {inp.profile}")
    return fig


def figure_judge_scores(inp: Inputs, experiments: list[str]) -> Figure:
    """Distribution of the judge's positivity score, base vs RLHF, pooled over seeds."""
    fig, axes = new_figure(len(experiments))
    for col, experiment in enumerate(experiments):
        ax = axes[0, col]
        sns.histplot(
            data=with_policy_names(inp.samples_of(experiment)),
            x="judge_score",
            **BY_POLICY,
            stat="percent",
            common_norm=False,
            bins=20,
            binrange=(0, 1),
            element="step",
            ax=ax,
        )
        ax.set(xlabel="judge score (positivity, 0-1)", ylabel="responses per policy (%)", title=experiment)
    fig.suptitle(f"Judge score distribution, base vs RLHF (all seeds), profile {inp.profile}")
    return fig


def figure_seed_spread(inp: Inputs) -> Figure:
    """Every seed's held-out objective, base and RLHF joined per seed (the same prompts), beside the mean and its
    interval: the spread itself, not only an interval of the mean (Henderson et al. 2018; Patterson et al. 2024)."""
    fig, axes = new_figure(len(inp.experiments))
    greys = seed_greys(len(inp.seeds))
    names = [POLICY_NAMES[p] for p in POLICIES]
    for col, experiment in enumerate(inp.experiments):
        ax = axes[0, col]
        objective = inp.config["experiments"][experiment]["objective"]
        metric = objective["metric"]
        rows = inp.seed_metrics[(inp.seed_metrics.experiment == experiment) & (inp.seed_metrics.metric == metric)]
        values = rows.pivot(index="seed", columns="policy", values="value").reindex(columns=list(POLICIES))
        for colour, (seed, pair) in zip(greys, values.iterrows(), strict=False):
            ax.plot(names, pair.to_numpy(), color=colour, marker="o", linewidth=1, label=f"seed {seed}")
        for x, policy in enumerate(POLICIES):
            row = inp.summary[
                (inp.summary.experiment == experiment) & (inp.summary.metric == metric) & (inp.summary.policy == policy)
            ]
            if row.empty or np.isnan(row.ci_low.iloc[0]):
                continue
            mean, low, high = row[["mean", "ci_low", "ci_high"]].iloc[0]
            ax.errorbar(x + 0.12, mean, yerr=[[mean - low], [high - mean]], fmt="D", capsize=4,
                        color=PALETTE[names[x]], label=f"{names[x]} mean, t interval")  # fmt: skip
        poi = inp.improvement[(inp.improvement.experiment == experiment) & (inp.improvement.metric == metric)]
        title = f"{experiment} (goal: {objective['direction']})"
        if not poi.empty:
            title += f"\nP(RLHF better) {fmt(poi.probability_of_improvement.iloc[0], 2)}"
        ax.set(xlabel="", ylabel=metric, title=title)
        ax.set_xlim(-0.4, 1.5)
        ax.legend(fontsize="x-small")
    fig.suptitle(f"The objective per seed, base vs RLHF on the same held-out prompts, profile {inp.profile}")
    return fig


def figure_reward_vs_kl(inp: Inputs) -> Figure:
    """The frontier view of the DPO paper (Rafailov et al. 2023, fig. 2): reward against KL to the base policy.

    Lines: each seed's PPO trajectory (train_log.csv, a 5-step rolling mean, so the path is readable);
    markers: where each seed's RLHF policy ends on the held-out prompts (evaluate), beside the base policy.
    """
    fig, axes = new_figure(len(inp.experiments))
    greys = seed_greys(len(inp.seeds))
    for col, experiment in enumerate(inp.experiments):
        ax = axes[0, col]
        logs = inp.train_logs[inp.train_logs.experiment == experiment]
        for colour, (seed, log) in zip(greys, logs.groupby("seed"), strict=False):
            smooth = log.sort_values("step")[["kl", "reward_mean"]].rolling(5, min_periods=1).mean()
            ax.plot(smooth.kl, smooth.reward_mean, color=colour, linewidth=0.9, label=f"seed {seed} (training)")
        held_out = inp.samples_of(experiment)
        per_seed = held_out.groupby(["policy", "seed"]).agg(kl=("kl", "mean"), reward=("reward", "mean"))
        for policy, marker in (("base", "o"), ("rlhf", "*")):
            points = per_seed.loc[policy]
            ax.scatter(
                points.kl,
                points.reward,
                marker=marker,
                s=90 if marker == "*" else 40,
                zorder=3,
                color=PALETTE[POLICY_NAMES[policy]],
                label=f"{POLICY_NAMES[policy]} (held-out, per seed)",
            )
        reward = inp.ppo_reward(experiment)
        ax.set(
            xlabel="KL to base per response (nats)",
            ylabel=f"mean reward ({REWARD_UNITS.get(reward, reward)})",
            title=experiment,
        )
        ax.legend(fontsize="x-small")
    fig.suptitle(f"Reward vs KL: training paths and held-out end points, profile {inp.profile}")
    return fig


def figure_reward_vs_judge(inp: Inputs, experiments: list[str]) -> Figure:
    """Reward-model score against the independent judge's score, per sample: does the policy fool the
    reward model? RLHF samples high on reward but not on the judge are the reward hacks."""
    fig, axes = new_figure(len(experiments))
    for col, experiment in enumerate(experiments):
        data = with_policy_names(inp.samples_of(experiment))
        ax = axes[0, col]
        sns.scatterplot(data=data, x="reward", y="judge_score", **BY_POLICY, alpha=0.5, s=14, linewidth=0, ax=ax)
        rlhf = data[data.policy == "RLHF"]
        rho = spearmanr(rlhf.reward, rlhf.judge_score).statistic if len(rlhf) > 2 else float("nan")
        ax.set(
            xlabel="reward-model score (logit)",
            ylabel="judge score (positivity, 0-1)",
            title=f"{experiment} (RLHF Spearman ρ = {fmt(rho, 2)})",
        )
    fig.suptitle(f"Reward model vs independent judge, per sample (all seeds), profile {inp.profile}")
    return fig


def render_figures(inp: Inputs) -> list[tuple[str, str, Figure]]:
    """(file name, caption, figure) for every figure the inputs support, in report order."""
    figures = [
        (
            "ppo_curves.png",
            "Reward and KL per PPO step: thin grey lines are seeds, the red line their mean, the band their range.",
            figure_ppo_curves(inp),
        ),
        (
            "seed_spread.png",
            "The objective of every seed: base and RLHF of one seed joined by a line; diamonds the mean over seeds "
            "with its t interval. P(RLHF better): how often an RLHF seed beats a base seed (improvement.csv).",
            figure_seed_spread(inp),
        ),
        ("length_hist.png", "Response length in words, base vs RLHF, pooled over seeds.", figure_length_hist(inp)),
        (
            "reward_vs_kl.png",
            "Reward against KL to the base policy: each seed's PPO path (5-step rolling mean) and where base and "
            "RLHF policies end on the held-out prompts.",
            figure_reward_vs_kl(inp),
        ),
    ]
    with_judge = inp.judged()
    if with_judge:
        figures += [
            (
                "judge_labels.png",
                "Judge label shares, base vs RLHF: bars are the mean over seeds, whiskers the range over seeds.",
                figure_judge_labels(inp, with_judge),
            ),
            (
                "judge_scores.png",
                "Judge score (positivity) distribution, base vs RLHF, pooled over seeds.",
                figure_judge_scores(inp, with_judge),
            ),
        ]
    # A reward model that a judge can check: where the policy may have fooled it.
    fooled = [e for e in with_judge if inp.ppo_reward(e) == "reward_model"]
    if fooled:
        figures.append(
            (
                "reward_vs_judge.png",
                "Reward-model score vs judge score per sample: RLHF samples that the reward model rates high and "
                "the judge does not are reward hacks.",
                figure_reward_vs_judge(inp, fooled),
            )
        )
    from rlhf_bench.report.frontier import frontier_figures

    return figures + frontier_figures(inp)
