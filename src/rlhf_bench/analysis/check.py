"""Gate a CI job on a rerun: exit non-zero when a required claim is NOT REPRODUCED.

Reads results/<profile>/claims.csv, which the DAG's `claims` rule writes, and prints one line per required
claim. Which claims are required is said in config/claims.yaml (`required: true`), and claims.csv carries it.

    python -m rlhf_bench.analysis.check results/smoke/claims.csv            # or: --results-dir results/smoke
    python -m rlhf_bench.analysis.check results/paper/claims.csv --strict   # every required claim must be REPRODUCED

Exit codes: 0 no required claim failed; 1 a required claim is NOT REPRODUCED (with --strict: is anything but
REPRODUCED, so that an underpowered or non-comparable run cannot pass a gate silently); 2 claims.csv is
missing or malformed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from rlhf_bench.analysis.claims import VERDICTS

COLUMNS = ("claim_id", "required", "verdict", "reason")


class CheckError(Exception):
    """claims.csv cannot be read as the claims stage writes it; main() prints one line and exits 2."""


def read_claims(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise CheckError(f"{path}: missing. Fix: run the Snakemake rule 'claims' first (it makes this file).")
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as err:
        raise CheckError(f"{path}: cannot read CSV ({type(err).__name__}: {err})".splitlines()[0]) from None
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise CheckError(f"{path}: missing column(s) {', '.join(missing)}. Fix: rerun the 'claims' rule.")
    unknown = sorted(set(table.verdict) - set(VERDICTS))
    if unknown:
        raise CheckError(f"{path}: unknown verdict(s) {unknown}; expected one of {list(VERDICTS)}")
    if table.required.dtype != bool:
        raise CheckError(f"{path}: column 'required' must hold True/False, found {sorted(set(table.required))}")
    return table


def failures(table: pd.DataFrame, strict: bool) -> pd.DataFrame:
    required = table[table.required]
    failed = required.verdict != "REPRODUCED" if strict else required.verdict == "NOT REPRODUCED"
    return required[failed]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rlhf_bench.analysis.check", description="Exit non-zero when a required claim is NOT REPRODUCED."
    )
    parser.add_argument("claims_csv", type=Path, nargs="?", help="results/<profile>/claims.csv")
    parser.add_argument("--results-dir", type=Path, help="results/<profile> (instead of the path to claims.csv)")
    parser.add_argument("--strict", action="store_true", help="fail unless every required claim is REPRODUCED")
    args = parser.parse_args(argv)
    if (args.claims_csv is None) == (args.results_dir is None):
        parser.error("give either claims.csv or --results-dir")
    path = args.claims_csv or args.results_dir / "claims.csv"
    try:
        table = read_claims(path)
    except CheckError as err:
        print(f"rlhf_bench.analysis.check: error: {err}", file=sys.stderr)
        return 2
    for row in table[table.required].itertuples():
        print(f"{row.verdict:<15} {row.claim_id}: {row.reason}")
    failed = failures(table, args.strict)
    n_required = int(table.required.sum())
    if failed.empty:
        print(
            f"rlhf_bench.analysis.check: passed: {n_required} required claim(s), none failed{' (strict)' * args.strict}"
        )
        return 0
    ids = ", ".join(failed.claim_id)
    print(f"rlhf_bench.analysis.check: FAILED: {len(failed)} of {n_required} required claim(s): {ids}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
