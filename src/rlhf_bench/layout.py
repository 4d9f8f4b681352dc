"""Where every file of a run lives and which rule makes it: the one place that knows paths and rule names.

A stage's name is its rule, its module (`python -m rlhf_bench.<package>.<stage>`), its folder under
results/<profile>/<experiment>/ and its block in the config. The Snakefile, the analysis stages and the report
all ask this module; tests/test_layout.py checks the rules, the schema and the report against it.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from rlhf_bench.config import ConfigError, validate

# Training stages of one experiment, in the order they run; then the frontier's arms beside PPO (rules/frontier.smk),
# each where the experiment's `frontier` block asks for it (frontier_stages).
STAGES = ("data", "sft", "reward", "ppo", "evaluate")
FRONTIER_STAGES = ("ppo_path", "best_of_n", "dpo_pairs", "dpo")
# And your own prompts answered by every policy, where `evaluation.prompts_file` names them (rules/prompts.smk).
USER_STAGES = ("prompts",)
SEEDED = ("ppo", "evaluate", "dpo")  # one folder per PPO seed: <stage>/seed<k>
# Stages that measure every seed's policies in one job of the experiment (no training: a job each would mostly
# start up), into one table with a `seed` column.
ALL_SEEDS = ("ppo_path", "best_of_n", "prompts")
# Profile-wide rules: the resolved config, then the analysis of every experiment.
ANALYSIS = ("aggregate", "claims", "frontier", "compare", "report")
RULE_ORDER = ("resolved_config", "experiment_config", "download", *STAGES, *FRONTIER_STAGES, *USER_STAGES, *ANALYSIS)
# The CLI each rule runs (the two config rules run inside Snakemake).
MODULES = {
    **{rule: f"rlhf_bench.train.{rule}" for rule in ("download", *STAGES, *FRONTIER_STAGES, *USER_STAGES)},
    **{rule: f"rlhf_bench.analysis.{rule}" for rule in ("aggregate", "claims", "frontier", "compare", "check")},
    "report": "rlhf_bench.report",
}
FRONTIER_TABLES = ("frontier.csv", "frontier_matched.csv")
PPO_PATH = "path"  # ppo/seed<k>/path/step-<n>/: PPO's policy at a step of frontier.ppo_path, as `adapter/` holds it


def ppo_path_dir(ppo_dir: str | Path, step: int) -> Path:
    return Path(ppo_dir, PPO_PATH, f"step-{step}")


DATA_FILES = ("prompts_train.jsonl", "prompts_eval.jsonl", "pairs_train.jsonl", "pairs_test.jsonl", "corpus.jsonl")
SUMMARY_TABLES = ("summary.csv", "rm_summary.csv", "improvement.csv", "tests.csv")
REPORT_FILES = ("report.md", "report.html", "report.pdf")
# Profile-wide rules whose outputs share results/<profile>/ record them in `<rule>.provenance.json` there; a stage
# of one experiment has a folder of its own, and its `provenance.json` in it.
RECORDED_RULES = ("aggregate", "claims", "frontier")


def record_name(rule: str) -> str:
    return f"{rule}.provenance.json"


# Files at results/<profile>/ and the rule that writes each; a stage's files are named by their folder.
PROFILE_FILES = {
    "config.json": "resolved_config",
    **dict.fromkeys(SUMMARY_TABLES, "aggregate"),
    "claims.csv": "claims",
    **dict.fromkeys(FRONTIER_TABLES, "frontier"),
    **{record_name(rule): rule for rule in RECORDED_RULES},
}


def output_record(path: str | Path) -> Path:
    """The provenance file that records `path`'s sha256 (`outputs`): its rule's beside a profile-wide file, else
    its stage folder's provenance.json."""
    path = Path(path)
    rule = PROFILE_FILES.get(path.name)
    return path.with_name(record_name(rule) if rule in RECORDED_RULES else "provenance.json")


def stage_dir(results: str | Path, experiment: str, stage: str, seed: int | str | None = None) -> str:
    """results/<profile>/<experiment>/<stage>[/seed<k>]; `seed` is required exactly for the SEEDED stages."""
    if (seed is not None) != (stage in SEEDED):
        raise ValueError(f"stage {stage!r} {'needs' if stage in SEEDED else 'takes no'} seed")
    return "/".join([str(results), experiment, stage, *([f"seed{seed}"] if seed is not None else [])])


def producing_rule(path: str | Path) -> str:
    """The rule that makes a file of a run: its stage folder's, else the profile-wide file's ('' if unknown)."""
    path = Path(path)
    stages = (*STAGES, *FRONTIER_STAGES, *USER_STAGES)
    stage = next((part for part in reversed(path.parts[:-1]) if part in stages), None)
    return stage or PROFILE_FILES.get(path.name, "")


def runs_sft(experiment: dict) -> bool:
    """Whether the sft stage runs for an experiment: only when the policy is its output (`policy: sft`).

    `sft.enabled: true` beside a hub policy validates but trains nothing, so nothing may ask for sft files then.
    """
    return experiment.get("policy") == "sft"


def frontier_stages(experiment: dict) -> list[str]:
    """The frontier's stages that run for an experiment (its `frontier` block), in FRONTIER_STAGES order."""
    frontier = experiment.get("frontier", {})
    runs = {
        "ppo_path": bool(frontier.get("ppo_path")),
        "best_of_n": "best_of_n" in frontier,
        "dpo_pairs": frontier.get("dpo", {}).get("pairs") == "policy",
        "dpo": "dpo" in frontier,
    }
    return [stage for stage in FRONTIER_STAGES if runs[stage]]


def prompts_file(config: dict) -> str:
    """Your own prompts (evaluation.prompts_file), or ''."""
    return config.get("evaluation", {}).get("prompts_file", "")


def with_prompts_found(config: dict, checkout: str | Path) -> dict:
    """The config with a relative prompts_file that is not under the working directory but is in the checkout
    (the smoke profile's config/prompts.txt, in a run with --directory elsewhere) made absolute; else as it is."""
    name = prompts_file(config)
    if not name or Path(name).is_absolute() or Path(name).exists() or not Path(checkout, name).is_file():
        return config
    return {**config, "evaluation": {**config["evaluation"], "prompts_file": str(Path(checkout, name))}}


def stage_dirs(config: dict, experiment: str, results: str | Path = "") -> list[str]:
    """Every stage directory of one experiment that holds a provenance.json, in the order the report lists them:
    data, sft (where it runs), reward, then ppo and evaluate per seed, then the frontier's. Relative to `results`
    when it is ''."""
    root = str(results) if results != "" else "."
    dirs = []
    user = USER_STAGES if prompts_file(config) else ()
    for stage in (*STAGES, *frontier_stages(config["experiments"][experiment]), *user):
        if stage == "sft" and not runs_sft(config["experiments"][experiment]):
            continue
        seeds = config["seeds"] if stage in SEEDED else [None]
        dirs += [stage_dir(root, experiment, stage, seed) for seed in seeds]
    return [d.removeprefix("./") for d in dirs] if root == "." else dirs


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
    """Paths of one profile's run: results/<profile>/<experiment>/<stage>/..., reports/<profile>/...

    `root` is the results folder when it is not the config's own (an analysis CLI's --results-dir, a bundle).
    """

    config: dict
    root: str | None = None

    @property
    def results(self) -> str:
        return self.root or f"{self.config['results_dir']}/{self.config['profile']}"

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

    def stage(self, experiment: str, stage: str, seed: int | str | None = None) -> str:
        """A stage's folder; in a rule, experiment "{experiment}" and seed "{seed}" are the wildcards."""
        return stage_dir(self.results, experiment, stage, seed)

    def file(self, experiment: str, stage: str, name: str, seed: int | str | None = None) -> Path:
        """A stage's file as a Path, for the analysis stages."""
        return Path(self.stage(experiment, stage, seed), name)

    def pattern(self, stage: str, name: str = "") -> str:
        """A stage's folder (or one of its files) with the {experiment} and {seed} wildcards, for rules/*.smk."""
        folder = self.stage("{experiment}", stage, "{seed}" if stage in SEEDED else None)
        return f"{folder}/{name}" if name else folder

    @property
    def tracking(self) -> str:
        """Where TensorBoard's run folders and W&B's `wandb/` go: `tracking.dir`, else results/<profile>/tracking."""
        return self.config.get("tracking", {}).get("dir") or f"{self.results}/tracking"

    def log(self, rule: str, per_experiment: bool = True) -> str:
        """A rule's log: logs/<experiment>/<rule>[.seed<k>].log, or logs/<rule>.log for a profile-wide rule."""
        stem = "{experiment}/" + rule + (".seed{seed}" if rule in SEEDED else "") if per_experiment else rule
        return f"{self.results}/logs/{stem}.log"

    def benchmark(self, rule: str, per_experiment: bool = True) -> str:
        """A rule's Snakemake benchmark: benchmarks/<experiment>.<rule>[.seed<k>].tsv (the report parses it)."""
        stem = "{experiment}." + rule + (".seed{seed}" if rule in SEEDED else "") if per_experiment else rule
        return f"{self.results}/benchmarks/{stem}.tsv"

    # --- optional inputs: what a rule needs depends on the experiment's config --------------------------

    def sft_dir(self, experiment: str) -> str | None:
        return self.stage(experiment, "sft") if runs_sft(self.experiment(experiment)) else None

    def reward_dir(self, experiment: str) -> str | None:
        uses_rm = self.experiment(experiment)["ppo"]["reward"] == "reward_model"
        return self.stage(experiment, "reward") if uses_rm else None

    def policy_inputs(self, experiment: str) -> dict[str, str]:
        """Inputs of ppo and evaluate besides the data: the sft model and the reward model, where used."""
        inputs = {}
        if self.sft_dir(experiment):
            inputs["sft"] = f"{self.sft_dir(experiment)}/sft_metrics.json"
        if self.reward_dir(experiment):
            inputs["reward"] = f"{self.reward_dir(experiment)}/rm_metrics.json"
        return inputs

    def policy_args(self, experiment: str) -> str:
        """The matching --sft/--reward arguments of the stage CLIs, shell-quoted: they hold config paths."""
        args = []
        if self.sft_dir(experiment):
            args += ["--sft", self.sft_dir(experiment)]
        if self.reward_dir(experiment):
            args += ["--reward", self.reward_dir(experiment)]
        return shlex.join(args)

    def frontier_stages(self, experiment: str) -> list[str]:
        return frontier_stages(self.experiment(experiment))

    def dpo_pairs_args(self, experiment: str) -> str:
        """--dpo-pairs for the dpo stage where its pairs are the dpo_pairs stage's, shell-quoted."""
        runs = "dpo_pairs" in self.frontier_stages(experiment)
        return shlex.join(["--dpo-pairs", self.stage(experiment, "dpo_pairs")]) if runs else ""

    def dpo_inputs(self, experiment: str) -> dict[str, str]:
        runs = "dpo_pairs" in self.frontier_stages(experiment)
        return {"pairs": f"{self.stage(experiment, 'dpo_pairs')}/provenance.json"} if runs else {}

    # --- hub items and cluster resources ------------------------------------------------------------

    def hub_experiments(self) -> list[str]:
        """Experiments that name a hub model or dataset (not a local path): the ones `download` serves."""
        from rlhf_bench.train.download import hub_refs  # the training side, only where the DAG asks

        return [e for e in self.experiments if hub_refs(self.experiment(e))]

    def hub_manifest(self, experiment: str) -> str:
        return self.path(experiment, "hub", "manifest.json")

    def hub_inputs(self, experiment: str) -> dict[str, str]:
        """The download manifest, for the jobs of an experiment that reads the hub cache; else nothing."""
        return {"hub": self.hub_manifest(experiment)} if experiment in self.hub_experiments() else {}

    def model_inputs(self, experiment: str) -> dict[str, str]:
        """Inputs of ppo and evaluate besides the data: the sft and reward models where used, the hub manifest."""
        return {**self.policy_inputs(experiment), **self.hub_inputs(experiment)}

    def resource(self, experiment: str, rule: str, name: str, default: int | str) -> int | str:
        """A rule's cluster resource for one experiment (config `resources`), else the rule's default.
        A Snakemake profile's `set-resources` overrides both. `shards: N` (ppo) stands for `gres: shard:N` and no
        whole GPU: the SLURM plugin turns `gres` into `--gres=shard:N`."""
        own = self.experiment(experiment).get("resources", {}).get(rule, {})
        if "shards" in own and name in ("gpu", "gres"):
            return 0 if name == "gpu" else f"shard:{own['shards']}"
        return own.get(name, default)

    # --- what aggregate and report read ---------------------------------------------------------------

    def per_seed(self, stage: str, filename: str) -> list[str]:
        return [f"{self.stage(e, stage, s)}/{filename}" for e in self.experiments for s in self.seeds]

    def per_experiment(self, stage: str, filename: str) -> list[str]:
        return [f"{self.stage(e, stage)}/{filename}" for e in self.experiments]

    def provenance_files(self) -> list[str]:
        """Every stage's provenance.json, which the report's provenance section reads."""
        return [f"{d}/provenance.json" for e in self.experiments for d in stage_dirs(self.config, e, self.results)]

    def frontier_samples(self) -> list[str]:
        """What the frontier rule reads: every seed's evaluate samples (the base policy and PPO's final one) and
        every frontier arm's of the experiments that run one."""
        files = []
        for e in self.experiments:
            arms = [stage for stage in self.frontier_stages(e) if stage != "dpo_pairs"]
            if arms:
                files += [f"{self.stage(e, 'evaluate', s)}/samples.parquet" for s in self.seeds]
                files += [self.samples(e, stage, s) for stage in arms if stage in SEEDED for s in self.seeds]
                files += [self.samples(e, stage) for stage in arms if stage in ALL_SEEDS]
        return files

    def samples(self, experiment: str, stage: str, seed: int | None = None) -> str:
        return f"{self.stage(experiment, stage, seed)}/samples.parquet"

    def frontier_tables(self) -> list[str]:
        """frontier.csv and its matched-KL table where any experiment runs a frontier arm; else nothing."""
        runs = any(self.frontier_stages(e) for e in self.experiments)
        return [self.profile_file(name) for name in FRONTIER_TABLES] if runs else []

    def prompts_files(self) -> list[str]:
        """Every seed's answers to your own prompts, where `evaluation.prompts_file` is set; else nothing."""
        if not prompts_file(self.config):
            return []
        return [self.samples(e, "prompts") for e in self.experiments]

    def profile_file(self, name: str) -> str:
        return f"{self.results}/{name}"

    def profile_record(self, rule: str) -> str:
        """The provenance of a profile-wide rule of RECORDED_RULES: the sha256 of what it wrote."""
        return self.profile_file(record_name(rule))

    def summary_tables(self) -> list[str]:
        return [self.profile_file(name) for name in SUMMARY_TABLES]

    def report_file(self, name: str) -> str:
        return f"{self.reports}/{name}"

    def report_files(self) -> list[str]:
        return [self.report_file(name) for name in REPORT_FILES]
