"""What the report reads: every input of one profile's run, loaded and checked before anything is written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from rlhf_bench.analysis.aggregate import (
    IMPROVEMENT_COLUMNS,
    RM_COLUMNS,
    SAMPLE_COLUMNS,
    SUMMARY_COLUMNS,
    TEST_COLUMNS,
    load_samples,
    load_seed_metrics,
)
from rlhf_bench.analysis.calibration import load_calibration
from rlhf_bench.analysis.check import read_claims
from rlhf_bench.analysis.frontier import FRONTIER_COLUMNS, MATCHED_COLUMNS
from rlhf_bench.analysis.metrics import TIMING_COLUMNS
from rlhf_bench.io import StageError, field, read_checksums, read_json, read_table, verified
from rlhf_bench.layout import SUMMARY_TABLES, Layout, stage_dir, stage_dirs

TRAIN_LOG_COLUMNS = ("step", "reward_mean", "kl", "skipped")
CLAIMS_COLUMNS = ("claim_id", "experiment", "required", "verdict", "reason", "statistical_verdict")


def stage_config(experiment: dict, block: str) -> dict:
    """One block of an experiment's config (data, sft, reward, ppo, generation, evaluate); {} where absent.
    The report reads the config's blocks only through here."""
    return experiment.get(block) or {}


@dataclass
class Inputs:
    """Everything the report reads, loaded (and checked) before anything is written."""

    layout: Layout
    config_path: Path
    results_dir: Path
    summary: pd.DataFrame
    rm_summary: pd.DataFrame
    improvement: pd.DataFrame
    tests: pd.DataFrame
    train_logs: pd.DataFrame
    samples: pd.DataFrame
    provenance: list[tuple[str, dict]]
    checksums: dict[str, dict]
    benchmarks: pd.DataFrame
    seed_metrics: pd.DataFrame
    claims: pd.DataFrame | None
    frontier: pd.DataFrame | None = None  # frontier.csv, where any experiment runs a frontier arm
    frontier_matched: pd.DataFrame | None = None  # frontier_matched.csv beside it
    prompts: pd.DataFrame | None = None  # answers to evaluation.prompts_file, where it is set
    calibration: tuple[dict, pd.DataFrame] | None = None  # the verdict rules' measured error rates (record, rates)

    @property
    def config(self) -> dict:
        return self.layout.config

    @property
    def profile(self) -> str:
        return str(self.config["profile"])

    @property
    def title(self) -> str:
        return str(self.config.get("title") or f"rlhf-bench report: profile {self.profile}")

    @property
    def experiments(self) -> list[str]:
        return self.layout.experiments

    @property
    def seeds(self) -> list[int]:
        return self.layout.seeds

    @property
    def benchmarks_dir(self) -> Path:
        return benchmarks_dir(self.layout)

    def block(self, experiment: str, name: str) -> dict:
        return stage_config(self.layout.experiment(experiment), name)

    def ppo_reward(self, experiment: str) -> str:
        """The PPO reward of an experiment: `reward_model` or a rule such as `negative_word_count`."""
        return self.block(experiment, "ppo").get("reward", "")

    def samples_of(self, experiment: str) -> pd.DataFrame:
        return self.samples[self.samples.experiment == experiment]

    def judged(self) -> list[str]:
        """Experiments whose samples carry judge labels, in config order."""
        has = self.samples.groupby("experiment", sort=False).judge_label.apply(
            lambda s: s.fillna("").astype(str).ne("").any()
        )
        return [e for e, flag in has.items() if flag]


def benchmarks_dir(layout: Layout) -> Path:
    """Where Snakemake writes the benchmark files of the profile's rules."""
    return Path(layout.benchmark("aggregate", per_experiment=False)).parent


def load_aggregate_tables(config: dict, results_dir: Path) -> tuple[pd.DataFrame, ...]:
    """The aggregate stage's tables in SUMMARY_TABLES' order, verified against the sha256 it recorded and checked
    to cover every experiment of this config (else stale)."""
    layout = Layout(config, str(results_dir))
    columns = (SUMMARY_COLUMNS, RM_COLUMNS, IMPROVEMENT_COLUMNS, TEST_COLUMNS)
    tables = tuple(
        read_table(verified(layout.profile_file(name)), tuple(cols))
        for name, cols in zip(SUMMARY_TABLES, columns, strict=True)
    )
    for name, table in zip(SUMMARY_TABLES, tables, strict=True):
        missing = [e for e in layout.experiments if e not in set(table["experiment"])]
        if missing:
            raise StageError(
                f"{layout.profile_file(name)}: no rows for experiment(s) {', '.join(missing)}; "
                "rerun the Snakemake rule 'aggregate'"
            )
    tables[-1]["seed"] = tables[-1]["seed"].astype(str)  # tests.csv: a seed or "all"
    return tables


def load_train_logs(config: dict, results_dir: Path) -> pd.DataFrame:
    layout = Layout(config, str(results_dir))
    frames = [
        read_table(verified(layout.file(experiment, "ppo", "train_log.csv", seed)), TRAIN_LOG_COLUMNS)
        .merge(read_table(verified(layout.file(experiment, "ppo", "timings.csv", seed)), TIMING_COLUMNS), on="step")
        .assign(experiment=experiment, seed=seed)
        for experiment in layout.experiments
        for seed in layout.seeds
    ]
    return pd.concat(frames, ignore_index=True)


def load_all_samples(config: dict, results_dir: Path) -> pd.DataFrame:
    layout = Layout(config, str(results_dir))
    frames = []
    for experiment in layout.experiments:
        for seed in layout.seeds:
            samples = load_samples(results_dir, experiment, seed)
            for column in ("prompt", "response"):
                if column not in samples.columns:
                    path = layout.file(experiment, "evaluate", "samples.parquet", seed)
                    raise StageError(f"{path}: missing column {column}")
            frames.append(samples.assign(experiment=experiment))
    return pd.concat(frames, ignore_index=True)


def load_provenance(config: dict, results_dir: Path) -> tuple[list[tuple[str, dict]], dict[str, dict]]:
    """provenance.json of every stage directory, labelled by its path, and each data/checksums.json."""
    records, checksums = [], {}
    for experiment in config["experiments"]:
        for label in stage_dirs(config, experiment):
            path = Path(results_dir, label, "provenance.json")
            record = read_json(path)
            for key in ("versions", "git_commit", "config_sha256", "hardware"):
                field(record, key, path)
            records.append((label, record))
        checksums[experiment] = read_checksums(stage_dir(results_dir, experiment, "data"))
    return records, checksums


def load_benchmarks(config: dict, results_dir: Path) -> pd.DataFrame:
    """Snakemake benchmark files (optional): mean wall seconds and peak RSS per file."""
    folder = benchmarks_dir(Layout(config, str(results_dir)))
    rows = []
    for path in sorted(folder.rglob("*.tsv")):
        table = read_table(path, ("s", "max_rss"), kind="tsv")
        seconds = pd.to_numeric(table["s"], errors="coerce")
        rss = pd.to_numeric(table["max_rss"], errors="coerce")  # Snakemake writes '-' where unmeasured
        rows.append((path.relative_to(folder).as_posix(), len(table), seconds.mean(), rss.max()))
    return pd.DataFrame(rows, columns=["file", "runs", "seconds", "max_rss_mb"])


CLAIMS_NUMBERS = ("estimate", "ci_low", "ci_high", "documented", "mde")  # what the Claims section formats


def load_claims(config: dict, results_dir: Path) -> pd.DataFrame | None:
    """claims.csv of the claims rule, checked as `check` checks it; None where a bundle predates it (the report
    then says so)."""
    path = Path(Layout(config, str(results_dir)).profile_file("claims.csv"))
    if not path.exists():
        return None
    table = read_claims(path)
    missing = [c for c in CLAIMS_COLUMNS if c not in table.columns]
    if missing:
        raise StageError(f"{path}: missing column(s) {', '.join(missing)}. Fix: rerun the rule 'claims'.")
    for column in CLAIMS_NUMBERS:
        if column in table.columns and not pd.api.types.is_numeric_dtype(table[column]):
            raise StageError(
                f"{path}: {column}: holds text where numbers belong. Fix: rerun the rule 'claims' "
                "(snakemake --forcerun claims)."
            )
    return table


def load_frontier(config: dict, results_dir: Path) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The frontier stage's tables, verified, where the profile runs a frontier arm; else (None, None)."""
    layout = Layout(config, str(results_dir))
    paths = layout.frontier_tables()
    if not paths:
        return None, None
    columns = (FRONTIER_COLUMNS, MATCHED_COLUMNS)
    points, matched = (read_table(verified(path), cols) for path, cols in zip(paths, columns, strict=True))
    return points, matched


def load_prompt_answers(config: dict, results_dir: Path) -> pd.DataFrame | None:
    """Every seed's answers to evaluation.prompts_file, verified, where it is set; else None."""
    paths = Layout(config, str(results_dir)).prompts_files()
    if not paths:
        return None
    columns = (*SAMPLE_COLUMNS, "experiment", "prompt", "response", "kl")
    return pd.concat([read_table(verified(path), columns, kind="parquet") for path in paths], ignore_index=True)


def load_inputs(config: dict, config_path: Path, results_dir: Path) -> Inputs:
    """Every input of the report; `config` is the validated config read from `config_path`."""
    summary, rm_summary, improvement, tests = load_aggregate_tables(config, results_dir)
    seed_metrics = load_seed_metrics(config, results_dir)
    provenance, checksums = load_provenance(config, results_dir)
    inputs = Inputs(
        layout=Layout(config, str(results_dir)),
        config_path=config_path,
        results_dir=results_dir,
        summary=summary,
        rm_summary=rm_summary,
        improvement=improvement,
        tests=tests,
        train_logs=load_train_logs(config, results_dir),
        samples=load_all_samples(config, results_dir),
        provenance=provenance,
        checksums=checksums,
        benchmarks=load_benchmarks(config, results_dir),
        seed_metrics=seed_metrics,
        claims=load_claims(config, results_dir),
    )
    inputs.frontier, inputs.frontier_matched = load_frontier(config, results_dir)
    inputs.prompts = load_prompt_answers(config, results_dir)
    inputs.calibration = load_calibration()
    return inputs
