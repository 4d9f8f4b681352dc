"""How long a profile's DAG takes, in all and per rule, with each rule's peak memory.

Runs `snakemake --cores all` on a config (default: the smoke profile, config/config.yaml) in a fresh directory
(nothing cached), then reads the files of Snakemake's `benchmark:` directive. Targets on the project's 2-core
machine: the smoke DAG in at most 10 minutes (issue 2), the imdb-cpu DAG in at most 60 (issue 4).

    python benchmarks/smoke_dag.py [--config config/config.yaml] [--keep DIR] [--target-minutes 10]
    python benchmarks/smoke_dag.py --config config/imdb-cpu.yaml --keep . --target-minutes 60

--keep . runs in the project root, where imdb-cpu's relative data path (../shared/data/imdb) resolves.
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
import yaml

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    parser.add_argument("--cores", default="all")
    parser.add_argument("--keep", help="run in this directory (kept) instead of a temporary one")
    parser.add_argument("--target-minutes", type=float, default=10.0, help="the wall-time target to report against")
    args = parser.parse_args(argv)
    target_seconds = 60 * args.target_minutes

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
    profile = yaml.safe_load(Path(args.config).read_text())["profile"]  # only this run's rules, not other profiles
    for tsv in sorted(workdir.glob(f"results/{profile}/benchmarks/*.tsv")):
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
        f"\nwall time of the DAG: {wall:.1f} s (target <= {target_seconds:.0f} s) on {os.cpu_count()} cores;"
        f" sum of job times {jobs.seconds.sum():.1f} s; peak job memory {jobs.max_rss_mb.max():.0f} MB"
    )
    out = ROOT / "benchmarks" / "out"
    out.mkdir(exist_ok=True)
    (out / f"{Path(args.config).stem}_dag.json").write_text(
        json.dumps({"wall_seconds": wall, "cores": os.cpu_count(), "jobs": rows}, indent=2) + "\n"
    )
    return 0 if wall <= target_seconds else 1


if __name__ == "__main__":
    raise SystemExit(main())
