"""The report's result sections: abstract, warning, the two tables, figures, claims and sample generations."""

from __future__ import annotations

import math

import pandas as pd

from rlhf_bench.analysis.aggregate import REWARD_MODEL, per_sample_values
from rlhf_bench.analysis.metrics import ALPHA, NOT_DETECTABLE, POLICIES, VERDICTS, fmt, fmt_p
from rlhf_bench.analysis.proportions import PER_SAMPLE_TESTS
from rlhf_bench.analysis.stats import cliffs_delta, cohens_d
from rlhf_bench.report.inputs import Inputs
from rlhf_bench.report.markup import LEVEL, NONE, POLICY_NAMES, code, fmt_ci, inside, section, table, text
from rlhf_bench.report.sections_setup import not_comparable_reason

SAMPLE_CHARS = 300
SAMPLES_PER_SEED = 2


def summary_row(inp: Inputs, experiment: str, metric: str, policy: str) -> pd.Series | None:
    rows = inp.summary[
        (inp.summary.experiment == experiment) & (inp.summary.metric == metric) & (inp.summary.policy == policy)
    ]
    return None if rows.empty else rows.iloc[0]


def test_names(tests: pd.DataFrame) -> str:
    """The per-sample tests of some tests.csv rows in words ("Fisher exact")."""
    return "/".join(PER_SAMPLE_TESTS[name] for name in sorted(set(tests.test)))


def tests_for(inp: Inputs, experiment: str, metric: str) -> pd.DataFrame:
    return inp.tests[(inp.tests.experiment == experiment) & (inp.tests.metric == metric)]


def verdict(welch: pd.DataFrame) -> str:
    """Plain-words result of the over-seeds Welch test of the objective."""
    if welch.empty or math.isnan(welch.iloc[0].p_value):
        return (
            "no test over seeds was possible (fewer than two seeds, no variance across seeds, or the metric is "
            "missing in a seed's metrics.json)"
        )
    p = welch.iloc[0].p_value
    outcome = "**moved significantly" if p < ALPHA else "**did not move significantly"
    return f"one-sided Welch t over seed means p = {fmt_p(p)}: {outcome} in the documented direction**"


def section_title(inp: Inputs) -> list[str]:
    return [f"# {text(inp.title)}", ""]


# The verdict card's colours, by verdict (the HTML; the PDF's table cells are text).
VERDICT_COLOURS = {
    "REPRODUCED": "#c8e6c9", "NOT REPRODUCED": "#ffcdd2", "INCONCLUSIVE": "#fff3c4", "NOT COMPARABLE": "#e0e0e0",
    "NOT RUN": "#eeeeee",
}  # fmt: skip


def short_reason(c) -> str:
    """The reason's verdict clause ('interval too wide to decide'), without the numbers the card shows beside it."""
    reason = str(c.reason)
    if c.verdict == "NOT COMPARABLE":
        reason = reason.split(f"as measured: {c.statistical_verdict}: ", 1)[-1]
        lead = "not the documented setting; as measured, "
    else:
        lead = ""
    # The clause alone: verdict_notes adds the seeds that would decide, which the claims stage also writes after it.
    return (
        lead
        + reason.split(": ", 1)[0].split("; about ", 1)[0].split("; at the observed spread", 1)[0]
        + (verdict_notes(c))
    )


def section_verdict_card(inp: Inputs) -> list[str]:
    """One row per claim, coloured by verdict: what a reader came for, before anything else."""
    if inp.claims is None:
        return []
    rows = []
    for c in inp.claims.itertuples():
        colour = VERDICT_COLOURS.get(c.verdict, "#ffffff")
        verdict = f'<span style="background:{colour};padding:0 0.3em">**{c.verdict}**</span>'
        ours = fmt_ci(c.estimate, c.ci_low, c.ci_high) if pd.notna(getattr(c, "estimate", math.nan)) else NONE
        documented = fmt(c.documented) if pd.notna(getattr(c, "documented", math.nan)) else NONE
        claim = code(c.claim_id) + (" (required)" if str(c.required).lower() == "true" else "")
        rows.append([claim, verdict, documented, ours, text(short_reason(c), limit=200)])
    lines = [f"**Verdicts:** {claims_abstract(inp)[0]}", ""]
    return (
        lines
        + table(["claim", "verdict", "documented", f"ours [{LEVEL}]", "why"], rows)
        + [
            "Every claim's definition, tests and p-values: the appendix (Claims in full).",
            "",
        ]
    )


def section_abstract(inp: Inputs) -> list[str]:
    seeds = ", ".join(str(s) for s in inp.seeds)
    lines = [
        "## Abstract",
        "",
        (
            f"Profile {code(inp.profile)} ran {len(inp.experiments)} experiment(s), each with a reward model "
            f"and PPO with {len(inp.seeds)} seed(s) ({seeds}); base and RLHF policies were evaluated on the "
            f"same held-out prompts. Means are over seeds with a t {LEVEL} confidence interval. For each "
            f"experiment, whether the PPO objective moved in the documented direction:"
        ),
        "",
    ]
    for experiment, exp in inp.config["experiments"].items():
        metric, direction = exp["objective"]["metric"], exp["objective"]["direction"]
        base, rlhf = (summary_row(inp, experiment, metric, p) for p in POLICIES)
        tests = tests_for(inp, experiment, metric)
        welch = tests[tests.test == "welch_t"]
        per_seed = tests[tests.test.isin(PER_SAMPLE_TESTS)]
        moved = ""
        if base is not None and rlhf is not None:
            moved = (
                f" it went from {fmt_ci(base['mean'], base.ci_low, base.ci_high)} (base) to "
                f"{fmt_ci(rlhf['mean'], rlhf.ci_low, rlhf.ci_high)} (RLHF);"
            )
        per_seed = (
            f"; per-seed {test_names(per_seed)} p < {ALPHA} in {int(per_seed.significant.sum())} of "
            f"{len(per_seed)} seeds"
            if len(per_seed)
            else ""
        )
        lines.append(
            f"- {code(experiment)}: the objective {code(metric)} should {direction};{moved} {verdict(welch)}{per_seed}."
        )
    return lines + [""]


def section_warning(config: dict) -> list[str]:
    """The comparability warning, stated before any number can be read as a reproduction."""
    if config.get("comparable_to_documented", False):
        return []
    reason = not_comparable_reason(config, "the profile differs from the documented runs in models or data")
    return [
        f"**Warning:** {text(config.get('profile', ''))} numbers are not comparable to the documented ones: "
        f"{text(reason)}.",
        "",
    ]


# ------------------------------------------------------------------------------------------------ claims


def verdict_counts(claims: pd.DataFrame, column: str) -> str:
    counts = claims[column].value_counts()
    return ", ".join(f"{int(counts[v])} {v}" for v in VERDICTS if v in counts)


def claims_abstract(inp: Inputs) -> list[str]:
    if inp.claims is None:
        return ["No claims.csv in this bundle: the documented claims were not checked (run the `claims` rule).", ""]
    claims = inp.claims
    reproduced = int((claims.verdict == "REPRODUCED").sum())
    line = f"**{reproduced} of {len(claims)} documented claims reproduced** ({verdict_counts(claims, 'verdict')})."
    if (claims.verdict == "NOT COMPARABLE").any():
        line += (
            f" Taken at face value, the numbers of this run would give: "
            f"{verdict_counts(claims, 'statistical_verdict')}; the Claims section lists each."
        )
    return [line, ""]


def verdict_notes(c) -> str:
    """', holds in 0.76 of reruns with 3 seeds; about 6 seeds would decide' from claims.csv (older bundles: '')."""
    notes = []
    stability, need = getattr(c, "verdict_stability", math.nan), getattr(c, "n_to_decide", math.nan)
    unit = "pairs" if c.test == "proportion_equivalence" else "seeds"
    if pd.notna(stability):
        have = getattr(c, "n_samples" if unit == "pairs" else "n_seeds", math.nan)
        notes.append(f"holds in {stability:.2f} of reruns with {fmt(have)} {unit}")
    if pd.notna(need):
        notes.append(f"about {fmt(need)} {unit} would decide at 80% power" if math.isfinite(need) else "")
    notes = [n for n in notes if n]
    return f", {'; '.join(notes)}" if notes else ""


def mde_cell(mde: float) -> str:
    """claims.csv writes inf where no effect within the metric's bounds is detectable."""
    return NOT_DETECTABLE if isinstance(mde, float) and math.isinf(mde) else fmt(mde)


def section_claims(inp: Inputs) -> list[str]:
    if inp.claims is None:
        return section("Claims", "No claims.csv in this bundle (run the `claims` rule: config/claims.yaml).")
    lines = section(
        "Claims in full (appendix)",
        "Every quantitative or testable claim of the write-ups (config/claims.yaml), with its operational "
        f"definition, the documented value, ours ({LEVEL} interval over seeds, or Wilson for accuracies), the "
        "verdict and its reason. Support and refute tests are Holm-corrected across the claims of this report; "
        "`mde` is the smallest effect this run could have detected at 80% power.",
    )
    rows = []
    for c in inp.claims.itertuples():
        shown = f"**{c.verdict}**"
        if c.verdict == "NOT COMPARABLE" and isinstance(c.statistical_verdict, str) and c.statistical_verdict:
            shown += f" (as measured: {c.statistical_verdict})"
        shown += verdict_notes(c)
        ours = fmt_ci(c.estimate, c.ci_low, c.ci_high) if pd.notna(getattr(c, "estimate", math.nan)) else NONE
        documented = fmt(c.documented) if pd.notna(getattr(c, "documented", math.nan)) else NONE
        note = getattr(c, "documented_note", "")
        if isinstance(note, str) and note:
            documented += f" ({text(note)})"
        rows.append(
            [
                code(c.claim_id) + (" (required)" if str(c.required).lower() == "true" else ""),
                text(getattr(c, "definition", ""), limit=400),
                documented,
                ours,
                mde_cell(getattr(c, "mde", math.nan)),
                shown,
                text(c.reason, limit=300),
            ]
        )
    lines += table(["claim", "operational definition", "documented", "ours", "mde", "verdict", "reason"], rows)
    return lines + calibration_lines(inp)


def calibration_lines(inp: Inputs) -> list[str]:
    """The measured error rates of the verdict rules this report used, at the simulated seed count nearest its own
    (benchmarks/verdict_calibration.py's committed output, verified against its record)."""
    if inp.calibration is None or inp.claims is None:
        return []
    meta, rates = inp.calibration
    used = inp.claims.test.value_counts()
    nearest = min(rates.n_seeds.unique(), key=lambda n: (abs(n - len(inp.seeds)), n))
    rows = []
    for r in rates[(rates.n_seeds == nearest) & rates.test.isin(used.index)].itertuples():
        rows.append([
            code(r.test), str(int(used[r.test])), fmt(r.false_reproduced_at_edge_worst),
            fmt(r.false_not_reproduced_at_refute_edge_worst), fmt(r.false_not_reproduced_inside_worst),
            fmt(r.power_inside_family), "yes" if str(r.calibrated).lower() == "true" else f"**no** (> {fmt(ALPHA)} + "
            f"{fmt(r.tolerance, 2)})",
        ])  # fmt: skip
    if not rows:
        return []
    intro = (
        f"How often these rules are wrong, measured by simulation where the truth is known "
        f"(`benchmarks/verdict_calibration.py`, {meta.get('runs')} simulated runs of all claims per seed count and "
        f"truth, {meta.get('date')}, commit {code(str(meta.get('commit')))}), at {nearest} seeds (this run has "
        f"{len(inp.seeds)}). False rates are the worst case, the other claims of the run decided with tiny p-values "
        f"so that Holm tests this one at alpha {fmt(ALPHA)}; each should be at most alpha within 3 Monte-Carlo "
        "standard errors. Power: REPRODUCED when the truth is the documented value, Holm across the whole run."
    )
    header = ["test kind", "claims here", "false REPRODUCED at the band's edge", "false NOT REPRODUCED at the refute "
              "edge", "false NOT REPRODUCED when it holds", "power", "within alpha"]  # fmt: skip
    return ["### Error rates of the verdict rules", "", intro, ""] + table(header, rows)


# ------------------------------------------------------------------------------------------------ tables


def section_rm_table(inp: Inputs) -> list[str]:
    rows = []
    for r in inp.rm_summary.itertuples():
        rows.append(
            [
                code(r.experiment),
                r.scorer if r.scorer == REWARD_MODEL else f"baseline: {r.scorer}",
                r.split,
                str(r.n_pairs),
                str(r.n_correct),
                fmt_ci(r.accuracy, r.wilson_low, r.wilson_high),
                NONE if math.isnan(r.documented) else fmt(r.documented),
                NONE if math.isnan(r.documented) else inside(r.documented, r.wilson_low, r.wilson_high),
            ]
        )
    header = ["experiment", "scorer", "split", "pairs", "correct", f"ours [Wilson {LEVEL}]", "documented",
              "documented vs our interval"]  # fmt: skip
    return section(
        "Table 1: reward-model accuracy",
        f"Pairwise accuracy (chosen scored above rejected) with a Wilson {LEVEL} interval. Baselines are trained "
        "and scored on the same pairs as the reward model: how much of the documented accuracy a linear model gets.",
    ) + table(header, rows)


def tests_cell(tests: pd.DataFrame) -> str:
    if tests.empty:
        return NONE
    parts = [tests.iloc[0].direction]
    welch = tests[tests.test == "welch_t"]
    if not welch.empty:
        parts.append(f"Welch p = {fmt_p(welch.iloc[0].p_value)}")
    per_seed = tests[tests.test.isin(PER_SAMPLE_TESTS)]
    if not per_seed.empty:
        parts.append(
            f"{test_names(per_seed)} p (seeds {'/'.join(per_seed.seed)}) = "
            + "/".join(fmt_p(p) for p in per_seed.p_value)
        )
    return "; ".join(parts)


def policy_cell(row: pd.Series | None, n_seeds: int) -> str:
    if row is None or row.n_seeds == 0:
        return "not measured"
    cell = fmt_ci(row["mean"], row.ci_low, row.ci_high)
    return cell if row.n_seeds == n_seeds else f"{cell} (n={row.n_seeds})"


def documented_cell(row: pd.Series | None) -> str:
    if row is None or math.isnan(row.documented):
        return NONE
    if row.n_seeds == 0:
        return f"{fmt(row.documented)} (not measured here)"
    return f"{fmt(row.documented)} ({inside(row.documented, row.ci_low, row.ci_high)} our CI)"


def effect_cell(inp: Inputs, experiment: str, metric: str) -> str:
    """Cohen's d of the RLHF against the base seed means, and Cliff's delta on the pooled per-sample values."""
    per_seed = inp.seed_metrics[(inp.seed_metrics.experiment == experiment) & (inp.seed_metrics.metric == metric)]
    means = {p: per_seed[per_seed.policy == p].value.dropna().to_numpy() for p in POLICIES}
    if min(len(v) for v in means.values()) == 0:
        return NONE
    parts = [f"d = {fmt(cohens_d(means['rlhf'], means['base']), 2)}"]
    samples = inp.samples_of(experiment)
    values = {p: per_sample_values(samples[samples.policy == p], metric) for p in POLICIES}
    if all(v is not None and v.notna().any() for v in values.values()):
        parts.append(f"δ = {fmt(cliffs_delta(values['rlhf'].dropna(), values['base'].dropna()), 2)}")
    return ", ".join(parts)


def section_ppo_table(inp: Inputs) -> list[str]:
    lines = section(
        "Table 2: PPO base vs RLHF",
        f"Per experiment: each evaluation metric as mean [t {LEVEL} CI] over seeds, documented values beside "
        "ours, and one-sided tests of RLHF against base in the tested direction (Welch t over seed "
        "means; per seed on per-sample values, Fisher's exact test for 0/1 judge labels and Mann-Whitney U "
        "otherwise). Effect sizes of RLHF against base: Cohen's d "
        "over seed means, Cliff's δ over the pooled per-sample values (where a metric has them).",
    )
    for experiment in inp.experiments:
        exp_summary = inp.summary[inp.summary.experiment == experiment]
        rows, unmeasured = [], []
        for metric in exp_summary.metric.unique():
            base, rlhf = (summary_row(inp, experiment, metric, p) for p in POLICIES)
            measured = any(r is not None and r.n_seeds > 0 for r in (base, rlhf))
            has_doc = any(r is not None and not math.isnan(r.documented) for r in (base, rlhf))
            if not measured and not has_doc:
                unmeasured.append(code(metric))
                continue
            rows.append(
                [
                    code(metric),
                    policy_cell(base, len(inp.seeds)),
                    documented_cell(base),
                    policy_cell(rlhf, len(inp.seeds)),
                    documented_cell(rlhf),
                    tests_cell(tests_for(inp, experiment, metric)),
                    effect_cell(inp, experiment, metric) if measured else NONE,
                ]
            )
        lines += [f"### {code(experiment)}", ""]
        header = ["metric", "base", "documented base", "RLHF", "documented RLHF", "one-sided tests", "effect size"]
        lines += table(header, rows)
        if unmeasured:
            lines += [f"Not measured (null in every seed's metrics.json): {', '.join(unmeasured)}.", ""]
        lines += improvement_lines(inp, experiment)
        lines += per_seed_table(inp, experiment)
    return lines


def improvement_lines(inp: Inputs, experiment: str) -> list[str]:
    """Each tested metric's IQM over seeds and the probability that an RLHF seed beats a base seed (improvement.csv)."""
    rows = inp.improvement[inp.improvement.experiment == experiment]
    parts = [
        f"{code(r.metric)} ({r.direction}) IQM {fmt(r.iqm_base)} → {fmt(r.iqm_rlhf)}, P(RLHF better) "
        f"{fmt_ci(r.probability_of_improvement, r.poi_ci_low, r.poi_ci_high)}"
        for r in rows.itertuples()
    ]
    if not parts:
        return []
    return [
        f"Over seeds, as rliable reports it (Agarwal et al. 2021; {LEVEL} stratified bootstrap intervals): "
        + "; ".join(parts)
        + ". P(RLHF better) is how often an RLHF seed beats a base seed in the documented "
        "direction (0.5: no better than chance).",
        "",
    ]


def per_seed_table(inp: Inputs, experiment: str) -> list[str]:
    """Each seed's held-out objective (base and RLHF) and its KL to the base policy: what the test above pools."""
    objective = inp.config["experiments"][experiment]["objective"]["metric"]
    metrics = inp.seed_metrics[inp.seed_metrics.experiment == experiment]
    value = metrics.set_index(["seed", "policy", "metric"]).value
    columns = [("base", objective), ("rlhf", objective), ("rlhf", "kl_mean"), ("base", "reward_mean"),
               ("rlhf", "reward_mean")]  # fmt: skip
    rows = []
    for seed in inp.seeds:
        cells = [value.get((seed, policy, name), math.nan) for policy, name in columns]
        rows.append([str(seed), *(fmt(c) for c in cells)])
    header = ["seed", f"{objective} base", f"{objective} RLHF", "KL(RLHF ‖ base) per response", "reward base",
              "reward RLHF"]  # fmt: skip
    return [
        f"Per seed, on the held-out prompts (`evaluate/seed<k>/metrics.json`; KL in nats, {code('kl_mean')}):",
        "",
    ] + table(header, rows)


# ----------------------------------------------------------------------------------- figures and samples


def training_table(inp: Inputs) -> list[str]:
    rows = []
    for (experiment, seed), log in inp.train_logs.groupby(["experiment", "seed"], sort=False):
        log = log.sort_values("step")
        rows.append(
            [
                code(experiment),
                str(seed),
                str(len(log)),
                fmt(log.reward_mean.iloc[0]),
                fmt(log.reward_mean.iloc[-1]),
                fmt(log.kl.iloc[-1]),
                str(int(log.skipped.sum())),
                fmt(log.seconds.sum()),
                fmt(log.samples_per_s.mean()),
            ]
        )
    header = ["experiment", "seed", "PPO steps", "reward, first step", "reward, last step", "KL, last step",
              "mini-batches skipped (ratio threshold)", "seconds (sum over steps)", "samples/s (mean)"]  # fmt: skip
    return table(header, rows)


def section_figures(inp: Inputs, captions: list[tuple[str, str]]) -> list[str]:
    """The figures by (file name, caption), numbered in order, and the PPO training log per seed."""
    lines = section("Figures")
    for number, (name, caption) in enumerate(captions, start=1):
        lines += [f"![Figure {number}](figures/{name})", "", f"*Figure {number}: {caption}*", ""]
    if not inp.judged():
        lines += ["No experiment in this profile has a judge, so the judge figures are omitted.", ""]
    lines += ["PPO training log per seed (from train_log.csv):", ""] + training_table(inp)
    return lines


def describe_sample(row: pd.Series, judge: bool) -> str:
    facts = [f"reward {fmt(row.reward)}", f"{int(row.word_count)} words"]
    if judge:
        facts.append(f"judge {text(row.judge_label)} {fmt(row.judge_score)}")
    return f"- **{POLICY_NAMES[row.policy]}** ({', '.join(facts)}): {text(row.response, SAMPLE_CHARS)}"


def section_samples(inp: Inputs) -> list[str]:
    lines = section(
        "Sample generations",
        f"The first {SAMPLES_PER_SEED} evaluation prompts (by prompt id) of each seed, answered by the "
        f"base and the RLHF policy; responses escaped and cut at {SAMPLE_CHARS} characters.",
    )
    with_judge = set(inp.judged())
    for experiment in inp.experiments:
        lines += [f"### {code(experiment)}", ""]
        samples = inp.samples_of(experiment)
        for seed in inp.seeds:
            seed_rows = samples[samples.seed == seed]
            common = sorted(
                set(seed_rows[seed_rows.policy == "base"].prompt_id)
                & set(seed_rows[seed_rows.policy == "rlhf"].prompt_id)
            )
            for prompt_id in common[:SAMPLES_PER_SEED]:
                pair = seed_rows[seed_rows.prompt_id == prompt_id]
                lines += [
                    f"**Seed {seed}, prompt {prompt_id}:** {text(pair.iloc[0].prompt, SAMPLE_CHARS)}",
                    "",
                ]
                for policy in POLICIES:
                    lines.append(describe_sample(pair[pair.policy == policy].iloc[0], experiment in with_judge))
                lines.append("")
    return lines


def section_prompts(inp: Inputs) -> list[str]:
    """Your own prompts (evaluation.prompts_file): every policy's answers, beside the held-out evaluation."""
    if inp.prompts is None:
        return []
    first = inp.seeds[0]
    lines = section(
        "Your prompts",
        f"Base and RLHF policies of every seed answered the {inp.prompts.prompt_id.nunique()} prompts of "
        f"{code(inp.config['evaluation']['prompts_file'])} (evaluation.prompts_file), scored as the held-out "
        "prompts are; they change no metric or claim above. Means over seeds and prompts, then seed "
        f"{first}'s answers (escaped, cut at {SAMPLE_CHARS} characters).",
    )
    with_judge = set(inp.judged())
    for experiment in inp.experiments:
        answers = inp.prompts[inp.prompts.experiment == experiment]
        judge = experiment in with_judge
        means = []
        for policy in POLICIES:
            rows = answers[answers.policy == policy]
            facts = [f"reward {fmt(rows.reward.mean())}", f"{fmt(rows.word_count.mean())} words"]
            if judge:
                facts.append(f"judge positive {fmt(rows.judge_score.mean())}")
            if policy == "rlhf":
                facts.append(f"KL {fmt(rows.kl.mean())} nats")
            means.append(f"{POLICY_NAMES[policy]}: {', '.join(facts)}")
        lines += [f"### {code(experiment)}", "", "; ".join(means) + ".", ""]
        seed_rows = answers[answers.seed == first]
        for prompt_id in sorted(seed_rows.prompt_id.unique()):
            pair = seed_rows[seed_rows.prompt_id == prompt_id]
            lines += [f"**Prompt {prompt_id}:** {text(pair.iloc[0].prompt, SAMPLE_CHARS)}", ""]
            lines += [describe_sample(pair[pair.policy == policy].iloc[0], judge) for policy in POLICIES] + [""]
    return lines
