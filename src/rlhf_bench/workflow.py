"""Where every file of a run lives, and which inputs each rule needs: the Snakemake side of the package.

The .smk files stay declarative; the little logic they need (validation, paths, optional inputs) is here,
where it is tested like the rest (tests/test_dag.py, tests/test_layout.py).
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass

import yaml

from rlhf_bench.config import ConfigError, validate
from rlhf_bench.download import hub_refs

DATA_FILES = ("prompts_train.jsonl", "prompts_eval.jsonl", "pairs_train.jsonl", "pairs_test.jsonl", "corpus.jsonl")


def runs_sft(experiment: dict) -> bool:
    """Whether the sft stage runs for an experiment: only when the policy is its output (`policy: sft`).

    `sft.enabled: true` beside a hub policy validates but trains nothing, so nothing may ask for sft files then.
    """
    return experiment.get("policy") == "sft"


def stage_dirs(config: dict, experiment: str) -> list[str]:
    """Every stage directory of one experiment that holds a provenance.json, relative to results/<profile>,
    in the order the report lists them: data, sft (where it runs), reward, ppo and eval per seed."""
    dirs = [f"{experiment}/data"]
    if runs_sft(config["experiments"][experiment]):
        dirs.append(f"{experiment}/sft")
    dirs.append(f"{experiment}/reward")
    dirs += [f"{experiment}/ppo/seed{seed}" for seed in config["seeds"]]
    return dirs + [f"{experiment}/eval/seed{seed}" for seed in config["seeds"]]


def _typed(value):
    """A `--config` leaf as YAML would type it: Snakemake reads list and mapping values with YAML's BaseLoader,
    so `--config seeds=[0,1]` arrives as ["0", "1"]. Numbers, booleans and null get their type back."""
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    if isinstance(value, str):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        return parsed if isinstance(parsed, (bool, int, float)) or (parsed is None and value.strip()) else value
    return value


def with_typed_overrides(config: dict, overrides: dict) -> dict:
    """Snakemake's merged config with the list and mapping values of `--config` typed as YAML types them."""
    merged = dict(config)

    def place(target: dict, changes: dict, inside_mapping: bool) -> None:
        # Top-level scalars arrive typed (Snakemake tries int, float, bool first); every leaf of a list or
        # mapping value went through BaseLoader.
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                target[key] = dict(target[key])
                place(target[key], value, inside_mapping=True)
            elif inside_mapping or isinstance(value, (dict, list)):
                target[key] = _typed(value)

    place(merged, overrides or {}, inside_mapping=False)
    return merged


def validated_or_exit(config: dict, sources: list[str], overrides: dict | None = None) -> dict:
    """Validate Snakemake's merged config before any job: one line naming file, key and fix, then exit 1.

    `overrides` are the `--config` values: typed like YAML, and named in the message as a source."""
    config = with_typed_overrides(config, overrides or {})
    source = ", ".join([str(s) for s in sources] + (["--config"] if overrides else [])) or "config"
    try:
        return validate(dict(config), source)
    except ConfigError as exc:
        print(f"rlhf-bench: config error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


@dataclass(frozen=True)
class Layout:
    """Paths of one profile's run: results/<profile>/<experiment>/<stage>/..., reports/<profile>/..."""

    config: dict

    @property
    def results(self) -> str:
        return f"{self.config['results_dir']}/{self.config['profile']}"

    @property
    def reports(self) -> str:
        return f"{self.config['reports_dir']}/{self.config['profile']}"

    @property
    def experiments(self) -> list[str]:
        return list(self.config["experiments"])

    @property
    def seeds(self) -> list[int]:
        return list(self.config["seeds"])

    def experiment(self, name: str) -> dict:
        return self.config["experiments"][name]

    def path(self, experiment: str, *parts: str) -> str:
        return "/".join([self.results, experiment, *parts])

    # --- optional inputs: what a rule needs depends on the experiment's config --------------------------

    def sft_dir(self, experiment: str) -> str | None:
        return self.path(experiment, "sft") if runs_sft(self.experiment(experiment)) else None

    def reward_dir(self, experiment: str) -> str | None:
        uses_rm = self.experiment(experiment)["ppo"]["reward"] == "reward_model"
        return self.path(experiment, "reward") if uses_rm else None

    def policy_inputs(self, experiment: str) -> dict[str, str]:
        """Inputs of ppo and evaluate besides the data: the sft model and the reward model, where used."""
        inputs = {}
        if self.sft_dir(experiment):
            inputs["sft"] = self.path(experiment, "sft", "sft_metrics.json")
        if self.reward_dir(experiment):
            inputs["reward"] = self.path(experiment, "reward", "rm_metrics.json")
        return inputs

    def policy_args(self, experiment: str) -> str:
        """The matching --sft/--reward arguments of the stage CLIs, shell-quoted: they hold config paths."""
        args = []
        if self.sft_dir(experiment):
            args += ["--sft", self.sft_dir(experiment)]
        if self.reward_dir(experiment):
            args += ["--reward", self.reward_dir(experiment)]
        return shlex.join(args)

    # --- hub items and cluster resources ------------------------------------------------------------

    def hub_experiments(self) -> list[str]:
        """Experiments that name a hub model or dataset (not a local path): the ones `download` serves."""
        return [e for e in self.experiments if hub_refs(self.experiment(e))]

    def hub_manifest(self, experiment: str) -> str:
        return self.path(experiment, "hub", "manifest.json")

    def hub_inputs(self, experiment: str) -> dict[str, str]:
        """The download manifest, for the jobs of an experiment that reads the hub cache; else nothing."""
        return {"hub": self.hub_manifest(experiment)} if experiment in self.hub_experiments() else {}

    def model_inputs(self, experiment: str) -> dict[str, str]:
        """Inputs of ppo and evaluate besides the data: the sft and reward models where used, the hub manifest."""
        return {**self.policy_inputs(experiment), **self.hub_inputs(experiment)}

    def resource(self, experiment: str, rule: str, name: str, default: int) -> int:
        """A rule's cluster resource for one experiment (config `resources`), else the rule's default.
        A Snakemake profile's `set-resources` overrides both."""
        return self.experiment(experiment).get("resources", {}).get(rule, {}).get(name, default)

    # --- what aggregate and report read ---------------------------------------------------------------

    def per_seed(self, stage: str, filename: str) -> list[str]:
        return [self.path(e, stage, f"seed{s}", filename) for e in self.experiments for s in self.seeds]

    def per_experiment(self, stage: str, filename: str) -> list[str]:
        return [self.path(e, stage, filename) for e in self.experiments]

    def provenance_files(self) -> list[str]:
        """Every stage's provenance.json, which the report's provenance section reads."""
        return [f"{self.results}/{d}/provenance.json" for e in self.experiments for d in stage_dirs(self.config, e)]

    def summary_tables(self) -> list[str]:
        return [f"{self.results}/{name}" for name in ("summary.csv", "rm_summary.csv", "tests.csv")]

    def report_files(self) -> list[str]:
        return [f"{self.reports}/report.md", f"{self.reports}/report.html", f"{self.reports}/report.pdf"]
