# Profile-wide analysis: aggregate, claims, compare and the report (rlhf_bench.analysis, rlhf_bench.report).
from rlhf_bench.analysis.claims_file import CALIBRATION_RECORD
from rlhf_bench.analysis.claims_file import validated_or_exit as validate_claims_or_exit


# The profile-wide tables are seconds of pandas on small files: on a cluster they run in the Snakemake process
# (no SLURM job, no queue wait, no second interpreter and import), the same commands as anywhere else.
localrules:
    aggregate,
    claims,


rule aggregate:
    """Tidy tables over seeds and the base-vs-RLHF tests, documented numbers beside ours."""
    input:
        config=LAYOUT.profile_file("config.json"),
        rm=LAYOUT.per_experiment("reward", "rm_metrics.json"),
        metrics=LAYOUT.per_seed("evaluate", "metrics.json"),
        samples=LAYOUT.per_seed("evaluate", "samples.parquet"),
    output:
        [
            report(t, caption="../report/tables.rst", category="Tables")
            for t in LAYOUT.summary_tables()
        ],
        LAYOUT.profile_record("aggregate"),
    log:
        LAYOUT.log("aggregate", per_experiment=False),
    benchmark:
        LAYOUT.benchmark("aggregate", per_experiment=False)
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        results=lambda w, input: os.path.dirname(input.config),
    shell:
        "python -m rlhf_bench.analysis.aggregate --config {input.config:q} --results-dir {params.results:q} --out-dir {params.results:q}"
        " > {log:q} 2>&1"


CLAIMS_FILE = str(Path(workflow.basedir) / "config" / "claims.yaml")
# A broken claims file stops the run before any job, with one line.
validate_claims_or_exit(CLAIMS_FILE, LAYOUT.experiments)
BUNDLES = "bundles"  # earlier results bundles that `compare` reads: bundles/<name>/ (a copied results/<profile>)


rule claims:
    """Every documented claim (config/claims.yaml) tested on this run: claims.csv, one verdict per claim."""
    input:
        config=LAYOUT.profile_file("config.json"),
        claims=CLAIMS_FILE,
        rm=LAYOUT.per_experiment("reward", "rm_metrics.json"),
        metrics=LAYOUT.per_seed("evaluate", "metrics.json"),
        samples=LAYOUT.per_seed("evaluate", "samples.parquet"),
    output:
        claims=report(
            LAYOUT.profile_file("claims.csv"),
            caption="../report/claims.rst",
            category="Claims",
        ),
        record=LAYOUT.profile_record("claims"),
    log:
        LAYOUT.log("claims", per_experiment=False),
    benchmark:
        LAYOUT.benchmark("claims", per_experiment=False)
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        results=lambda w, input: os.path.dirname(input.config),
    shell:
        "python -m rlhf_bench.analysis.claims --config {input.config:q} --results-dir {params.results:q} --claims {input.claims:q}"
        " --out {output.claims:q} > {log:q} 2>&1"


rule compare:
    """This run against an earlier bundle copied to bundles/<name>/: metric differences (TOST) and provenance."""
    input:
        LAYOUT.summary_tables(),
        LAYOUT.provenance_files(),
        LAYOUT.profile_file("claims.csv"),
        config=LAYOUT.profile_file("config.json"),
        claims=CLAIMS_FILE,
        earlier=f"{BUNDLES}/{{name}}/config.json",
    output:
        metrics=LAYOUT.profile_file("compare/{name}/metrics.csv"),
        provenance=LAYOUT.profile_file("compare/{name}/provenance.csv"),
        summary=LAYOUT.profile_file("compare/{name}/summary.md"),
    log:
        LAYOUT.log("compare.{name}", per_experiment=False),
    benchmark:
        LAYOUT.benchmark("compare.{name}", per_experiment=False)
    wildcard_constraints:
        name=r"[^/]+",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        earlier=lambda w, input: os.path.dirname(input.earlier),
        results=lambda w, input: os.path.dirname(input.config),
        out=lambda w, output: os.path.dirname(output.metrics),
    shell:
        "python -m rlhf_bench.analysis.compare {params.earlier:q} {params.results:q} --claims {input.claims:q}"
        " --out-dir {params.out:q} > {log:q} 2>&1"


rule report:
    """report.md and a self-contained report.html with figures, tables, samples and provenance."""
    input:
        LAYOUT.summary_tables(),
        LAYOUT.frontier_tables(),
        LAYOUT.prompts_files(),
        LAYOUT.profile_file("claims.csv"),
        LAYOUT.per_seed("ppo", "train_log.csv"),
        LAYOUT.provenance_files(),
        str(CALIBRATION_RECORD),  # the verdict rules' measured error rates, quoted in the claims appendix
        config=LAYOUT.profile_file("config.json"),
    output:
        md=LAYOUT.report_file("report.md"),
        html=report(
            LAYOUT.report_file("report.html"),
            caption="../report/report.rst",
            category="Report",
        ),
        pdf=LAYOUT.report_file("report.pdf"),
        figures=report(
            directory(LAYOUT.report_file("figures")),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
    log:
        LAYOUT.log("report", per_experiment=False),
    benchmark:
        LAYOUT.benchmark("report", per_experiment=False)
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        results=lambda w, input: os.path.dirname(input.config),
        reports=lambda w, output: os.path.dirname(output.md),
    shell:
        "MPLBACKEND=Agg python -m rlhf_bench.report --config {input.config:q} --results-dir {params.results:q}"
        " --out-dir {params.reports:q} > {log:q} 2>&1"
