"""`rlhf-bench`: the commands people run most, each a thin layer over Snakemake's command line or a stage's CLI
(never a second scheduler).

    rlhf-bench run [--profile smoke|imdb-cpu|paper|FILE] [--seeds 0,1,2] [--steps N] [--batch-size N] [--cores N] [-n]
    rlhf-bench evaluate --profile P --prompts my_prompts.txt   # base and RLHF policies of every seed answer them
    rlhf-bench report --profile P                              # rebuild the report from results/<profile>/ alone
    rlhf-bench check results/<profile>/claims.csv [--strict]
    rlhf-bench compare EARLIER RERUN [--fail-on-difference]
    rlhf-bench compare --reference --profile P                 # your rerun against ours (reference/<profile>)
    rlhf-bench bundle --profile P [--out DIR]                  # a run's numbers and records, no weights

`--seeds`, `--steps` and `--batch-size` set values inside every experiment of the profile (Snakemake's `--config`,
deep-merged); arguments after `--` go to Snakemake as they are. Run it from the checkout (where results/ goes).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from rlhf_bench.config import ConfigError, load
from rlhf_bench.runtime import seed_argument

ROOT = Path(__file__).resolve().parents[2]  # the checkout: Snakefile, config/
PROFILES = {"smoke": "config/config.yaml", "imdb-cpu": "config/imdb-cpu.yaml", "paper": "config/paper.yaml"}


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments get one line (`rlhf-bench run: error: ...`), not a usage block; --help stays whole."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}. Fix: see `{self.prog} --help`.\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is below 1")
    return value


def seed_list(text: str) -> list[int]:
    """`0,1,2`: each a seed as a stage's --seed takes it, each once."""
    seeds = [seed_argument(part) for part in text.split(",")]
    if len(set(seeds)) < len(seeds):
        raise argparse.ArgumentTypeError(f"'{text}': each seed once")
    return seeds


def config_file(profile: str) -> Path:
    """A profile's config: a name of PROFILES, or a config file."""
    path = ROOT / PROFILES[profile] if profile in PROFILES else Path(profile)
    if not path.is_file():
        names = ", ".join(PROFILES)
        raise ConfigError(f"--profile {profile}: neither a profile ({names}) nor a config file. Fix: name one.")
    return path


def overrides(config_path: Path, args: argparse.Namespace) -> list[str]:
    """Snakemake `--config` values for --seeds, --steps and --batch-size: YAML, deep-merged into every experiment.
    The file itself is checked first (one line where it is bad); the Snakefile validates the merged config."""
    experiments = list(load(config_path).experiments)
    values = []
    if getattr(args, "seeds", None) is not None:
        values.append(f"seeds={yaml.safe_dump(args.seeds, default_flow_style=True).strip()}")
    ppo = {key: value for key, value in (("steps", args.steps), ("batch_size", args.batch_size)) if value is not None}
    if ppo:
        block = {name: {"ppo": dict(ppo)} for name in experiments}  # copies: no YAML anchors in the command
        values.append(f"experiments={yaml.safe_dump(block, default_flow_style=True, width=10**6).strip()}")
    return values


def snakemake(config_path: Path, config_values: list[str], targets: list[str], args: argparse.Namespace) -> int:
    """Snakemake on the checkout's Snakefile with this interpreter, which every job's `python` then is too."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--cores", str(args.cores),
               "--configfile", str(config_path)]  # fmt: skip
    if config_values:
        command += ["--config", *config_values]
    if args.dry_run:
        command.append("--dry-run")
    command += [*args.snakemake_args, *targets]
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    print("rlhf-bench:", shlex.join(["snakemake", *command[3:]]), file=sys.stderr)
    return subprocess.run(command, env=env, check=False).returncode


def cmd_run(args) -> int:
    config_path = config_file(args.profile)
    return snakemake(config_path, overrides(config_path, args), [], args)


def cmd_evaluate(args) -> int:
    from rlhf_bench.layout import Layout

    config_path = config_file(args.profile)
    prompts = Path(args.prompts)
    if not prompts.is_file():
        raise ConfigError(f"--prompts {prompts}: no such file. Fix: a text file (one prompt a line) or JSONL.")
    config = load(config_path).raw
    values = [f"evaluation={yaml.safe_dump({'prompts_file': str(prompts)}, default_flow_style=True).strip()}"]
    layout = Layout({**config, "evaluation": {"prompts_file": str(prompts)}})
    return snakemake(config_path, values, [*layout.prompts_files(), *layout.report_files()], args)


def cmd_report(args) -> int:
    from rlhf_bench.layout import Layout
    from rlhf_bench.report.render import main as report

    config = load(config_file(args.profile)).raw
    layout = Layout(config, args.results_dir)
    return report(["--config", f"{layout.results}/config.json", "--results-dir", layout.results,
                   "--out-dir", args.out_dir or layout.reports])  # fmt: skip


def cmd_check(args) -> int:
    from rlhf_bench.analysis.check import main as check

    return check([str(args.claims_csv), *(["--strict"] if args.strict else [])])


def profile_results(profile: str) -> tuple[str, Path]:
    """A profile's name and its results folder (results/<profile>), as its config lays them out."""
    from rlhf_bench.layout import Layout

    config = load(config_file(profile)).raw
    return config["profile"], Path(Layout(config).results)


def cmd_compare(args) -> int:
    from rlhf_bench.analysis.compare import REFERENCE_DIR
    from rlhf_bench.analysis.compare import main as compare

    if args.reference:
        if args.earlier or args.rerun:
            raise ConfigError("--reference compares results/<profile> with ours: give no EARLIER or RERUN with it")
        name, results = profile_results(args.profile)
        earlier, rerun = REFERENCE_DIR / name, results
        if not earlier.is_dir():
            print(f"rlhf-bench compare: no reference bundle for profile '{name}' ({earlier}): nothing to compare")
            return 0
        out = args.out_dir or str(results / "compare" / "reference")
    elif args.earlier is None or args.rerun is None:
        raise ConfigError("compare needs EARLIER and RERUN (two results bundles), or --reference [--profile P]")
    else:
        earlier, rerun, out = args.earlier, args.rerun, args.out_dir
    extra = ["--fail-on-difference"] if args.fail_on_difference else []
    extra += ["--out-dir", str(out)] if out else []
    return compare([str(earlier), str(rerun), *extra])


def cmd_bundle(args) -> int:
    from rlhf_bench.analysis.compare import REFERENCE_DIR, write_bundle
    from rlhf_bench.io import StageError

    name, results = profile_results(args.profile)
    out = Path(args.out) if args.out else REFERENCE_DIR / name
    try:
        files = write_bundle(results, out)
    except StageError as exc:
        raise ConfigError(str(exc)) from None
    print(f"rlhf-bench bundle: {len(files)} files of {results} (numbers and records, no weights) in {out}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = OneLineParser(prog="rlhf-bench", description=__doc__.split("\n\n")[0])
    commands = top.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    def with_snakemake(sub):
        sub.add_argument("--profile", default="smoke", help=f"{', '.join(PROFILES)} or a config file (default: smoke)")
        sub.add_argument("--cores", default="all", help="Snakemake --cores (default: all)")
        sub.add_argument("-n", "--dry-run", action="store_true", help="show the jobs, run none")
        sub.add_argument("snakemake_args", nargs="*", help="after `--`: passed to Snakemake as they are")

    run = commands.add_parser("run", help="the whole DAG of a profile", description="The whole DAG of a profile.")
    with_snakemake(run)
    run.add_argument("--seeds", type=seed_list, help="PPO seeds of every experiment, e.g. 0,1,2")
    run.add_argument("--steps", type=positive_int, help="ppo.steps of every experiment")
    run.add_argument("--batch-size", type=positive_int, help="ppo.batch_size of every experiment")
    run.set_defaults(handler=cmd_run)

    evaluate = commands.add_parser(
        "evaluate", help="base and RLHF policies of every seed answer your prompts",
        description="Base and RLHF policies of every seed answer your prompts (a text file, one per line, or JSONL "
        "with `prompt`), scored by the reward and the judge; shown in the report beside the held-out evaluation.",
    )  # fmt: skip
    with_snakemake(evaluate)
    evaluate.add_argument("--prompts", required=True, help="your prompts: .txt (one per line) or .jsonl (`prompt`)")
    evaluate.set_defaults(handler=cmd_evaluate, seeds=None, steps=None, batch_size=None)

    report = commands.add_parser("report", help="rebuild the report from results/<profile>/ alone",
                                 description="Rebuild reports/<profile>/ from results/<profile>/ alone.")  # fmt: skip
    report.add_argument("--profile", default="smoke", help=f"{', '.join(PROFILES)} or a config file")
    report.add_argument("--results-dir", help="results/<profile> elsewhere (e.g. a copied bundle)")
    report.add_argument("--out-dir", help="where the report goes (default: reports/<profile>)")
    report.set_defaults(handler=cmd_report)

    check = commands.add_parser("check", help="fail when a required claim is not reproduced",
                                description="Exit non-zero when a required claim is NOT REPRODUCED.")  # fmt: skip
    check.add_argument("claims_csv", type=Path, help="results/<profile>/claims.csv")
    check.add_argument("--strict", action="store_true", help="fail unless every required claim is REPRODUCED")
    check.set_defaults(handler=cmd_check)

    compare = commands.add_parser("compare", help="a rerun against an earlier results bundle",
                                  description="Every metric and provenance difference of a rerun against an earlier "
                                  "results bundle (a copied results/<profile>).")  # fmt: skip
    compare.add_argument("earlier", type=Path, nargs="?", help="the earlier bundle (results/<profile> copied)")
    compare.add_argument("rerun", type=Path, nargs="?", help="the rerun's results/<profile>")
    compare.add_argument("--reference", action="store_true",
                         help="results/<profile> against the project's own bundle, reference/<profile>")  # fmt: skip
    compare.add_argument("--profile", default="smoke", help="with --reference: the profile (default: smoke)")
    compare.add_argument("--fail-on-difference", action="store_true", help="exit 1 when a metric is DIFFERENT")
    compare.add_argument("--out-dir", help="write metrics.csv, provenance.csv and summary.md here (with "
                         "--reference: results/<profile>/compare/reference unless given)")  # fmt: skip
    compare.set_defaults(handler=cmd_compare)

    bundle = commands.add_parser("bundle", help="a finished run's numbers and records as a results bundle",
                                 description="Copy results/<profile>'s metrics, tables, claims and provenance (no "
                                 "weights, samples or data) into a bundle that compare reads; by default the "
                                 "project's reference bundle, reference/<profile>.")  # fmt: skip
    bundle.add_argument("--profile", default="smoke", help=f"{', '.join(PROFILES)} or a config file")
    bundle.add_argument("--out", help="the bundle's folder (default: reference/<profile>)")
    bundle.set_defaults(handler=cmd_bundle)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as exc:
        print(f"rlhf-bench {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
