# rlhf-bench: the documented RLHF experiments as one DAG. Thin on purpose: stages live in rules/*.smk, their
# logic in src/rlhf_bench (python -m rlhf_bench.<stage>), experiments in config/*.yaml.
from snakemake.utils import min_version

min_version("8.0")


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"


container: CONTAINER


rule all:
    default_target: True
    input:
        LAYOUT.summary_tables(),
        LAYOUT.report_files(),


include: "rules/download.smk"
include: "rules/data.smk"
include: "rules/sft.smk"
include: "rules/reward.smk"
include: "rules/ppo.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"
