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

import sys
from pathlib import Path

import pandas as pd

from rlhf_bench.analysis.metrics import VERDICTS
from rlhf_bench.io import StageError, input_dir, read_table, verified
from rlhf_bench.runtime import Stage

COLUMNS = ("claim_id", "required", "verdict", "reason")


RERUN = "Fix: rerun the rule 'claims' (snakemake --forcerun claims)."


def read_claims(path: Path) -> pd.DataFrame:
    """claims.csv as the claims rule wrote it (its sha256 verified): one row per claim id, a known verdict, required
    True/False."""
    table = read_table(verified(path), COLUMNS)
    unknown = sorted({str(v) for v in table.verdict} - set(VERDICTS))
    if unknown:
        raise StageError(f"{path}: verdict: unknown value(s) {unknown}; expected one of {list(VERDICTS)}. {RERUN}")
    if table.required.dtype != bool:
        found = sorted({str(v) for v in table.required})
        raise StageError(f"{path}: required: must hold True/False, found {found}. {RERUN}")
    duplicated = sorted({str(v) for v in table.claim_id[table.claim_id.duplicated()]})
    if duplicated:
        raise StageError(f"{path}: claim_id: {', '.join(duplicated)} appear(s) more than once. {RERUN}")
    return table


def failures(table: pd.DataFrame, strict: bool) -> pd.DataFrame:
    required = table[table.required]
    failed = required.verdict != "REPRODUCED" if strict else required.verdict == "NOT REPRODUCED"
    return required[failed]


def main(argv: list[str] | None = None) -> int:
    stage = Stage("check", "Exit non-zero when a required claim is NOT REPRODUCED.", config=False)
    stage.parser.add_argument("claims_csv", type=Path, nargs="?", help="results/<profile>/claims.csv")
    stage.parser.add_argument("--results-dir", type=Path, help="results/<profile> (instead of the path to claims.csv)")
    stage.parser.add_argument("--strict", action="store_true", help="fail unless every required claim is REPRODUCED")

    def body(run):
        args = run.args
        if (args.claims_csv is None) == (args.results_dir is None):
            stage.parser.error("give either claims.csv or --results-dir")
        if args.results_dir is not None:
            input_dir(args.results_dir, "--results-dir", "the run's folder (results/<profile>)")
        elif args.claims_csv.is_dir():
            raise StageError(
                f"{args.claims_csv}: claims_csv: a directory, not claims.csv. Fix: pass results/<profile>/claims.csv, "
                "or the folder as --results-dir."
            )
        table = read_claims(args.claims_csv or args.results_dir / "claims.csv")
        for row in table[table.required].itertuples():
            print(f"{row.verdict:<15} {row.claim_id}: {row.reason}")
        failed = failures(table, args.strict)
        n_required = int(table.required.sum())
        if failed.empty:
            print(f"{stage.module}: passed: {n_required} required claim(s), none failed{' (strict)' * args.strict}")
            return 0
        ids = ", ".join(failed.claim_id)
        print(f"{stage.module}: FAILED: {len(failed)} of {n_required} required claim(s): {ids}", file=sys.stderr)
        return 1

    return stage.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
