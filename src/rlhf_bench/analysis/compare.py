"""Compare a rerun with an earlier results bundle: every metric's difference and every provenance difference.

A results bundle is the directory results/<profile>/ of a finished run, self-contained: config.json (the
resolved config), <experiment>/evaluate/seed<k>/{metrics.json, samples.parquet}, <experiment>/reward/rm_metrics.json,
a provenance.json in every stage directory, data/checksums.json, and the aggregate and claims tables. Copy it
anywhere (or unpack an archive of it) and compare:

    python -m rlhf_bench.analysis.compare EARLIER_BUNDLE RERUN_BUNDLE [--out-dir DIR] [--fail-on-difference]

Per experiment, metric and policy, the difference rerun - earlier of the means over seeds with its 95% interval
and a TOST equivalence test with the margins of config/claims.yaml (rerun_margins). Where both bundles ran the
same seeds, seeds are paired (same seed, same data order: a one-sample test on the per-seed differences);
otherwise Welch. Reward-model accuracies are two independent proportions (Newcomb interval, Agresti-Caffo TOST).
Each metric gets a status:

  IDENTICAL      every per-seed value (or pair count) is exactly equal: no test needed
  EQUIVALENT     TOST rejects at alpha: the difference lies within +-margin
  DIFFERENT      the difference lies outside +-margin (its 95% interval wholly outside the band)
  INCONCLUSIVE   neither: too few seeds or too much spread to tell
  ONLY IN A / B  measured in one bundle only

Then every provenance difference, grouped: library versions, hardware, config (the resolved configs and their
hashes), data checksums and code (git commit). Start times, durations and command lines differ by nature and
are left out. If both bundles hold claims.csv, verdicts that changed are listed too.

Exit codes: 0 compared (differences are reported, not failures), 1 with --fail-on-difference when a metric is
DIFFERENT, 2 when a bundle is missing or malformed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from rlhf_bench.analysis import proportions, stats
from rlhf_bench.analysis.aggregate import load_seed_metrics, ordered_metrics, pair_counts, rm_metrics_file
from rlhf_bench.analysis.check import read_claims
from rlhf_bench.analysis.claims_file import DEFAULT_CLAIMS, load_claims
from rlhf_bench.analysis.metrics import CONFIDENCE, RM_METRICS, fmt, fmt_p
from rlhf_bench.io import (
    StageError,
    field,
    flatten,
    input_dir,
    input_file,
    output_dir,
    read_json,
    staged_outputs,
    verified,
)
from rlhf_bench.runtime import Stage

# Provenance keys that differ between any two runs by nature: they would bury the differences that matter.
VOLATILE = ("started_utc", "seconds", "command", "job_id", "restart_count")


def volatile(key: str) -> bool:
    """A provenance key whose value differs between any two runs by nature: VOLATILE, and the wall clock's
    measurements (a stage's `throughput` record, the checksum of PPO's per-step timings.csv)."""
    return key.split(".")[-1] in VOLATILE or key.startswith("throughput.") or key.endswith(".timings.csv")


METRIC_COLUMNS = [
    "experiment", "metric", "policy", "status", "design", "n_seeds_a", "n_seeds_b", "mean_a", "mean_b",
    "difference", "ci_low", "ci_high", "margin", "p_equivalence", "p_outside",
]  # fmt: skip
PROVENANCE_COLUMNS = ["category", "key", "value_a", "value_b", "n_files", "files"]


def bundle_config(path: Path) -> dict:
    """A bundle's resolved config, read for its seeds and experiment names only: an earlier bundle may predate
    the current config schema, so it is not validated against it."""
    config = read_json(path)
    seeds = field(config, "seeds", path)
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise StageError(f"{path}: field 'seeds' must be a non-empty list of integers, found {seeds!r}")
    if not isinstance(field(config, "experiments", path), dict) or not config["experiments"]:
        raise StageError(f"{path}: field 'experiments' must be a non-empty mapping")
    return config


class Bundle:
    """One results directory: its resolved config, per-seed metrics, pair counts and provenance files."""

    def __init__(self, path: Path, argument: str = "bundle"):
        self.path = input_dir(path, argument, "a results bundle (a results/<profile> folder)")
        self.config = bundle_config(self.path / "config.json")
        self.metrics = load_seed_metrics(self.config, self.path)

    @property
    def experiments(self) -> list[str]:
        return list(self.config["experiments"])

    def seed_values(self, experiment: str, metric: str, policy: str) -> pd.Series:
        """Non-null values of a metric by seed."""
        rows = self.metrics[
            (self.metrics.experiment == experiment) & (self.metrics.metric == metric) & (self.metrics.policy == policy)
        ]
        return rows.set_index("seed")["value"].dropna()

    def pair_counts(self, experiment: str, split: str) -> tuple[int, int]:
        path = rm_metrics_file(self.path, experiment)
        return pair_counts(read_json(verified(path)), split, path)

    def json_files(self) -> dict[str, dict]:
        """Every provenance.json and checksums.json, and config.json, by path relative to the bundle."""
        files = {"config.json": read_json(self.path / "config.json")}
        for pattern in ("**/provenance.json", "**/checksums.json"):
            for path in sorted(self.path.glob(pattern)):
                files[path.relative_to(self.path).as_posix()] = read_json(path)
        return files


def margin_for(metric: str, margins: dict, earlier_mean: float, later_mean: float) -> float:
    """The stated absolute margin of a metric, else the relative margin times the earlier mean's size."""
    if metric in margins.get("absolute", {}):
        return float(margins["absolute"][metric])
    scale = abs(earlier_mean) or abs(later_mean)  # a metric that is 0 before (kl_mean of base) uses the rerun's
    return float(margins.get("relative", 0.05)) * scale


def status_of(p_equivalence: float, p_outside: float, alpha: float) -> str:
    if p_outside < alpha:
        return "DIFFERENT"
    if p_equivalence < alpha:
        return "EQUIVALENT"
    return "INCONCLUSIVE"


def compare_seed_metric(a: pd.Series, b: pd.Series, margin: float, alpha: float) -> dict:
    """Difference b - a of two sets of per-seed values: paired by seed where the seeds match, else Welch."""
    row = {"n_seeds_a": len(a), "n_seeds_b": len(b), "mean_a": float(a.mean()), "mean_b": float(b.mean())}
    row["margin"] = margin
    if len(a) == len(b) and set(a.index) == set(b.index) and np.array_equal(a.sort_index(), b.sort_index()):
        return {**row, "status": "IDENTICAL", "design": "paired by seed", "difference": 0.0,
                "ci_low": 0.0, "ci_high": 0.0, "p_equivalence": 0.0, "p_outside": 1.0}  # fmt: skip
    if margin <= 0:
        # Both means are zero yet the values differ: no scale to state a margin on, so no equivalence either.
        margin = math.inf
    if set(a.index) == set(b.index):
        diffs = (b - a.reindex(b.index)).to_numpy()
        row["design"] = "paired by seed"
        row["difference"], row["ci_low"], row["ci_high"] = stats.t_interval(diffs, CONFIDENCE)
        if diffs.size >= 2 and np.all(diffs == diffs[0]):
            # Every seed moved by the same amount: the difference is known exactly (t_interval would give no
            # interval: over seeds there is no spread to estimate, but here there is none to have).
            row["ci_low"] = row["ci_high"] = float(diffs[0])
            inside = -margin < diffs[0] < margin
            row["p_equivalence"], row["p_outside"] = (0.0, 1.0) if inside else (1.0, 0.0)
        else:
            row["p_equivalence"] = stats.tost_one_sample(diffs, -margin, margin)
            row["p_outside"] = stats.one_sample_outside(diffs, -margin, margin)
    else:
        row["design"] = "Welch (different seeds)"
        row["difference"], row["ci_low"], row["ci_high"] = stats.welch_diff_interval(b, a, CONFIDENCE)
        row["p_equivalence"] = stats.tost_two_sample(b, a, -margin, margin)
        below = stats.welch_diff_test(b, a, -margin, "less")[1]
        above = stats.welch_diff_test(b, a, margin, "greater")[1]
        row["p_outside"] = stats.outside_p(below, above)
    row["status"] = status_of(row["p_equivalence"], row["p_outside"], alpha)
    return row


def compare_proportion(earlier: tuple[int, int], later: tuple[int, int], margin: float, alpha: float) -> dict:
    """Difference of two reward-model accuracies (independent proportions: the pairs are not matched here)."""
    (ka, na), (kb, nb) = earlier, later
    row = {"n_seeds_a": math.nan, "n_seeds_b": math.nan, "mean_a": ka / na, "mean_b": kb / nb, "margin": margin}
    row["difference"], row["ci_low"], row["ci_high"] = proportions.diff_proportions_interval(kb, nb, ka, na, CONFIDENCE)
    row["design"] = "two proportions (Newcomb, Agresti-Caffo)"
    if (ka, na) == (kb, nb):
        return {**row, "status": "IDENTICAL", "p_equivalence": 0.0, "p_outside": 1.0}
    row["p_equivalence"] = proportions.tost_two_proportions(kb, nb, ka, na, -margin, margin)
    below = proportions.two_proportions_test(kb, nb, ka, na, -margin, "less")
    above = proportions.two_proportions_test(kb, nb, ka, na, margin, "greater")
    row["p_outside"] = stats.outside_p(below, above)
    row["status"] = status_of(row["p_equivalence"], row["p_outside"], alpha)
    return row


def metric_table(a: Bundle, b: Bundle, margins: dict, alpha: float) -> pd.DataFrame:
    rows = []
    for experiment in [e for e in a.experiments if e not in b.experiments]:
        rows.append({"experiment": experiment, "metric": "*", "policy": "*", "status": "ONLY IN A"})
    for experiment in [e for e in b.experiments if e not in a.experiments]:
        rows.append({"experiment": experiment, "metric": "*", "policy": "*", "status": "ONLY IN B"})
    for experiment in [e for e in a.experiments if e in b.experiments]:
        for metric, split in RM_METRICS.items():
            ka, kb = a.pair_counts(experiment, split), b.pair_counts(experiment, split)
            margin = margin_for(metric, margins, ka[0] / ka[1], kb[0] / kb[1])
            row = compare_proportion(ka, kb, margin, alpha)
            rows.append({"experiment": experiment, "metric": metric, "policy": "reward model", **row})
        names = set(a.metrics[a.metrics.experiment == experiment].metric)
        names |= set(b.metrics[b.metrics.experiment == experiment].metric)
        for metric in ordered_metrics(names):
            for policy in ("base", "rlhf"):
                va, vb = a.seed_values(experiment, metric, policy), b.seed_values(experiment, metric, policy)
                key = {"experiment": experiment, "metric": metric, "policy": policy}
                if va.empty and vb.empty:
                    continue  # measured in neither (a judge metric without a judge)
                if va.empty or vb.empty:
                    rows.append({**key, "status": "ONLY IN B" if va.empty else "ONLY IN A"})
                    continue
                margin = margin_for(metric, margins, float(va.mean()), float(vb.mean()))
                rows.append({**key, **compare_seed_metric(va, vb, margin, alpha)})
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def json_leaves(data) -> dict[str, str]:
    """Nested JSON as dotted keys -> canonical JSON text of each leaf (lists stay whole)."""
    return {key: json.dumps(value, sort_keys=True) for key, value in flatten(data).items()}


def category(file: str, key: str) -> str:
    if file == "config.json" or key == "config_sha256":
        return "config"
    if file.endswith("checksums.json") or key.startswith("data_checksums"):
        return "data checksums"
    if key.startswith(("outputs", "inputs")):
        return "output checksums"  # weights, metrics and tables as their stage wrote them
    if key.startswith(("versions", "version_drift")):
        return "library versions"
    if key.startswith("hardware"):
        return "hardware"
    if key == "git_commit":
        return "code"
    return "other"


def provenance_table(a: Bundle, b: Bundle) -> pd.DataFrame:
    """Every differing provenance value, grouped over the files that share it (torch differs in every stage)."""
    files_a, files_b = a.json_files(), b.json_files()
    groups: dict[tuple, list[str]] = {}
    for name in sorted(set(files_a) | set(files_b)):
        if name not in files_a or name not in files_b:
            key = (
                "files",
                "(file)",
                "present" if name in files_a else "missing",
                "present" if name in files_b else "missing",
            )
            groups.setdefault(key, []).append(name)
            continue
        flat_a, flat_b = json_leaves(files_a[name]), json_leaves(files_b[name])
        for key in sorted(set(flat_a) | set(flat_b)):
            if volatile(key) and name != "config.json":
                continue
            value_a, value_b = flat_a.get(key, "(absent)"), flat_b.get(key, "(absent)")
            if value_a != value_b:
                groups.setdefault((category(name, key), key, value_a, value_b), []).append(name)
    rows = [
        {"category": cat, "key": key, "value_a": va, "value_b": vb, "n_files": len(files),
         "files": ", ".join(files[:3]) + (f", ... ({len(files) - 3} more)" if len(files) > 3 else "")}
        for (cat, key, va, vb), files in sorted(groups.items())
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=PROVENANCE_COLUMNS)


def claim_changes(a: Bundle, b: Bundle) -> pd.DataFrame | None:
    """Claims whose verdict changed, where both bundles have claims.csv."""
    files = [bundle.path / "claims.csv" for bundle in (a, b)]
    if not all(p.is_file() for p in files):
        return None
    ca, cb = (read_claims(p).set_index("claim_id")["verdict"] for p in files)
    joined = pd.concat([ca.rename("verdict_a"), cb.rename("verdict_b")], axis=1)
    return joined[joined.verdict_a != joined.verdict_b].reset_index()


def summary_text(a: Bundle, b: Bundle, metrics: pd.DataFrame, provenance: pd.DataFrame, claims) -> str:
    counts = ", ".join(f"{n} {status}" for status, n in metrics.status.value_counts().items())
    lines = ["# Rerun comparison", "", f"- A (earlier): `{a.path}`", f"- B (rerun): `{b.path}`", ""]
    lines += [f"## Metrics: {len(metrics)} compared ({counts})", ""]
    notable = metrics[~metrics.status.isin(["IDENTICAL", "EQUIVALENT"])]
    for row in notable.itertuples():
        if row.status.startswith("ONLY"):
            lines.append(f"- {row.status}: {row.experiment} {row.metric} ({row.policy})")
            continue
        lines.append(
            f"- {row.status}: {row.experiment} {row.metric} ({row.policy}): {fmt(row.mean_a)} -> {fmt(row.mean_b)}, "
            f"difference {fmt(row.difference)} [{fmt(row.ci_low)}, {fmt(row.ci_high)}], margin +-{fmt(row.margin)}, "
            f"TOST p={fmt_p(row.p_equivalence)}, outside p={fmt_p(row.p_outside)} ({row.design})"
        )
    if notable.empty:
        lines.append("Every metric is identical or equivalent within its margin.")
    lines += ["", f"## Provenance: {len(provenance)} differences", ""]
    for row in provenance.itertuples():
        lines.append(
            f"- {row.category}: `{row.key}`: {row.value_a} -> {row.value_b} ({row.n_files} file(s): {row.files})"
        )
    if provenance.empty:
        lines.append("No provenance difference (library versions, hardware, config, data checksums, code).")
    if claims is not None:
        lines += ["", f"## Claims: {len(claims)} verdict(s) changed", ""]
        lines += [f"- {r.claim_id}: {r.verdict_a} -> {r.verdict_b}" for r in claims.itertuples()]
    return "\n".join(lines) + "\n"


# What a results bundle keeps: every number and every record the comparison reads, no weights, samples or data.
BUNDLE_FILES = ("config.json", "*.csv", "*.provenance.json", "**/provenance.json", "**/checksums.json",
                "**/metrics.json", "**/rm_metrics.json", "**/train_log.csv")  # fmt: skip
# The project's own published bundles (reference/<profile>/): `make run` and `make imdb-cpu` end by comparing a
# user's rerun with ours, as a rerun of a paper is compared with the paper.
REFERENCE_DIR = DEFAULT_CLAIMS.parents[1] / "reference"


def write_bundle(results: Path, out: Path) -> list[str]:
    """Copy a finished run's numbers and records (BUNDLE_FILES; not PPO's path snapshots or checkpoints) from
    results/<profile>/ to `out`, replacing what was there; the files copied, relative to both."""
    results = input_dir(results, "results", "a finished run's results/<profile> folder")
    Bundle(results, "results")  # the bundle it makes must be one: config and every seed's metrics present
    found = {path.relative_to(results) for pattern in BUNDLE_FILES for path in results.glob(pattern) if path.is_file()}
    names = sorted(
        path.as_posix() for path in found
        if path.parts[0] not in ("compare", "benchmarks", "logs", "tracking")
        and not any(part.endswith(".checkpoint") for part in path.parts)
    )  # fmt: skip
    with staged_outputs(out) as staging:  # the whole bundle or nothing
        for name in names:
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_bytes((results / name).read_bytes())
    return names


def compare(path_a: Path, path_b: Path, claims_path: Path = DEFAULT_CLAIMS):
    a, b = Bundle(path_a, "bundle_a"), Bundle(path_b, "bundle_b")
    settings = load_claims(claims_path, [*a.experiments, *b.experiments])
    metrics = metric_table(a, b, settings.rerun_margins, settings.alpha)
    provenance = provenance_table(a, b)
    claims = claim_changes(a, b)
    return metrics, provenance, claims, summary_text(a, b, metrics, provenance, claims)


def main(argv: list[str] | None = None) -> int:
    stage = Stage("compare", "Compare a rerun's results bundle with an earlier one.", config=False)
    stage.parser.add_argument("bundle_a", type=Path, help="the earlier bundle (a results/<profile> directory)")
    stage.parser.add_argument("bundle_b", type=Path, help="the rerun's bundle")
    stage.parser.add_argument("--claims", type=Path, default=DEFAULT_CLAIMS, help="claims file with rerun_margins")
    stage.parser.add_argument("--out-dir", type=Path, help="write metrics.csv, provenance.csv and summary.md here")
    stage.parser.add_argument("--fail-on-difference", action="store_true", help="exit 1 when a metric is DIFFERENT")

    def body(run):
        args = run.args
        input_file(args.claims, "--claims", "the claims file with rerun_margins (config/claims.yaml)")
        if args.out_dir is not None:
            output_dir(args.out_dir, "--out-dir", "a folder (results/<profile>/compare/<name>)")
        metrics, provenance, claims, text = compare(args.bundle_a, args.bundle_b, args.claims)
        if args.out_dir is not None:
            with staged_outputs(args.out_dir) as staging:  # all three files or none
                metrics.to_csv(staging / "metrics.csv", index=False)
                provenance.to_csv(staging / "provenance.csv", index=False)
                (staging / "summary.md").write_text(text, encoding="utf-8")
        print(text, end="")
        return 1 if args.fail_on_difference and (metrics.status == "DIFFERENT").any() else 0

    return stage.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
