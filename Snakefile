# rlhf-bench: the documented RLHF experiments as one DAG. Thin on purpose: stages live in rules/*.smk, their
# logic in src/rlhf_bench (python -m rlhf_bench.<stage>), experiments in config/*.yaml.
from snakemake.utils import min_version

min_version("8.0")


# The smoke profile is the default; `--configfile other.yaml` replaces it instead of being deep-merged into it
# (Snakemake's default), which would leak smoke experiments and settings into every other profile.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"


container: CONTAINER


rule all:
    default_target: True
    input:
        LAYOUT.summary_tables(),
        LAYOUT.frontier_tables(),
        LAYOUT.prompts_files(),
        LAYOUT.report_files(),


include: "rules/download.smk"
include: "rules/data.smk"
include: "rules/sft.smk"
include: "rules/reward.smk"
include: "rules/ppo.smk"
include: "rules/evaluate.smk"
include: "rules/frontier.smk"
include: "rules/prompts.smk"
include: "rules/report.smk"
