# Validation, layout and shared settings. Logic lives in src/rlhf_bench/layout.py.
import os
import sys
from pathlib import Path

sys.path.insert(
    0, str(Path(workflow.basedir) / "src")
)  # a checkout runs without installing the package

from rlhf_bench.config import experiment_slice, write_resolved
from rlhf_bench.layout import DATA_FILES, Layout, validated_or_exit, with_prompts_found

_validated = with_prompts_found(
    validated_or_exit(
        config, workflow.configfiles, dict(workflow.config_settings.config)
    ),
    workflow.basedir,
)
config.clear()
config.update(_validated)

LAYOUT = Layout(config)
# Every job's `python -m rlhf_bench...` is the interpreter that runs Snakemake, also where .venv/bin/snakemake runs
# without the venv activated (otherwise each job fails with "No module named rlhf_bench", seen only in its log).
os.environ["PATH"] = os.pathsep.join(
    [os.path.dirname(sys.executable), os.environ.get("PATH", "")]
)
THREADS = config["threads"]
CONTAINER = config["container"] or None
# Before any hub import; W&B hidden from the libraries unless it tracks (rlhf_bench/train/__init__.py).
STAGE_ENV = ("HF_HUB_OFFLINE=1 " if config["hf_hub_offline"] else "") + (
    "RLHF_BENCH_WANDB=off " if config["tracking"]["backend"] != "wandb" else ""
)
CONDA_ENV = "../envs/rlhf-bench.yaml"


wildcard_constraints:
    experiment="|".join(LAYOUT.experiments),
    seed=r"\d+",


localrules:
    resolved_config,
    experiment_config,


rule resolved_config:
    """The validated config with defaults, as every profile-wide stage reads it."""
    output:
        LAYOUT.profile_file("config.json"),
    log:
        LAYOUT.log("resolved_config", per_experiment=False),
    benchmark:
        LAYOUT.benchmark("resolved_config", per_experiment=False)
    threads: 1
    resources:
        mem_mb=256,
        runtime=1,
    params:
        config=config,
    run:
        write_resolved(params.config, output[0])


rule experiment_config:
    """One experiment's slice of the config: a change to one experiment reruns only its jobs."""
    output:
        LAYOUT.path("{experiment}", "config.json"),
    log:
        LAYOUT.log("experiment_config"),
    benchmark:
        LAYOUT.benchmark("experiment_config")
    threads: 1
    resources:
        mem_mb=256,
        runtime=1,
    params:
        config=lambda w: experiment_slice(config, w.experiment),
    run:
        write_resolved(params.config, output[0])
