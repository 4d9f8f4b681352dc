"""How often the verdict engine is wrong when the truth is known: simulated runs (rlhf_bench.analysis.calibration).

    python benchmarks/verdict_calibration.py [--runs 2000] [--out benchmarks/out]

For every test kind of config/claims.yaml and 3, 5 and 10 seeds, simulates runs with the truth inside the
claim's band, on its edge and outside, decides them with the project's own verdict code (Holm across the 18
claims of a run), and prints per kind: the false REPRODUCED rate at the margin's edge and the false NOT
REPRODUCED rates at the refute test's edge and when the claim holds (each must be at most alpha within
Monte-Carlo error: `calibrated`), and the power. Writes verdict_calibration.csv (the rates), .txt (the
printed table, with the time, commit and run count) and .json (the record of this run with the table's sha256,
which the report's claims appendix quotes) to --out. Exit 1 when a rule is not calibrated.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from rlhf_bench.analysis import calibration
from rlhf_bench.analysis.claims_file import DEFAULT_CLAIMS, load_claims
from rlhf_bench.io import sha256_file

ROOT = Path(__file__).resolve().parents[1]

SHOWN = {
    "test": "test kind",
    "n_seeds": "seeds",
    "false_reproduced_at_edge_worst": "false REPRODUCED at edge",
    "false_not_reproduced_at_refute_edge_worst": "false NOT REPR. at refute edge",
    "false_not_reproduced_inside_worst": "false NOT REPR. inside",
    "false_reproduced_at_edge_family": "false REPR. at edge (Holm 18)",
    "power_inside_worst": "power (worst)",
    "power_inside_family": "power (Holm 18)",
    "refuted_outside_family": "refuted outside (Holm 18)",
    "calibrated": "calibrated",
}


def commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2000, help="simulated runs per (seed count, truth)")
    parser.add_argument("--claims", type=Path, default=DEFAULT_CLAIMS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    settings = load_claims(args.claims)
    revision = commit()  # the code that runs: read before the minutes of simulation, not after
    started = time.perf_counter()
    frame = calibration.simulate(settings, args.runs, seed=args.seed)
    table = calibration.rates(frame, settings.alpha)
    seconds = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / calibration.CALIBRATION_TABLE, index=False, float_format="%.4f")
    record = {
        "benchmark": "verdict_calibration",
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "commit": revision,
        "runs": args.runs,
        "seed": args.seed,
        "alpha": settings.alpha,
        "minutes": round(seconds / 60, 1),
        "claims_file": args.claims.name,
        "outputs": {calibration.CALIBRATION_TABLE: sha256_file(args.out / calibration.CALIBRATION_TABLE)},
    }
    (args.out / calibration.CALIBRATION_RECORD.name).write_text(json.dumps(record, indent=2) + "\n")
    shown = table[list(SHOWN)].rename(columns=SHOWN)
    header = (
        f"verdict calibration: {args.runs} simulated runs per (seed count, truth) of the {len(settings.claims)} "
        f"claims of {args.claims.name}, alpha {settings.alpha}; {seconds / 60:.1f} min on {time.strftime('%Y-%m-%d')} "
        f"({datetime.now(UTC):%H:%M} UTC), commit {revision}.\n"
        "Rates are shares of claim verdicts of that kind. 'worst': each claim decided as if the other claims of its\n"
        "run were decided with tiny p-values (Holm then tests it at alpha); 'Holm 18': Holm across the whole\n"
        "simulated run, all its claims at the same truth. calibrated: every worst-case false rate <= alpha + 3\n"
        "Monte-Carlo standard errors.\n"
    )
    text = header + "\n" + shown.to_string(index=False, float_format=lambda v: f"{v:.3f}") + "\n"
    (args.out / "verdict_calibration.txt").write_text(text)
    print(text)
    failed = table[~table.calibrated]
    if len(failed):
        print(f"NOT CALIBRATED: {', '.join(f'{r.test} ({r.n_seeds} seeds)' for r in failed.itertuples())}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
