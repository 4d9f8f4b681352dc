"""Check a containerised smoke run against a host run (tests/container/run.sh): provenance, then every result.

Both runs use the same wheels (the image is built from envs/requirements.lock, which the host's .venv installs),
the same config, one torch thread per job and the same CPU, and every stage is seeded with deterministic
algorithms: so the tolerance is zero. Every data file, model weight, metrics file, table and figure must be
byte-identical. The only differences allowed are the ones that say where and when a job ran:

- provenance.json (hardware, Python build, command, wall time): checked on its own, for the container's fields;
- logs/ and benchmarks/ (Snakemake's per-rule times and memory);
- the timing columns of train_log.csv (seconds, samples_per_s), and in report.md the timing columns of its
  tables, its "Hardware:" line and its wall-time and provenance sections; report.html and report.pdf render
  report.md, timings included, so they are not compared byte for byte;
- config.json's `container` key (the run's own --config container=...).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

import pandas as pd

PINNED = {"transformers": "4.33.1", "trl": "0.7.4", "peft": "0.5.0", "accelerate": "0.28.0"}
VOLATILE_DIRS = {"logs", "benchmarks", ".snakemake"}
RENDERED = {"report.html", "report.pdf"}
TIMING_LOG_COLUMNS = ["seconds", "samples_per_s"]
TIMING_HEADER = re.compile(r"(?i)second|samples/s|wall|rss|memory|started|duration|\(s\)")
VOLATILE_SECTION = re.compile(r"(?i)wall time|provenance|hardware|timing")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_of(run: Path) -> dict[str, Path]:
    found = {}
    for top in ("results", "reports"):
        for path in sorted((run / top).rglob("*")):
            if path.is_file() and not VOLATILE_DIRS & set(path.relative_to(run).parts):
                found[str(path.relative_to(run))] = path
    return found


def masked_report(text: str) -> list[str]:
    """report.md without what records where and when it ran: timing columns, Hardware line, timing sections."""
    out: list[str] = []
    skip_level = 0
    timing_columns: set[int] = set()
    in_table = False
    for line in text.splitlines():
        heading = re.match(r"^(#+)\s+(.*)", line)
        if heading:
            level = len(heading.group(1))
            if skip_level and level > skip_level:
                continue
            skip_level = level if VOLATILE_SECTION.search(heading.group(2)) else 0
        if skip_level:
            continue
        if line.startswith("Hardware:"):
            out.append("Hardware: *")
            continue
        if line.startswith("|"):
            cells = line.strip().strip("|").split("|")
            if not in_table:
                timing_columns = {i for i, cell in enumerate(cells) if TIMING_HEADER.search(cell)}
                in_table = True
            cells = ["*" if i in timing_columns else cell for i, cell in enumerate(cells)]
            out.append("|" + "|".join(cells) + "|")
            continue
        in_table = False
        out.append(line)
    return out


def numeric_hint(host: Path, container: Path) -> str:
    """For a differing JSON or CSV file: the largest numeric difference, to tell drift from a real change."""
    try:
        if host.suffix == ".csv":
            a, b = pd.read_csv(host), pd.read_csv(container)
            if a.shape != b.shape:
                return f"shape {a.shape} vs {b.shape}"
            num = a.select_dtypes("number").columns
            return f"max |diff| {float((a[num] - b[num]).abs().max().max()):.3g}"
        if host.suffix == ".json":
            a = pd.json_normalize(json.loads(host.read_text())).T
            b = pd.json_normalize(json.loads(container.read_text())).T
            both = a.join(b, lsuffix="_host", rsuffix="_container", how="outer")
            differing = both[both.iloc[:, 0].astype(str) != both.iloc[:, 1].astype(str)]
            return "; ".join(f"{k}: {r.iloc[0]} vs {r.iloc[1]}" for k, r in differing.head(5).iterrows())
    except (ValueError, TypeError, KeyError) as exc:
        return f"({type(exc).__name__}: {exc})"
    return ""


def compare_results(host: Path, container: Path, partial: bool = False) -> tuple[list[str], dict[str, int]]:
    """Every file of both runs (partial: every file of the container run, which ran only some jobs)."""
    problems: list[str] = []
    counts = {"identical": 0, "masked": 0, "provenance": 0, "rendered": 0}
    host_files, container_files = files_of(host), files_of(container)
    for name in sorted(set(host_files) ^ set(container_files)):
        if not (partial and name in host_files):
            problems.append(f"{name}: only in the {'host' if name in host_files else 'container'} run")
    for name in sorted(set(host_files) & set(container_files)):
        a, b = host_files[name], container_files[name]
        if a.name == "provenance.json":
            counts["provenance"] += 1
        elif a.name in RENDERED:
            counts["rendered"] += 1
        elif a.name == "config.json":
            strip = [{k: v for k, v in json.loads(p.read_text()).items() if k != "container"} for p in (a, b)]
            counts["masked"] += 1
            if strip[0] != strip[1]:
                problems.append(f"{name}: differs beyond its `container` key")
        elif a.name == "train_log.csv":
            frames = [pd.read_csv(p).drop(columns=TIMING_LOG_COLUMNS, errors="ignore") for p in (a, b)]
            counts["masked"] += 1
            if not frames[0].equals(frames[1]):
                problems.append(f"{name}: differs beyond its timing columns ({numeric_hint(a, b)})")
        elif a.name == "report.md":
            ours, theirs = masked_report(a.read_text()), masked_report(b.read_text())
            counts["masked"] += 1
            if ours != theirs:
                diff = [f"host: {x!r} / container: {y!r}" for x, y in zip(ours, theirs, strict=False) if x != y]
                problems.append(f"{name}: differs beyond timings and provenance: {(diff or ['line count'])[:3]}")
        elif sha256(a) == sha256(b):
            counts["identical"] += 1
        else:
            problems.append(f"{name}: not byte-identical {numeric_hint(a, b)}".rstrip())
    return problems, counts


def check_provenance(run: Path, info: dict, runtime: str) -> tuple[list[str], int]:
    """Every stage that ran in the image says so: image reference, software digest, revision, runtime, pins."""
    problems, n = [], 0
    for path in sorted((run / "results").rglob("provenance.json")):
        n += 1
        record = json.loads(path.read_text())
        hardware = record.get("hardware") or {}
        expected = {
            "container_image": info["reference"],
            "container_digest": info["digest"],
            "container_revision": info["revision"],
            "container_runtime": runtime,
        }
        for key, want in expected.items():
            if hardware.get(key) != want:
                problems.append(f"{path.relative_to(run)}: hardware.{key} is {hardware.get(key)!r}, expected {want!r}")
        drift = {k: record.get("versions", {}).get(k) for k in PINNED if record.get("versions", {}).get(k) != PINNED[k]}
        if drift:
            problems.append(f"{path.relative_to(run)}: documented libraries not at their pins: {drift}")
    if n == 0:
        problems.append(f"{run}: no provenance.json under results/")
    return problems, n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", type=Path, required=True, help="the host run's --directory")
    parser.add_argument("--container", type=Path, required=True, help="the container run's --directory")
    parser.add_argument("--image-info", type=Path, required=True, help="the image's /opt/rlhf-bench/image.json")
    parser.add_argument(
        "--partial",
        nargs=2,
        action="append",
        default=[],
        metavar=("DIR", "IMAGE_INFO"),
        help="a run of some jobs in an image (its image.json): provenance checked, its files compared with the host's",
    )
    parser.add_argument("--runtime", default="podman", help="the runtime the jobs must report")
    args = parser.parse_args(argv)
    info = json.loads(args.image_info.read_text())

    problems, n_container = check_provenance(args.container, info, args.runtime)
    for path in sorted((args.host / "results").rglob("provenance.json")):
        hardware = json.loads(path.read_text()).get("hardware") or {}
        if hardware.get("container_image") or "container_digest" in hardware:
            problems.append(f"host {path.relative_to(args.host)}: records a container ({hardware})")
    compared, counts = compare_results(args.host, args.container)
    problems += compared
    partial_lines = []
    for run, run_info in args.partial:
        run, run_info = Path(run), json.loads(Path(run_info).read_text())
        run_problems, n_run = check_provenance(run, run_info, args.runtime)
        compared, run_counts = compare_results(args.host, run, partial=True)
        problems += [f"{run.name}: {p}" for p in run_problems + compared]
        same = "the same software digest as" if run_info["digest"] == info["digest"] else "a different digest from"
        partial_lines.append(
            f"{run.name}: {n_run} stage(s) in {run_info['reference']} ({run_info['digest'][:19]}..., {same} "
            f"{info['reference']}), {run_counts['identical']} files byte-identical to the host's"
        )
    print(
        f"provenance: {n_container} stages ran in {info['reference']} ({info['digest'][:19]}..., revision "
        f"{str(info['revision'])[:12]}) under {args.runtime}; pins {', '.join(f'{k} {v}' for k, v in PINNED.items())}"
    )
    print(
        f"host vs container: {counts['identical']} files byte-identical, {counts['masked']} identical but for "
        f"timings/container (train logs, report.md, config.json), {counts['provenance']} provenance files and "
        f"{counts['rendered']} rendered reports (html/pdf) not compared byte for byte"
    )
    for line in partial_lines:
        print(line)
    if problems:
        print(f"FAILED: {len(problems)} problem(s):", file=sys.stderr)
        for problem in problems[:40]:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print("container run matches the host run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
