"""How long the smoke DAG takes, in all and per rule, with each rule's peak memory.

Runs `snakemake --cores all` on config/config.yaml in a fresh directory (nothing cached), then reads the
files of Snakemake's `benchmark:` directive. Target (issue 2): the whole DAG in at most 10 minutes on the
project's 2-core machine.

    python benchmarks/smoke_dag.py [--config config/config.yaml] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 600


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    parser.add_argument("--cores", default="all")
    parser.add_argument("--keep", help="run in this directory (kept) instead of a temporary one")
    args = parser.parse_args(argv)

    workdir = Path(args.keep or tempfile.mkdtemp(prefix="rlhf-bench-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(Path(args.config).resolve()),
        "--cores",
        args.cores,
        "--quiet",
        "all",
    ]
    started = time.time()
    result = subprocess.run(command, cwd=ROOT, env=env)
    wall = time.time() - started
    if result.returncode != 0:
        print(f"snakemake failed (exit {result.returncode}); logs under {workdir}/results/*/logs", file=sys.stderr)
        return result.returncode

    rows = []
    for tsv in sorted(workdir.glob("results/*/benchmarks/*.tsv")):
        bench = pd.read_csv(tsv, sep="\t")
        rows.append(
            {
                "job": tsv.stem,
                "rule": tsv.stem.split(".")[1] if "." in tsv.stem else tsv.stem,
                "seconds": float(bench["s"].iloc[0]),
                "max_rss_mb": float(bench["max_rss"].iloc[0]),
            }
        )
    jobs = pd.DataFrame(rows)
    per_rule = jobs.groupby("rule").agg(
        jobs=("job", "count"),
        seconds_total=("seconds", "sum"),
        seconds_max=("seconds", "max"),
        max_rss_mb=("max_rss_mb", "max"),
    )
    pd.set_option("display.width", 120)
    print(per_rule.sort_values("seconds_total", ascending=False).round(1).to_string())
    print(
        f"\nwall time of the DAG: {wall:.1f} s (target <= {TARGET_SECONDS} s) on {os.cpu_count()} cores;"
        f" sum of job times {jobs.seconds.sum():.1f} s; peak job memory {jobs.max_rss_mb.max():.0f} MB"
    )
    out = ROOT / "benchmarks" / "out"
    out.mkdir(exist_ok=True)
    (out / "smoke_dag.json").write_text(
        json.dumps({"wall_seconds": wall, "cores": os.cpu_count(), "jobs": rows}, indent=2) + "\n"
    )
    return 0 if wall <= TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
