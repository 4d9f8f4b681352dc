"""The claims file (config/claims.yaml): its schema, the Claim record, and loading it with one-line errors."""

from __future__ import annotations

import copy
import difflib
import functools
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from rlhf_bench.analysis.metrics import METRIC_ORDER, RM_METRICS
from rlhf_bench.config import ConfigError, _describe, _with_defaults
from rlhf_bench.io import StageError, read_yaml

DEFAULT_CLAIMS = Path(__file__).resolve().parents[3] / "config" / "claims.yaml"
# benchmarks/verdict_calibration.py's committed output: the rates, and beside them the record of the run that
# measured them (date, commit, runs, alpha and the table's sha256), which the report's claims appendix quotes.
CALIBRATION_DIR = DEFAULT_CLAIMS.parents[1] / "benchmarks" / "out"
CALIBRATION_TABLE = "verdict_calibration.csv"
CALIBRATION_RECORD = CALIBRATION_DIR / "verdict_calibration.json"
PROFILES_DIR = DEFAULT_CLAIMS.parent  # config/: the project's profiles (config.yaml, imdb-cpu.yaml, paper.yaml)
KINDS = (
    "proportion_equivalence", "value_equivalence", "difference_equivalence", "direction", "threshold",
    "non_inferiority", "not_measured",
)  # fmt: skip


def _requires(kind: str, fields: list[str]) -> dict:
    return {"if": {"properties": {"test": {"const": kind}}}, "then": {"required": fields}}


# The claims file's schema. Kept here rather than in config/schema.yaml: it is a different file with its own
# life (it changes when a write-up is read again, not when a profile is tuned).
CLAIMS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["claims"],
    "properties": {
        "alpha": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.5, "default": 0.05},
        "power": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "default": 0.8},
        "bootstrap_resamples": {"type": "integer", "minimum": 100, "default": 10000},
        "stability_reruns": {"type": "integer", "minimum": 0, "default": 100},
        "rerun_margins": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "properties": {
                "relative": {"type": "number", "exclusiveMinimum": 0, "default": 0.05},
                "absolute": {
                    "type": "object",
                    "default": {},
                    "propertyNames": {"enum": [*METRIC_ORDER, *RM_METRICS]},
                    "additionalProperties": {"type": "number", "exclusiveMinimum": 0},
                },
            },
        },
        "claims": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "seed_file", "quote", "experiment", "metric", "test", "definition", "required"],
                "properties": {
                    "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$"},
                    "seed_file": {"type": "string", "minLength": 1},
                    "quote": {"type": "string", "minLength": 1},
                    "experiment": {"type": "string", "minLength": 1},
                    "metric": {"enum": [*METRIC_ORDER, *RM_METRICS, "none"]},
                    "test": {"enum": list(KINDS)},
                    "policy": {"enum": ["base", "rlhf"], "default": "rlhf"},
                    "documented": {"type": "number"},
                    "documented_pair": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
                    "documented_n": {"type": "integer", "minimum": 1},
                    "margin": {"type": "number", "exclusiveMinimum": 0},
                    "threshold": {"type": "number"},
                    "direction": {"enum": ["increase", "decrease"]},
                    "min_effect": {"type": "number", "minimum": 0},
                    "worse": {"enum": ["higher", "lower"]},
                    "relative": {"type": "boolean", "default": False},
                    "definition": {"type": "string", "minLength": 1},
                    "required": {"type": "boolean"},
                },
                "allOf": [
                    _requires("proportion_equivalence", ["documented", "margin"]),
                    _requires("value_equivalence", ["documented", "margin", "policy"]),
                    _requires("difference_equivalence", ["documented", "margin"]),
                    _requires("direction", ["direction", "min_effect"]),
                    _requires("threshold", ["threshold"]),
                    _requires("non_inferiority", ["worse", "margin"]),
                ],
            },
        },
    },
}


@dataclass(frozen=True)
class Claim:
    id: str
    """Unique name of the claim; the row key of claims.csv."""
    seed_file: str
    """The write-up in ../shared/seeds the claim comes from."""
    quote: str
    """The sentence (or figure) of the write-up, verbatim."""
    experiment: str
    """The experiment of the config that tests it."""
    metric: str
    """A per-policy metric of the evaluate stage, rm_accuracy_train/test, or `none` (not measured)."""
    test: str
    """How it is tested: one of KINDS, described at the top of config/claims.yaml."""
    definition: str
    """The stated operational definition: what counts as reproduced, in words a reader can disagree with."""
    required: bool
    """`python -m rlhf_bench.analysis.check` fails when a required claim is NOT REPRODUCED."""
    policy: str = "rlhf"
    """value_equivalence / threshold: the policy whose metric is tested."""
    documented: float | None = None
    """The documented value (accuracy, level, or RLHF-minus-base difference), where there is one."""
    documented_pair: tuple[float, float] | None = None
    """difference_equivalence: the documented (base, rlhf) values the difference comes from."""
    documented_n: int | None = None
    """Samples behind the documented figure, where the write-up says (seeds/002: 10)."""
    margin: float | None = None
    """Equivalence: half-width of the band around `documented`; non_inferiority: how much worse is allowed."""
    threshold: float | None = None
    """threshold: the level the mean must exceed."""
    direction: str | None = None
    """direction: `increase` or `decrease` of RLHF against base."""
    min_effect: float | None = None
    """direction: the smallest change that counts as the claimed effect (refuted when significantly smaller)."""
    worse: str | None = None
    """non_inferiority: `higher` or `lower`, whichever way the metric gets worse."""
    relative: bool = False
    """margin / min_effect as a fraction of the base policy's mean over seeds instead of metric units."""


@dataclass(frozen=True)
class ClaimsFile:
    alpha: float
    """Level of every support and refute test, after Holm across the claims of one run."""
    power: float
    """Power at which each claim's minimal detectable effect is computed."""
    bootstrap_resamples: int
    """Resamples of the IQM's stratified bootstrap."""
    stability_reruns: int
    """Bootstrap reruns over seeds behind each verdict's stability (0: not computed)."""
    rerun_margins: dict
    """compare's TOST margins: `relative` (fraction of the earlier mean) and `absolute` per metric."""
    claims: list[Claim] = field(default_factory=list)
    """The claims, in file order (the order of claims.csv)."""


def _where(message: str, claims: list) -> str:
    """Name a claim by its id, not only its index, in a one-line error, and point at the claims schema."""
    message = message.replace("see config/schema.yaml", "see the header of config/claims.yaml")
    parts = message.split(": ", 2)
    if len(parts) == 3 and parts[1].startswith("claims."):
        index = parts[1].split(".")[1]
        if index.isdigit() and int(index) < len(claims) and isinstance(claims[int(index)], dict):
            claim_id = claims[int(index)].get("id", "?")
            return f"{parts[0]}: {parts[1]} (claim '{claim_id}'): {parts[2]}"
    return message


@functools.cache
def profile_experiments(folder: Path = PROFILES_DIR) -> dict[str, tuple[str, ...]]:
    """The experiments of each of the project's profiles (every config/*.yaml with `profile` and
    `experiments`), by file name. A profile that cannot be read is left out: the config rule names its fault."""
    profiles = {}
    for path in sorted(Path(folder).glob("*.yaml")):
        try:
            data = read_yaml(path, "profile")
        except StageError:  # unreadable, not UTF-8 or bad YAML
            continue
        if isinstance(data, dict) and "profile" in data and isinstance(data.get("experiments"), dict):
            profiles[path.name] = tuple(str(name) for name in data["experiments"])
    return profiles


def _check_experiment(item: dict, index: int, source: str, known: set[str], where: str) -> None:
    """A claim names an experiment of some profile or of the run's config: a typo would otherwise be listed as
    "not run" (INCONCLUSIVE), and a gate that only fails on NOT REPRODUCED would pass without testing it."""
    name = item["experiment"]
    if name in known:
        return
    names = ", ".join(sorted(known))
    close = difflib.get_close_matches(name, sorted(known), n=1)
    fix = f"did you mean '{close[0]}'? Known experiments: {names}" if close else f"name one of: {names}"
    raise ConfigError(
        f"{source}: claims.{index}.experiment (claim '{item['id']}'): unknown experiment '{name}' (not in {where}). "
        f"Fix: {fix}."
    )


def parse_claims(raw, source: str, experiments: Iterable[str] = ()) -> ClaimsFile:
    """Validate a parsed claims file and build the dataclasses; ConfigError (one line) on anything wrong.

    Every claim must name an experiment of one of the project's profiles (config/*.yaml) or of `experiments`
    (the run's config, where the caller has one)."""
    if raw is None:
        raise ConfigError(
            f"{source}: (top level): the file is empty, but a claims file is a mapping with a 'claims' list. "
            "Fix: write the claims (see config/claims.yaml)."
        )
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: (top level): a {type(raw).__name__}, but a claims file is a mapping with a 'claims' list. "
            "Fix: see config/claims.yaml."
        )
    filled = copy.deepcopy(raw)
    # The config's own default-filling validator and error wording, so both files fail the same way.
    error = best_match(_with_defaults(Draft202012Validator)(CLAIMS_SCHEMA).iter_errors(filled))
    if error is not None:
        raise ConfigError(_where(_describe(error, source), raw.get("claims") or []))
    experiments = tuple(str(name) for name in experiments)
    profiles = profile_experiments()
    known = {name for names in profiles.values() for name in names} | set(experiments)
    where = [f"config/{name}" for name in profiles] + (["the run's config"] if experiments else [])
    where = ", ".join(where[:-1]) + f" or {where[-1]}" if len(where) > 1 else "".join(where)
    seen = {}
    claims = []
    for index, item in enumerate(filled["claims"]):
        if item["id"] in seen:
            raise ConfigError(
                f"{source}: claims.{index}.id: duplicate id '{item['id']}' (claims.{seen[item['id']]} has it too). "
                "Fix: give each claim its own id."
            )
        seen[item["id"]] = index
        if known:
            _check_experiment(item, index, source, known, where)
        measured = item["test"] != "not_measured"
        if measured and item["metric"] == "none":
            raise ConfigError(
                f"{source}: claims.{index} (claim '{item['id']}'): metric 'none' needs test: not_measured."
            )
        if item["test"] == "proportion_equivalence" and item["metric"] not in RM_METRICS:
            raise ConfigError(
                f"{source}: claims.{index} (claim '{item['id']}'): proportion_equivalence tests "
                f"{' or '.join(RM_METRICS)}, not '{item['metric']}'. Fix: use value_equivalence."
            )
        if measured and item["test"] != "proportion_equivalence" and item["metric"] in RM_METRICS:
            raise ConfigError(
                f"{source}: claims.{index} (claim '{item['id']}'): '{item['metric']}' is tested with "
                "proportion_equivalence. Fix: change test."
            )
        if item.get("documented_pair") is not None:
            item["documented_pair"] = tuple(item["documented_pair"])
        claims.append(Claim(**item))
    return ClaimsFile(
        alpha=filled["alpha"],
        power=filled["power"],
        bootstrap_resamples=filled["bootstrap_resamples"],
        stability_reruns=filled["stability_reruns"],
        rerun_margins=filled["rerun_margins"],
        claims=claims,
    )


def load_claims(path: str | Path = DEFAULT_CLAIMS, experiments: Iterable[str] = ()) -> ClaimsFile:
    """Read and validate a claims file (YAML); ConfigError with one line naming file, field and fix.

    `experiments`: the run's experiment names, which a claim may name besides those of the project's profiles."""
    raw = read_yaml(path, "claims file", ConfigError)  # a folder, a missing file or not UTF-8: one line
    return parse_claims(raw, str(path), experiments)


def validated_or_exit(path: str | Path, experiments: Iterable[str] = ()) -> ClaimsFile:
    """For the Snakefile: a broken claims file stops the run before any job, with one line. `experiments`: the
    profile's own experiment names (a profile outside config/ may add some)."""
    try:
        return load_claims(path, experiments)
    except ConfigError as exc:
        print(f"rlhf-bench: claims error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
