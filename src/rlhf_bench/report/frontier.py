"""The report's Frontier section: every arm on reward and objective against KL (Rafailov et al. 2023, figure 2
left), proxy against gold over sqrt(KL) (Gao et al. 2022, figure 1), and each arm at a matched KL."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rlhf_bench.analysis.frontier import ARMS
from rlhf_bench.analysis.metrics import fmt, fmt_p
from rlhf_bench.report.inputs import Inputs
from rlhf_bench.report.markup import LEVEL, REWARD_UNITS, code, fmt_ci, section, table

ARM_NAMES = {"base": "base policy", "ppo": "PPO", "best_of_n": "best-of-n", "dpo": "DPO"}
ARM_COLOURS = {"base": "#4C72B0", "ppo": "#DD8452", "best_of_n": "#55A868", "dpo": "#8172B3"}
SETTING_NAMES = {"step": "step", "n": "n", "beta": "β"}


def frontier_experiments(inp: Inputs) -> list[str]:
    return [] if inp.frontier is None else list(dict.fromkeys(inp.frontier["experiment"]))


def arm_curve(points: pd.DataFrame, y: str) -> pd.DataFrame:
    """One arm's curve over its settings: mean KL and mean, lowest and highest `y` over seeds, by KL."""
    curve = points.groupby("value").agg(kl=("kl", "mean"), mean=(y, "mean"), low=(y, "min"), high=(y, "max"))
    return curve.sort_values("kl")


def with_base(curve: pd.DataFrame, base: pd.DataFrame, y: str) -> pd.DataFrame:
    """A trained arm's curve starts at the base policy (KL 0); best-of-n's n = 1 is the base policy already."""
    start = pd.DataFrame({"kl": [0.0], "mean": [base[y].mean()], "low": [base[y].min()], "high": [base[y].max()]})
    return pd.concat([start, curve], ignore_index=True)


def draw_arms(ax, points: pd.DataFrame, y: str, x=lambda kl: kl, linestyle: str = "-"):
    base = points[points.arm == "base"]
    for arm in ARMS[1:]:
        arm_points = points[points.arm == arm]
        if arm_points.empty:
            continue
        curve = arm_curve(arm_points, y)
        if arm != "best_of_n":
            curve = with_base(curve, base, y)
        colour = ARM_COLOURS[arm]
        ax.plot(x(curve.kl), curve["mean"], marker="o", markersize=3.5, color=colour, linestyle=linestyle,
                label=ARM_NAMES[arm])  # fmt: skip
        ax.fill_between(x(curve.kl), curve.low, curve.high, color=colour, alpha=0.15, linewidth=0)
    ax.scatter([0.0], [base[y].mean()], color=ARM_COLOURS["base"], zorder=4, s=30, label="base policy")


def objective_label(points: pd.DataFrame) -> str:
    return str(points["objective_metric"].iloc[0])


def figure_frontier(inp: Inputs) -> Figure:
    """Per experiment: the objective (top) and the proxy reward (bottom) against KL, each arm a line through the
    mean over seeds of its settings, the band the seeds' range."""
    from rlhf_bench.report.figures import new_figure

    experiments = frontier_experiments(inp)
    fig, axes = new_figure(len(experiments), n_rows=2)
    for col, experiment in enumerate(experiments):
        points = inp.frontier[inp.frontier.experiment == experiment]
        reward = inp.ppo_reward(experiment)
        for row, (y, ylabel) in enumerate(
            (("objective", objective_label(points)), ("reward_mean", REWARD_UNITS.get(reward, reward)))
        ):
            ax = axes[row, col]
            draw_arms(ax, points, y)
            ax.set(xlabel="KL(π ‖ π_base) per response (nats)", ylabel=ylabel, title=experiment if row == 0 else "")
            ax.legend(fontsize="x-small")
    fig.suptitle(f"Frontier: objective and reward against KL, every arm, profile {inp.profile}")
    return fig


def figure_proxy_gold(inp: Inputs) -> Figure:
    """Gao et al.'s view: proxy (the reward optimised, left axis, solid) and gold (the objective, right axis,
    dashed) against sqrt(KL): where the proxy keeps rising and the gold does not, the reward is being hacked."""
    from rlhf_bench.report.figures import new_figure

    experiments = frontier_experiments(inp)
    fig, axes = new_figure(len(experiments), height=4.0)
    for col, experiment in enumerate(experiments):
        points = inp.frontier[inp.frontier.experiment == experiment]
        ax = axes[0, col]
        gold = ax.twinx()
        draw_arms(ax, points, "reward_mean", x=np.sqrt)
        draw_arms(gold, points, "objective", x=np.sqrt, linestyle="--")
        reward = inp.ppo_reward(experiment)
        ax.set(xlabel="sqrt(KL) (sqrt nats)", ylabel=f"proxy: {REWARD_UNITS.get(reward, reward)}", title=experiment)
        gold.set_ylabel(f"gold: {objective_label(points)}")
        ax.legend(fontsize="x-small", title="solid: proxy, dashed: gold", title_fontsize="x-small")
    fig.suptitle(f"Proxy and gold against sqrt(KL) (Gao et al. 2022), profile {inp.profile}")
    return fig


def frontier_figures(inp: Inputs) -> list[tuple[str, str, Figure]]:
    if not frontier_experiments(inp):
        return []
    return [
        (
            "frontier.png",
            "The frontier: objective (top) and reward (bottom) against KL to the base policy; each arm's line joins "
            "the mean over seeds of its settings (PPO's steps, best-of-n's n, DPO's β), the band the seeds' range.",
            figure_frontier(inp),
        ),
        (
            "frontier_proxy_gold.png",
            "Proxy reward (solid, left axis) and gold objective (dashed, right axis) against sqrt(KL): a proxy that "
            "keeps rising while the gold falls is reward hacking made visible.",
            figure_proxy_gold(inp),
        ),
    ]


def setting_cell(row: pd.Series) -> str:
    if row.arm == "base":
        return "–"
    value = int(row.value) if float(row.value).is_integer() else row.value
    return f"{SETTING_NAMES.get(row.setting, row.setting)} = {fmt(value)}"


def points_table(points: pd.DataFrame) -> list[str]:
    grouped = points.groupby(["arm", "setting", "value"], sort=False)
    rows = []
    for (_, _, _), group in grouped:
        first = group.iloc[0]
        kl = fmt(group.kl.mean())
        if first.kl_method == "analytic":
            kl += f" (MC {fmt(group.kl_monte_carlo.mean())})"
        means = [fmt(group[name].mean()) for name in ("reward_mean", "objective", "perplexity", "distinct_2")]
        rows.append([ARM_NAMES[first.arm], setting_cell(first), str(len(group)), kl, *means])
    header = ["arm", "setting", "seeds", "KL (nats)", "reward", objective_label(points), "perplexity", "distinct-2"]
    return table(header, rows)


def matched_sentence(matched: pd.DataFrame) -> str:
    at = float(matched["matched_kl"].iloc[0])
    if not at > 0 or not matched["best_arm"].iloc[0]:
        return "No matched KL: an arm never leaves the base policy, so no arm is compared."
    parts = [
        f"{ARM_NAMES[r.arm]} {fmt_ci(r.objective, r.ci_low, r.ci_high)}"
        for r in matched.sort_values("objective", ascending=matched["direction"].iloc[0] == "decrease").itertuples()
    ]
    best = ARM_NAMES[matched["best_arm"].iloc[0]]
    tests = [
        f"vs {ARM_NAMES[r.arm]} p = {fmt_p(r.p_vs_best)} (Holm {fmt_p(r.p_vs_best_holm)})"
        for r in matched.itertuples()
        if not math.isnan(r.p_vs_best)
    ]
    verdict = f"{best} is best by mean" + (f" ({'; '.join(tests)}, Welch's t over seeds)" if tests else "")
    return f"At KL {fmt(at)} nats, {code(matched['objective_metric'].iloc[0])}: {', '.join(parts)}. {verdict}."


def dpo_pairs_note(inp: Inputs, experiment: str) -> str:
    records = [r for label, r in inp.provenance if label.startswith(f"{experiment}/dpo/") and "pairs" in r]
    if not records:
        return ""
    pairs = records[0]["pairs"]
    if pairs.get("source", "").startswith("dpo_pairs"):
        made = next((r for label, r in inp.provenance if label == f"{experiment}/dpo_pairs"), {}).get("pairs", {})
        return (
            f"DPO's pairs for {code(experiment)} share a prompt by construction, as the DPO paper built IMDB's: two "
            f"base-policy answers to each of {made.get('prompts', 'n/a')} PPO prompts, the one of higher reward "
            f"chosen; {made.get('pairs', 'n/a')} pairs, {made.get('tied_left_out', 'n/a')} tied pairs left out "
            "(dpo_pairs/pairs.jsonl, its sha256 in provenance)."
        )
    return (
        f"DPO's pairs for {code(experiment)}: the data stage's {pairs.get('pairs', 'n/a')} training pairs, "
        f"{pairs.get('used', 'n/a')} used ({pairs.get('prompt_differs', 0)} whose texts differ before the answer and "
        f"{pairs.get('identical', 0)} identical ones left out)."
    )


def section_frontier(inp: Inputs, captions: list[tuple[str, str]], first_number: int) -> list[str]:
    """Is PPO worth it here? Every arm's points, the figures, and each arm at a matched KL."""
    experiments = frontier_experiments(inp)
    if not experiments:
        return []
    lines = section(
        "Frontier",
        "Would a simpler method have done as well at the same distance from the base policy? Every arm's "
        "policies answer the same held-out prompts, scored by the same reward and judge, with KL to the same base "
        "policy: PPO along its path (its saved policies at fractions of its steps, and its final one), best-of-n of "
        "the base policy by the reward (no training), and DPO (trl's DPOTrainer) over β. KL is the Monte-Carlo "
        "mean of log π(y) - log π_base(y) over the held-out answers, except for best-of-n, whose frontier KL is the "
        "closed form log n - (n - 1)/n (exact where rewards never tie, an upper bound where they do; its "
        "Monte-Carlo estimate over each prompt's draws is shown beside it as MC). Objective values at a matched KL "
        f"are interpolated along each seed's curve from the base policy, with {LEVEL} bootstrap intervals over "
        "seeds; the best arm is tested against each other arm by Welch's t over seeds, Holm-adjusted across "
        "experiments.",
    )
    for number, (name, caption) in enumerate(captions, start=first_number):
        lines += [f"![Figure {number}](figures/{name})", "", f"*Figure {number}: {caption}*", ""]
    for experiment in experiments:
        points = inp.frontier[inp.frontier.experiment == experiment]
        lines += [f"### {code(experiment)}", ""]
        matched = inp.frontier_matched[inp.frontier_matched.experiment == experiment]
        if not matched.empty:
            lines += [matched_sentence(matched), ""]
        note = dpo_pairs_note(inp, experiment)
        if note:
            lines += [note, ""]
        lines += points_table(points)
    return lines
