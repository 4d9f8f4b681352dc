"""How long the report takes to build from a results bundle alone (no training): target < 30 s.

    python benchmarks/report_build.py [results/smoke] [--repeats 3]

Runs `python -m rlhf_bench.report` on the bundle into a temporary directory, so users can restyle the report
and rebuild it in seconds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 30.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", nargs="?", default="results/smoke", help="a results/<profile> directory")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    bundle = Path(args.bundle)
    if not (bundle / "config.json").exists():
        print(f"{bundle}: no config.json: not a results bundle. Fix: run `make run` first.", file=sys.stderr)
        return 2
    times = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            command = [sys.executable, "-m", "rlhf_bench.report", "--config", str(bundle / "config.json"),
                       "--results-dir", str(bundle), "--out-dir", out]  # fmt: skip
            subprocess.run(command, check=True, capture_output=True)
            times.append(time.perf_counter() - started)
    print(f"report build from {bundle}: median {statistics.median(times):.1f} s over {len(times)} runs "
          f"(min {min(times):.1f}, max {max(times):.1f}; target < {TARGET_SECONDS:.0f} s)")  # fmt: skip
    return 0 if statistics.median(times) < TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
