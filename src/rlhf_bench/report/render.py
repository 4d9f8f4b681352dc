"""Report stage: a paper-style report that says whether the documented numbers were reproduced.

Reads the aggregate tables (summary.csv, rm_summary.csv, tests.csv), the PPO training logs, the
evaluation samples, the provenance records and any Snakemake benchmark files, and writes

    <out-dir>/report.md, <out-dir>/report.html (self-contained: figures inlined as base64 PNG),
    <out-dir>/figures/*.png

Every number in the report is read or computed from those files; the only fixed text is wording.
A missing input ends the stage with one line on stderr and exit code 2, and nothing is written.

    python -m rlhf_bench.report.render --config results/smoke/config.json \
        --results-dir results/smoke --out-dir reports/smoke
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import markdown
import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from scipy.stats import spearmanr

from rlhf_bench.analysis.aggregate import (
    ALPHA,
    POLICIES,
    REWARD_MODEL,
    RM_COLUMNS,
    SUMMARY_COLUMNS,
    TEST_COLUMNS,
    InputError,
    evaluate_dir,
    field,
    load_config,
    load_samples,
    load_seed_metrics,
    parse_args,
    per_sample_values,
    ppo_dir,
    read_json,
    read_table,
    staged_outputs,
)
from rlhf_bench.analysis.stats import cliffs_delta, cohens_d
from rlhf_bench.layout import stage_dirs
from rlhf_bench.report.pdf import write_pdf

POLICY_NAMES = {"base": "base", "rlhf": "RLHF"}
PALETTE = {"base": "#4C72B0", "RLHF": "#DD8452"}
JUDGE_LABELS = ("negative", "neutral", "positive")
TRAIN_LOG_COLUMNS = ("step", "reward_mean", "kl", "skipped", "seconds", "samples_per_s")
# Units of the PPO reward, by the config's ppo.reward (the reward is not always a reward-model score).
REWARD_UNITS = {"reward_model": "reward-model score", "negative_word_count": "minus word count"}
SAMPLE_CHARS = 300
SAMPLES_PER_SEED = 2
DPI = 110
# Why a profile's numbers cannot be set beside the documented ones, when the config does not say.
NOT_COMPARABLE_REASONS = {
    "smoke": "tiny models, synthetic data",
    "imdb-cpu": "real IMDB, but a MiniLM reward model and a small GPT-2 trained here, not DistilBERT and gpt2",
}
CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
img { max-width: 100%; }
code { background: #f5f5f5; padding: 0 0.2em; }
blockquote { border-left: 4px solid #ccc; margin: 0.5em 0; padding: 0.1em 1em; color: #444; }
"""


@dataclass
class Inputs:
    """Everything the report reads, loaded (and checked) before anything is written."""

    config: dict
    config_path: Path
    results_dir: Path
    summary: pd.DataFrame
    rm_summary: pd.DataFrame
    tests: pd.DataFrame
    train_logs: pd.DataFrame
    samples: pd.DataFrame
    provenance: list[tuple[str, dict]]
    checksums: dict[str, dict]
    benchmarks: pd.DataFrame
    seed_metrics: pd.DataFrame
    claims: pd.DataFrame | None

    @property
    def profile(self) -> str:
        return str(self.config.get("profile", self.results_dir.name))

    @property
    def experiments(self) -> list[str]:
        return list(self.config["experiments"])

    @property
    def seeds(self) -> list[int]:
        return list(self.config["seeds"])


# ---------------------------------------------------------------------------------------------- loading


def load_aggregate_tables(config: dict, results_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The aggregate stage's tables, checked to cover every experiment of this config (else stale)."""
    summary = read_table(results_dir / "summary.csv", tuple(SUMMARY_COLUMNS))
    rm_summary = read_table(results_dir / "rm_summary.csv", tuple(RM_COLUMNS))
    tests = read_table(results_dir / "tests.csv", tuple(TEST_COLUMNS))
    tests["seed"] = tests["seed"].astype(str)
    for name, table in (("summary.csv", summary), ("rm_summary.csv", rm_summary), ("tests.csv", tests)):
        missing = [e for e in config["experiments"] if e not in set(table["experiment"])]
        if missing:
            raise InputError(
                f"{results_dir / name}: no rows for experiment(s) {', '.join(missing)}; "
                "rerun the Snakemake rule 'aggregate'"
            )
    return summary, rm_summary, tests


def load_train_logs(config: dict, results_dir: Path) -> pd.DataFrame:
    frames = []
    for experiment in config["experiments"]:
        for seed in config["seeds"]:
            log = read_table(ppo_dir(results_dir, experiment, seed) / "train_log.csv", TRAIN_LOG_COLUMNS)
            frames.append(log.assign(experiment=experiment, seed=seed))
    return pd.concat(frames, ignore_index=True)


def load_all_samples(config: dict, results_dir: Path) -> pd.DataFrame:
    frames = []
    for experiment in config["experiments"]:
        for seed in config["seeds"]:
            samples = load_samples(results_dir, experiment, seed)
            for column in ("prompt", "response"):
                if column not in samples.columns:
                    path = evaluate_dir(results_dir, experiment, seed) / "samples.parquet"
                    raise InputError(f"{path}: missing column {column}")
            frames.append(samples.assign(experiment=experiment))
    return pd.concat(frames, ignore_index=True)


def load_provenance(config: dict, results_dir: Path) -> tuple[list[tuple[str, dict]], dict[str, dict]]:
    """provenance.json of every stage directory, labelled by its path, and each data/checksums.json."""
    records, checksums = [], {}
    for experiment in config["experiments"]:
        exp_dir = results_dir / experiment
        for stage_dir in stage_dirs(config, experiment):
            path = results_dir / stage_dir / "provenance.json"
            record = read_json(path)
            for key in ("versions", "git_commit", "config_sha256", "hardware"):
                field(record, key, path)
            records.append((stage_dir, record))
        checksums[experiment] = read_json(exp_dir / "data" / "checksums.json")
    return records, checksums


def load_benchmarks(results_dir: Path) -> pd.DataFrame:
    """Snakemake benchmark files (optional): mean wall seconds and peak RSS per file."""
    rows = []
    for path in sorted((results_dir / "benchmarks").rglob("*.tsv")):
        table = read_table(path, ("s", "max_rss"), kind="tsv")
        seconds = pd.to_numeric(table["s"], errors="coerce")
        rss = pd.to_numeric(table["max_rss"], errors="coerce")  # Snakemake writes '-' where unmeasured
        rows.append((path.relative_to(results_dir / "benchmarks").as_posix(), len(table), seconds.mean(), rss.max()))
    return pd.DataFrame(rows, columns=["file", "runs", "seconds", "max_rss_mb"])


def load_claims(results_dir: Path) -> pd.DataFrame | None:
    """claims.csv of the claims rule; None where a bundle predates it (the report then says so)."""
    path = results_dir / "claims.csv"
    if not path.exists():
        return None
    return read_table(path, ("claim_id", "experiment", "required", "verdict", "reason", "statistical_verdict"))


def load_inputs(config_path: Path, results_dir: Path) -> Inputs:
    config = load_config(config_path)
    summary, rm_summary, tests = load_aggregate_tables(config, results_dir)
    provenance, checksums = load_provenance(config, results_dir)
    return Inputs(
        config=config,
        config_path=config_path,
        results_dir=results_dir,
        summary=summary,
        rm_summary=rm_summary,
        tests=tests,
        train_logs=load_train_logs(config, results_dir),
        samples=load_all_samples(config, results_dir),
        provenance=provenance,
        checksums=checksums,
        benchmarks=load_benchmarks(results_dir),
        seed_metrics=load_seed_metrics(config, results_dir),
        claims=load_claims(results_dir),
    )


# ------------------------------------------------------------------------------------------- formatting


def fmt(value, digits: int = 3) -> str:
    """A number for a table: 3 significant digits, one decimal from 100 up, an en dash when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = float(value)
    if abs(value) >= 100:
        return f"{value:,.1f}"
    return f"{value:.{digits}g}"


def fmt_p(p: float) -> str:
    return "–" if p is None or math.isnan(p) else f"{p:.2g}"


def fmt_ci(mean: float, low: float, high: float) -> str:
    if math.isnan(low) or math.isnan(high):
        return fmt(mean)
    return f"{fmt(mean)} [{fmt(low)}, {fmt(high)}]"


def text(value, limit: int | None = None) -> str:
    """Untrusted text (generations, config strings) made inert for markdown and HTML, on one line.

    HTML-escaped so a generated '<script>' stays text, and markdown's inline markers are
    backslash-escaped so '*' or '|' can neither format the text nor split a table cell.
    """
    flat = " ".join(str(value).split())
    if limit is not None and len(flat) > limit:
        flat = flat[:limit].rstrip() + "…"
    return re.sub(r"([\\`*_\[\]|#])", r"\\\1", html.escape(flat, quote=False))


def code(name: str) -> str:
    """An identifier (experiment, metric) as inline code, or escaped text if it could break the span."""
    return f"`{name}`" if re.fullmatch(r"[\w.\-/: ]+", str(name)) else text(name)


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def inside(value: float, low: float, high: float) -> str:
    if math.isnan(low) or math.isnan(high):
        return "no interval"
    return "inside" if low <= value <= high else "outside"


# --------------------------------------------------------------------------------------------- sections


def summary_row(inp: Inputs, experiment: str, metric: str, policy: str) -> pd.Series | None:
    rows = inp.summary[
        (inp.summary.experiment == experiment) & (inp.summary.metric == metric) & (inp.summary.policy == policy)
    ]
    return None if rows.empty else rows.iloc[0]


def tests_for(inp: Inputs, experiment: str, metric: str) -> pd.DataFrame:
    return inp.tests[(inp.tests.experiment == experiment) & (inp.tests.metric == metric)]


def verdict(welch: pd.DataFrame) -> str:
    """Plain-words result of the over-seeds Welch test of the objective."""
    if welch.empty or math.isnan(welch.iloc[0].p_value):
        return "no test over seeds was possible (fewer than two seeds, or no variance across seeds)"
    p = welch.iloc[0].p_value
    outcome = "**moved significantly" if p < ALPHA else "**did not move significantly"
    return f"one-sided Welch t over seed means p = {fmt_p(p)}: {outcome} in the documented direction**"


def documented_checks(inp: Inputs) -> tuple[int, int, int, int]:
    """How many documented values lie inside our intervals: (rm inside, rm total, ppo inside, ppo total)."""
    rm = inp.rm_summary[inp.rm_summary.scorer == REWARD_MODEL].dropna(subset=["documented"])
    rm_inside = int(((rm.documented >= rm.wilson_low) & (rm.documented <= rm.wilson_high)).sum())
    ppo = inp.summary.dropna(subset=["documented"])
    ppo_inside = int(((ppo.documented >= ppo.ci_low) & (ppo.documented <= ppo.ci_high)).sum())
    return rm_inside, len(rm), ppo_inside, len(ppo)


def section_abstract(inp: Inputs) -> list[str]:
    title = inp.config.get("title") or f"rlhf-bench report: profile {inp.profile}"
    seeds = ", ".join(str(s) for s in inp.seeds)
    lines = [
        f"# {text(title)}",
        "",
        "## Abstract",
        "",
        (
            f"Profile {code(inp.profile)} ran {len(inp.experiments)} experiment(s), each with a reward model "
            f"and PPO with {len(inp.seeds)} seed(s) ({seeds}); base and RLHF policies were evaluated on the "
            f"same held-out prompts. Means are over seeds with a t 95% confidence interval. For each "
            f"experiment, whether the PPO objective moved in the documented direction:"
        ),
        "",
    ]
    for experiment, exp in inp.config["experiments"].items():
        metric, direction = exp["objective"]["metric"], exp["objective"]["direction"]
        base, rlhf = (summary_row(inp, experiment, metric, p) for p in POLICIES)
        tests = tests_for(inp, experiment, metric)
        welch = tests[tests.test == "welch_t"]
        mwu = tests[tests.test == "mann_whitney_u"]
        moved = ""
        if base is not None and rlhf is not None:
            moved = (
                f" it went from {fmt_ci(base['mean'], base.ci_low, base.ci_high)} (base) to "
                f"{fmt_ci(rlhf['mean'], rlhf.ci_low, rlhf.ci_high)} (RLHF);"
            )
        per_seed = (
            f"; per-seed Mann-Whitney U p < {ALPHA} in {int(mwu.significant.sum())} of {len(mwu)} seeds"
            if len(mwu)
            else ""
        )
        lines.append(
            f"- {code(experiment)}: the objective {code(metric)} should {direction};{moved} {verdict(welch)}{per_seed}."
        )
    return lines + [""] + claims_abstract(inp)


def section_warning(config: dict) -> list[str]:
    """The comparability warning, stated before any number can be read as a reproduction."""
    if config.get("comparable_to_documented", False):
        return []
    profile = str(config.get("profile", ""))
    reason = config.get("comparability_note") or NOT_COMPARABLE_REASONS.get(
        profile, "the profile differs from the documented runs in models or data"
    )
    return [
        f"**Warning:** {text(profile)} numbers are not comparable to the documented ones: {text(reason)}.",
        "",
    ]


def flatten(mapping: dict, prefix: str = "") -> dict[str, str]:
    """Nested hyperparameters as dotted keys with compact values, for one table across experiments."""
    flat = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value if isinstance(value, str) else json.dumps(value)
    return flat


def section_setup(inp: Inputs) -> list[str]:
    lines = [
        "## Setup",
        "",
        (
            f"PPO seeds: {', '.join(str(s) for s in inp.seeds)}. Data, reward model and "
            "evaluation prompts are shared by the seeds of an experiment; each seed trains "
            "its own policy."
        ),
        "",
    ]
    rows = []
    for experiment, exp in inp.config["experiments"].items():
        docs = exp.get("documented") or {}
        n_prompts = inp.samples[(inp.samples.experiment == experiment)].groupby("seed").prompt_id.nunique()
        rows.append(
            [
                code(experiment),
                text(exp.get("description", "")),
                text(exp.get("source", "")),
                f"{code(exp['objective']['metric'])} ({exp['objective']['direction']})",
                ", ".join(str(n) for n in sorted(set(n_prompts))),
                ", ".join(f"{code(k)} {fmt(v)}" for k, v in docs.items()) or "none",
            ]
        )
    lines += table(
        ["experiment", "description", "source", "PPO objective", "eval prompts per seed", "documented"], rows
    )
    lines += ["Models, data and judge:", ""]
    lines += table(["experiment", "policy", "reward model", "PPO reward", "data", "judge"], model_rows(inp))
    lines += section_hardware(inp) + section_stage_times(inp) + section_deviations(inp)
    for section in ("ppo", "reward_model"):
        params = {e: flatten(exp.get(section) or {}) for e, exp in inp.config["experiments"].items()}
        keys = list(dict.fromkeys(k for p in params.values() for k in p))
        if not keys:
            continue
        lines += [f"Hyperparameters: {code(section)} (from the resolved config).", ""]
        lines += table(
            ["parameter"] + [code(e) for e in params],
            [[code(k)] + [text(p.get(k, "–")) for p in params.values()] for k in keys],
        )
    return lines


def model_rows(inp: Inputs) -> list[list[str]]:
    rows = []
    for experiment, exp in inp.config["experiments"].items():
        sft, rm, data = exp.get("sft") or {}, exp.get("reward_model") or {}, exp.get("data") or {}
        if exp.get("policy") == "sft" and sft.get("init", "scratch") == "scratch":
            policy = (
                f"GPT-2 from scratch ({sft.get('n_layer')} layers, width {sft.get('n_embd')}, "
                f"BPE vocabulary {sft.get('vocab_size')}), trained on the corpus"
            )
        elif exp.get("policy") == "sft":
            policy = f"{sft.get('init')} fine-tuned on the corpus"
        else:
            policy = str(exp.get("policy"))
        if rm.get("init", "scratch") == "scratch":
            reward_model = (
                f"{rm.get('architecture')} from scratch ({rm.get('n_layer')} layers, width {rm.get('hidden_size')})"
            )
        else:
            reward_model = str(rm.get("init"))
        source = data.get("source", "")
        pairs = f"{data.get('n_pairs_train')} / {data.get('n_pairs_test')} pairs (train / test)"
        rows.append(
            [
                code(experiment),
                text(policy + " + LoRA"),
                text(reward_model),
                text(REWARD_UNITS.get((exp.get("ppo") or {}).get("reward"), "")),
                text(f"{data.get('format')} format from {source}; {pairs}"),
                text(judge_name(exp.get("evaluation") or {})),
            ]
        )
    return rows


def judge_name(evaluation: dict) -> str:
    judge = evaluation.get("judge", "none")
    if judge == "classifier":
        return f"classifier {evaluation.get('judge_model', '')}"
    return "VADER lexicon (vaderSentiment)" if judge == "vader" else judge


def section_hardware(inp: Inputs) -> list[str]:
    kinds = grouped(inp.provenance, lambda r: json.dumps(r.get("hardware"), sort_keys=True))
    lines = []
    for hardware in kinds:
        h = json.loads(hardware) or {}
        accelerator = h.get("cuda") or "no GPU"
        image = f", container {h['container_image']}" if h.get("container_image") else ""
        lines.append(
            f"Hardware: {text(h.get('cpu'))}, {h.get('cpu_count')} cores, {h.get('torch_threads')} torch thread(s) "
            f"per job, {text(accelerator)}, Python {h.get('python')}{text(image)}."
        )
    return lines + [""]


def section_stage_times(inp: Inputs) -> list[str]:
    """Wall time and peak memory per rule, from Snakemake's benchmark files (absent: a run outside Snakemake)."""
    if inp.benchmarks.empty:
        return [f"No Snakemake benchmark files under {text(inp.results_dir / 'benchmarks')}.", ""]
    frame = inp.benchmarks.assign(rule=inp.benchmarks.file.map(benchmark_rule))
    per_rule = frame.groupby("rule", sort=False).agg(
        jobs=("file", "count"), total=("seconds", "sum"), longest=("seconds", "max"), rss=("max_rss_mb", "max")
    )
    lines = ["Wall time per stage (Snakemake benchmark files; peak resident memory of any job of the rule):", ""]
    return lines + table(
        ["rule", "jobs", "total (s)", "longest job (s)", "peak memory (MB)"],
        [
            [code(rule), str(int(r.jobs)), fmt(r.total), fmt(r.longest), fmt(r.rss)]
            for rule, r in per_rule.sort_index(key=lambda rules: rules.map(pipeline_position)).iterrows()
        ],
    )


RULE_ORDER = ("resolved_config", "experiment_config", "download", "data", "sft", "reward", "ppo",
              "evaluate", "aggregate", "claims", "report")  # fmt: skip


def pipeline_position(rule: str) -> int:
    return RULE_ORDER.index(rule) if rule in RULE_ORDER else len(RULE_ORDER)


def benchmark_rule(file: str) -> str:
    """'imdb-negative.ppo.seed0.tsv' -> 'ppo'; 'aggregate.tsv' -> 'aggregate'."""
    parts = file.removesuffix(".tsv").split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def section_deviations(inp: Inputs) -> list[str]:
    """Every place this run differs from the documented setting: declared in the config, plus drift."""
    rows = []
    declared = [("all", d) for d in inp.config.get("deviations") or []]
    for experiment, exp in inp.config["experiments"].items():
        declared += [(experiment, d) for d in exp.get("deviations") or []]
    applied = bool(inp.config.get("apply_sound_settings"))
    for experiment, d in declared:
        sound = "–"
        if "sound" in d:  # faithful by default; apply_sound_settings: true runs the sound value instead
            sound = text(d["sound"]) + (" (applied)" if applied and d.get("ours") == d["sound"] else " (not applied)")
        rows.append(
            [
                code(experiment),
                text(d.get("setting", "")),
                text(d.get("documented", "")),
                text(d.get("ours", "")),
                sound,
                text(d.get("why", "")),
            ]
        )
    if not inp.config.get("comparable_to_documented", False):
        reason = inp.config.get("comparability_note") or NOT_COMPARABLE_REASONS.get(inp.profile, "see the config")
        rows.append(["all", "models and data", "the documented models and datasets", text(reason), "–", "profile"])
    drift = sorted({str(e) for _, r in inp.provenance for e in r.get("version_drift") or []})
    rows += [["all", "library version", "pinned", f"**{text(d)}**", "–", "--allow-version-drift"] for d in drift]
    lines = [
        "Deviations from the documented setting (`sound`: the setting we would choose where the faithful one is "
        f"known to mislead; `apply_sound_settings: {str(applied).lower()}` in this run):",
        "",
    ]
    if not rows:
        return lines + ["None declared.", ""]
    return lines + table(["experiment", "setting", "documented", "ours", "sound", "why"], rows)


VERDICTS = ("REPRODUCED", "NOT REPRODUCED", "INCONCLUSIVE", "NOT COMPARABLE")


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


def section_claims(inp: Inputs) -> list[str]:
    lines = ["## Claims", ""]
    if inp.claims is None:
        return lines + ["No claims.csv in this bundle (run the `claims` rule: config/claims.yaml).", ""]
    lines += [
        "Every quantitative or testable claim of the write-ups (config/claims.yaml), with its operational "
        "definition, the documented value, ours (95% interval over seeds, or Wilson for accuracies), the verdict "
        "and its reason. Support and refute tests are Holm-corrected across the claims of this report; `mde` is "
        "the smallest effect this run could have detected at 80% power.",
        "",
    ]
    rows = []
    for c in inp.claims.itertuples():
        verdict = f"**{c.verdict}**"
        if c.verdict == "NOT COMPARABLE" and isinstance(c.statistical_verdict, str) and c.statistical_verdict:
            verdict += f" (as measured: {c.statistical_verdict})"
        ours = fmt_ci(c.estimate, c.ci_low, c.ci_high) if pd.notna(getattr(c, "estimate", math.nan)) else "–"
        documented = fmt(c.documented) if pd.notna(getattr(c, "documented", math.nan)) else "–"
        note = getattr(c, "documented_note", "")
        if isinstance(note, str) and note:
            documented += f" ({text(note)})"
        rows.append(
            [
                code(c.claim_id) + (" (required)" if str(c.required).lower() == "true" else ""),
                text(getattr(c, "definition", ""), limit=400),
                documented,
                ours,
                fmt(getattr(c, "mde", math.nan)),
                verdict,
                text(c.reason, limit=300),
            ]
        )
    return lines + table(["claim", "operational definition", "documented", "ours", "mde", "verdict", "reason"], rows)


def section_rm_table(inp: Inputs) -> list[str]:
    rows = []
    for r in inp.rm_summary.itertuples():
        doc = "–" if math.isnan(r.documented) else fmt(r.documented)
        where = "–" if math.isnan(r.documented) else inside(r.documented, r.wilson_low, r.wilson_high)
        rows.append(
            [
                code(r.experiment),
                r.scorer if r.scorer == REWARD_MODEL else f"baseline: {r.scorer}",
                r.split,
                str(r.n_pairs),
                str(r.n_correct),
                fmt_ci(r.accuracy, r.wilson_low, r.wilson_high),
                doc,
                where,
            ]
        )
    return [
        "## Table 1: reward-model accuracy",
        "",
        "Pairwise accuracy (chosen scored above rejected) with a Wilson 95% interval. Baselines are trained and "
        "scored on the same pairs as the reward model: how much of the documented accuracy a linear model gets.",
        "",
    ] + table(
        [
            "experiment",
            "scorer",
            "split",
            "pairs",
            "correct",
            "ours [Wilson 95%]",
            "documented",
            "documented vs our interval",
        ],
        rows,
    )


def tests_cell(tests: pd.DataFrame) -> str:
    if tests.empty:
        return "–"
    parts = [tests.iloc[0].direction]
    welch = tests[tests.test == "welch_t"]
    if not welch.empty:
        parts.append(f"Welch p = {fmt_p(welch.iloc[0].p_value)}")
    mwu = tests[tests.test == "mann_whitney_u"]
    if not mwu.empty:
        parts.append(f"MWU p (seeds {'/'.join(mwu.seed)}) = {'/'.join(fmt_p(p) for p in mwu.p_value)}")
    return "; ".join(parts)


def policy_cell(row: pd.Series | None, n_seeds: int) -> str:
    if row is None or row.n_seeds == 0:
        return "not measured"
    cell = fmt_ci(row["mean"], row.ci_low, row.ci_high)
    return cell if row.n_seeds == n_seeds else f"{cell} (n={row.n_seeds})"


def documented_cell(row: pd.Series | None) -> str:
    if row is None or math.isnan(row.documented):
        return "–"
    if row.n_seeds == 0:
        return f"{fmt(row.documented)} (not measured here)"
    return f"{fmt(row.documented)} ({inside(row.documented, row.ci_low, row.ci_high)} our CI)"


def effect_cell(inp: Inputs, experiment: str, metric: str) -> str:
    """Cohen's d of the RLHF against the base seed means, and Cliff's delta on the pooled per-sample values."""
    per_seed = inp.seed_metrics[(inp.seed_metrics.experiment == experiment) & (inp.seed_metrics.metric == metric)]
    means = {p: per_seed[per_seed.policy == p].value.dropna().to_numpy() for p in POLICIES}
    if min(len(v) for v in means.values()) == 0:
        return "–"
    parts = [f"d = {fmt(cohens_d(means['rlhf'], means['base']), 2)}"]
    samples = inp.samples[inp.samples.experiment == experiment]
    values = {p: per_sample_values(samples[samples.policy == p], metric) for p in POLICIES}
    if all(v is not None and v.notna().any() for v in values.values()):
        parts.append(f"δ = {fmt(cliffs_delta(values['rlhf'].dropna(), values['base'].dropna()), 2)}")
    return ", ".join(parts)


def section_ppo_table(inp: Inputs) -> list[str]:
    lines = [
        "## Table 2: PPO base vs RLHF",
        "",
        (
            "Per experiment: each evaluation metric as mean [t 95% CI] over seeds, documented values beside "
            "ours, and one-sided tests of RLHF against base in the tested direction (Welch t over seed "
            "means; Mann-Whitney U per seed on per-sample values). Effect sizes of RLHF against base: Cohen's d "
            "over seed means, Cliff's δ over the pooled per-sample values (where a metric has them)."
        ),
        "",
    ]
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
                    effect_cell(inp, experiment, metric) if measured else "–",
                ]
            )
        lines += [f"### {code(experiment)}", ""]
        header = ["metric", "base", "documented base", "RLHF", "documented RLHF", "one-sided tests", "effect size"]
        lines += table(header, rows)
        if unmeasured:
            lines += [f"Not measured (null in every seed's metrics.json): {', '.join(unmeasured)}.", ""]
        lines += per_seed_table(inp, experiment)
    return lines


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
        f"Per seed, on the held-out prompts (evaluate/seed<k>/metrics.json; KL in nats, {code('kl_mean')}):",
        "",
    ] + table(header, rows)


# ---------------------------------------------------------------------------------------------- figures


def judged(samples: pd.DataFrame) -> list[str]:
    """Experiments whose samples carry judge labels, in config order."""
    has = samples.groupby("experiment", sort=False).judge_label.apply(lambda s: s.fillna("").astype(str).ne("").any())
    return [e for e, flag in has.items() if flag]


def new_figure(n_panels: int, n_rows: int = 1, height: float = 3.4) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(4.6 * n_panels, height * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_panels, squeeze=False)
    return fig, axes


def with_policy_names(samples: pd.DataFrame) -> pd.DataFrame:
    return samples.assign(policy=samples.policy.map(POLICY_NAMES))


def figure_ppo_curves(inp: Inputs) -> Figure:
    """Reward and KL per PPO step: a thin line per seed and the mean over seeds."""
    fig, axes = new_figure(len(inp.experiments), n_rows=2)
    greys = sns.color_palette("Greys", n_colors=len(inp.seeds) + 2)[2:]  # the lightest would vanish
    for col, experiment in enumerate(inp.experiments):
        logs = inp.train_logs[inp.train_logs.experiment == experiment]
        reward = (inp.config["experiments"][experiment].get("ppo") or {}).get("reward", "")
        panels = (
            (
                "reward_mean",
                "reward",
                f"mean reward per batch\n({REWARD_UNITS.get(reward, reward or 'reward')})",
            ),
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
        data = with_policy_names(inp.samples[inp.samples.experiment == experiment])
        spread = data.word_count.max() - data.word_count.min()
        sns.histplot(
            data=data,
            x="word_count",
            hue="policy",
            hue_order=list(PALETTE),
            palette=PALETTE,
            element="step",
            discrete=bool(spread <= 60),
            ax=axes[0, col],
        )
        axes[0, col].set(xlabel="response length (words)", ylabel="responses (count)", title=experiment)
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
            hue="policy",
            order=list(JUDGE_LABELS),
            hue_order=list(PALETTE),
            palette=PALETTE,
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
        data = with_policy_names(inp.samples[inp.samples.experiment == experiment])
        sns.histplot(
            data=data,
            x="judge_score",
            hue="policy",
            hue_order=list(PALETTE),
            palette=PALETTE,
            stat="percent",
            common_norm=False,
            bins=20,
            binrange=(0, 1),
            element="step",
            ax=axes[0, col],
        )
        axes[0, col].set(xlabel="judge score (positivity, 0-1)", ylabel="responses per policy (%)", title=experiment)
    fig.suptitle(f"Judge score distribution, base vs RLHF (all seeds), profile {inp.profile}")
    return fig


def figure_reward_vs_kl(inp: Inputs) -> Figure:
    """The frontier view of the DPO paper (Rafailov et al. 2023, fig. 2): reward against KL to the base policy.

    Lines: each seed's PPO trajectory (train_log.csv, a 5-step rolling mean, so the path is readable);
    markers: where each seed's RLHF policy ends on the held-out prompts (evaluate), beside the base policy.
    """
    fig, axes = new_figure(len(inp.experiments))
    greys = sns.color_palette("Greys", n_colors=len(inp.seeds) + 2)[2:]
    for col, experiment in enumerate(inp.experiments):
        ax = axes[0, col]
        logs = inp.train_logs[inp.train_logs.experiment == experiment]
        for colour, (seed, log) in zip(greys, logs.groupby("seed"), strict=False):
            smooth = log.sort_values("step")[["kl", "reward_mean"]].rolling(5, min_periods=1).mean()
            ax.plot(smooth.kl, smooth.reward_mean, color=colour, linewidth=0.9, label=f"seed {seed} (training)")
        held_out = inp.samples[inp.samples.experiment == experiment]
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
        reward = (inp.config["experiments"][experiment].get("ppo") or {}).get("reward", "")
        ax.set(
            xlabel="KL to base per response (nats)",
            ylabel=f"mean reward ({REWARD_UNITS.get(reward, reward)})",
            title=experiment,
        )
        ax.legend(fontsize="x-small")
    fig.suptitle(f"Reward vs KL: training paths and held-out end points, profile {inp.profile}")
    return fig


def reward_model_judged(inp: Inputs, with_judge: list[str]) -> list[str]:
    """Experiments whose PPO reward is a reward model and whose samples a judge scored."""
    return [e for e in with_judge if (inp.config["experiments"][e].get("ppo") or {}).get("reward") == "reward_model"]


def figure_reward_vs_judge(inp: Inputs, experiments: list[str]) -> Figure:
    """Reward-model score against the independent judge's score, per sample: does the policy fool the
    reward model? RLHF samples high on reward but not on the judge are the reward hacks."""
    fig, axes = new_figure(len(experiments))
    for col, experiment in enumerate(experiments):
        data = with_policy_names(inp.samples[inp.samples.experiment == experiment])
        ax = axes[0, col]
        sns.scatterplot(
            data=data,
            x="reward",
            y="judge_score",
            hue="policy",
            hue_order=list(PALETTE),
            palette=PALETTE,
            alpha=0.5,
            s=14,
            linewidth=0,
            ax=ax,
        )
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
            "length_hist.png",
            "Response length in words, base vs RLHF, pooled over seeds.",
            figure_length_hist(inp),
        ),
        (
            "reward_vs_kl.png",
            "Reward against KL to the base policy: each seed's PPO path (5-step rolling mean) and where base and "
            "RLHF policies end on the held-out prompts.",
            figure_reward_vs_kl(inp),
        ),
    ]
    with_judge = judged(inp.samples)
    if with_judge:
        figures += [
            (
                "judge_labels.png",
                ("Judge label shares, base vs RLHF: bars are the mean over seeds, whiskers the range over seeds."),
                figure_judge_labels(inp, with_judge),
            ),
            (
                "judge_scores.png",
                "Judge score (positivity) distribution, base vs RLHF, pooled over seeds.",
                figure_judge_scores(inp, with_judge),
            ),
        ]
    fooled = reward_model_judged(inp, with_judge)
    if fooled:
        figures.append(
            (
                "reward_vs_judge.png",
                "Reward-model score vs judge score per sample: RLHF samples that the reward model rates high and "
                "the judge does not are reward hacks.",
                figure_reward_vs_judge(inp, fooled),
            )
        )
    return figures


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
    return table(
        [
            "experiment",
            "seed",
            "PPO steps",
            "reward, first step",
            "reward, last step",
            "KL, last step",
            "mini-batches skipped (ratio threshold)",
            "seconds (sum over steps)",
            "samples/s (mean)",
        ],
        rows,
    )


def section_figures(inp: Inputs, figures: list[tuple[str, str, Figure]]) -> list[str]:
    lines = ["## Figures", ""]
    for number, (name, caption, _) in enumerate(figures, start=1):
        lines += [f"![Figure {number}](figures/{name})", "", f"*Figure {number}: {caption}*", ""]
    if not judged(inp.samples):
        lines += ["No experiment in this profile has a judge, so the judge figures are omitted.", ""]
    lines += ["PPO training log per seed (from train_log.csv):", ""] + training_table(inp)
    return lines


# ------------------------------------------------------------------------------------ samples, time, prov


def describe_sample(row: pd.Series, judge: bool) -> str:
    facts = [f"reward {fmt(row.reward)}", f"{int(row.word_count)} words"]
    if judge:
        facts.append(f"judge {text(row.judge_label)} {fmt(row.judge_score)}")
    return f"- **{POLICY_NAMES[row.policy]}** ({', '.join(facts)}): {text(row.response, SAMPLE_CHARS)}"


def section_samples(inp: Inputs) -> list[str]:
    lines = [
        "## Sample generations",
        "",
        (
            f"The first {SAMPLES_PER_SEED} evaluation prompts (by prompt id) of each seed, answered by the "
            f"base and the RLHF policy; responses escaped and cut at {SAMPLE_CHARS} characters."
        ),
        "",
    ]
    with_judge = set(judged(inp.samples))
    for experiment in inp.experiments:
        lines += [f"### {code(experiment)}", ""]
        samples = inp.samples[inp.samples.experiment == experiment]
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


def where(labels: list[str], all_labels: list[str]) -> str:
    return "all stages" if sorted(labels) == sorted(all_labels) else ", ".join(text(label) for label in labels)


def grouped(records: list[tuple[str, dict]], key) -> dict[str, list[str]]:
    """Value -> stage labels that recorded it, so that identical records appear once."""
    groups: dict[str, list[str]] = {}
    for label, record in records:
        groups.setdefault(key(record), []).append(label)
    return groups


def section_provenance(inp: Inputs) -> list[str]:
    records = inp.provenance
    labels = [label for label, _ in records]
    lines = ["## Provenance", "", "Deduplicated from the provenance.json of every stage.", ""]

    versions: dict[tuple[str, str], list[str]] = {}
    for label, record in records:
        for lib, version in (record.get("versions") or {}).items():
            versions.setdefault((lib, "not installed" if version is None else str(version)), []).append(label)
    lines += ["Library versions imported by the stages:", ""]
    lines += table(
        ["library", "version", "recorded by"],
        [[code(lib), text(v), where(stages, labels)] for (lib, v), stages in sorted(versions.items())],
    )

    drift: dict[str, list[str]] = {}
    for label, record in records:
        for entry in record.get("version_drift") or []:
            drift.setdefault(str(entry), []).append(label)
    if drift:
        lines += ["Version drift (stages ran against versions other than the pinned ones):", ""]
        lines += [f"- **{text(d)}** ({where(stages, labels)})" for d, stages in drift.items()] + [""]
    else:
        lines += ["No stage recorded version drift.", ""]

    commits = grouped(records, lambda r: str(r.get("git_commit")))
    mark = "**" if len(commits) > 1 else ""
    lines += [
        f"- {mark}Git commit{' differs between stages' if len(commits) > 1 else ''}{mark}: "
        + "; ".join(f"`{v}` ({where(stages, labels)})" for v, stages in commits.items())
    ]
    # Each experiment's stages read that experiment's slice of the config: one hash per experiment.
    for experiment in sorted({str(r.get("experiment")) for _, r in records}):
        mine = [(label, r) for label, r in records if str(r.get("experiment")) == experiment]
        values = grouped(mine, lambda r: str(r.get("config_sha256")))
        mark = "**" if len(values) > 1 else ""
        lines += [
            f"- {mark}Config sha256 of `{experiment}`{' differs between its stages' if len(values) > 1 else ''}"
            f"{mark}: "
            + "; ".join(f"`{v}` ({where(stages, [label for label, _ in mine])})" for v, stages in values.items())
        ]
    config_sha = hashlib.sha256(inp.config_path.read_bytes()).hexdigest()
    lines += [f"- sha256 of the config file this report read ({text(inp.config_path)}): `{config_sha}`", ""]

    hardware = grouped(records, lambda r: json.dumps(r.get("hardware"), sort_keys=True))
    hw_keys = list(dict.fromkeys(k for h in hardware for k in json.loads(h) or {}))
    lines += ["Hardware:", ""]
    lines += table(
        hw_keys + ["recorded by"],
        [
            [text(value_or_dash((json.loads(h) or {}).get(k))) for k in hw_keys] + [where(stages, labels)]
            for h, stages in hardware.items()
        ],
    )

    lines += [
        "Data checksums (data/checksums.json, and the checksums each stage recorded for what it read):",
        "",
    ]
    lines += table(["experiment", "file", "sha256", "recorded by"], checksum_rows(inp))
    lines += ["Command line of each stage (as recorded in its provenance.json):", ""]
    lines += table(
        ["stage directory", "seconds", "command"],
        [[text(label), fmt(rec.get("seconds")), code(str(rec.get("command", "")))] for label, rec in inp.provenance],
    )
    return lines


def value_or_dash(value) -> str:
    return "–" if value is None else str(value)


def checksum_rows(inp: Inputs) -> list[list[str]]:
    """One row per (experiment, file, sha256) from checksums.json and the stages' records of what they read.

    A file recorded with two different hashes is shown in bold: some stage read other data than prepared.
    """
    seen: dict[tuple[str, str, str], list[str]] = {}
    for experiment, sums in inp.checksums.items():
        for name, sha in sums.items():
            seen.setdefault((experiment, name, str(sha)), []).append("data/checksums.json")
    stages_of: dict[str, list[str]] = {}
    for label, record in inp.provenance:
        experiment = label.split("/")[0]
        stages_of.setdefault(experiment, []).append(label)
        for name, sha in (record.get("data_checksums") or {}).items():
            seen.setdefault((experiment, name, str(sha)), []).append(label)
    per_file = pd.Series([(e, f) for e, f, _ in seen]).value_counts()
    rows = []
    for (experiment, name, sha), recorders in seen.items():
        bold = "**" if per_file[(experiment, name)] > 1 else ""
        stages = [r for r in recorders if r in stages_of.get(experiment, [])]
        others = [r for r in recorders if r not in stages_of.get(experiment, [])]
        if stages and sorted(stages) == sorted(stages_of.get(experiment, [])):
            stages = [f"all {len(stages)} stages of the experiment"]
        rows.append(
            [
                code(experiment),
                text(name),
                f"{bold}`{sha}`{bold}",
                ", ".join(text(r) for r in others + stages),
            ]
        )
    return rows


# ----------------------------------------------------------------------------------------------- output


def build_markdown(inp: Inputs, figures: list[tuple[str, str, Figure]]) -> str:
    sections = [
        section_abstract(inp),
        section_warning(inp.config),
        section_setup(inp),
        section_rm_table(inp),
        section_ppo_table(inp),
        section_figures(inp, figures),
        section_claims(inp),
        section_samples(inp),
        section_provenance(inp),
    ]
    return "\n".join(line for section in sections for line in section).rstrip() + "\n"


def build_html(md_text: str, title: str, pngs: dict[str, bytes]) -> str:
    """Self-contained HTML: the markdown converted, each figure reference replaced by its PNG inline."""
    body = markdown.markdown(md_text, extensions=["tables"])
    for name, png in pngs.items():
        reference = f'src="figures/{name}"'
        if reference not in body:
            raise RuntimeError(f"report: figure {name} is not referenced in the markdown")
        body = body.replace(reference, f'src="data:image/png;base64,{base64.b64encode(png).decode()}"')
    head = f'<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n<style>{CSS}</style>'
    return f'<!DOCTYPE html>\n<html lang="en">\n<head>\n{head}\n</head>\n<body>\n{body}\n</body>\n</html>\n'


def write_report(inp: Inputs, out_dir: Path) -> list[str]:
    """Render figures and text into a staging folder, then move report.md, .html and figures/ into place."""
    with mpl.rc_context():
        sns.set_theme(style="whitegrid", context="notebook")
        figures = render_figures(inp)
        md_text = build_markdown(inp, figures)
        with staged_outputs(out_dir) as staging:
            (staging / "figures").mkdir()
            pngs = {}
            for name, _, fig in figures:
                fig.savefig(staging / "figures" / name, dpi=DPI)
                pngs[name] = (staging / "figures" / name).read_bytes()
            title = str(inp.config.get("title") or f"rlhf-bench report: profile {inp.profile}")
            (staging / "report.md").write_text(md_text, encoding="utf-8")
            (staging / "report.html").write_text(build_html(md_text, title, pngs), encoding="utf-8")
            write_pdf(md_text, staging / "figures", staging / "report.pdf", title)
    return [name for name, _, _ in figures]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, "Write report.md, report.html and figures/ from the results of one profile.")
    try:
        inputs = load_inputs(args.config, args.results_dir)
        figures = write_report(inputs, args.out_dir)
    except InputError as err:
        print(f"rlhf_bench.report.render: error: {err}", file=sys.stderr)
        return 2
    print(
        f"rlhf_bench.report.render: wrote {args.out_dir / 'report.md'}, report.html, report.pdf and {len(figures)} figure(s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
