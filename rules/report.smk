from rlhf_bench.claims import validated_or_exit as validate_claims_or_exit


rule aggregate:
    """Tidy tables over seeds and the base-vs-RLHF tests, documented numbers beside ours."""
    input:
        config=f"{RESULTS}/config.json",
        rm=LAYOUT.per_experiment("reward", "rm_metrics.json"),
        metrics=LAYOUT.per_seed("eval", "metrics.json"),
        samples=LAYOUT.per_seed("eval", "samples.parquet"),
    output:
        [
            report(t, caption="../report/tables.rst", category="Tables")
            for t in LAYOUT.summary_tables()
        ],
    log:
        f"{RESULTS}/logs/aggregate.log",
    benchmark:
        f"{RESULTS}/benchmarks/aggregate.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        results=lambda w, input: os.path.dirname(input.config),
    shell:
        "python -m rlhf_bench.aggregate --config {input.config:q} --results-dir {params.results:q} --out-dir {params.results:q}"
        " > {log:q} 2>&1"


CLAIMS_FILE = str(Path(workflow.basedir) / "config" / "claims.yaml")
# A broken claims file stops the run before any job, with one line.
validate_claims_or_exit(CLAIMS_FILE)
BUNDLES = "bundles"  # earlier results bundles that `compare` reads: bundles/<name>/ (a copied results/<profile>)


rule claims:
    """Every documented claim (config/claims.yaml) tested on this run: claims.csv, one verdict per claim."""
    input:
        config=f"{RESULTS}/config.json",
        claims=CLAIMS_FILE,
        rm=LAYOUT.per_experiment("reward", "rm_metrics.json"),
        metrics=LAYOUT.per_seed("eval", "metrics.json"),
        samples=LAYOUT.per_seed("eval", "samples.parquet"),
    output:
        report(
            f"{RESULTS}/claims.csv", caption="../report/claims.rst", category="Claims"
        ),
    log:
        f"{RESULTS}/logs/claims.log",
    benchmark:
        f"{RESULTS}/benchmarks/claims.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        results=lambda w, input: os.path.dirname(input.config),
    shell:
        "python -m rlhf_bench.claims --config {input.config:q} --results-dir {params.results:q} --claims {input.claims:q}"
        " --out {output:q} > {log:q} 2>&1"


rule compare:
    """This run against an earlier bundle copied to bundles/<name>/: metric differences (TOST) and provenance."""
    input:
        LAYOUT.summary_tables(),
        LAYOUT.provenance_files(),
        f"{RESULTS}/claims.csv",
        config=f"{RESULTS}/config.json",
        claims=CLAIMS_FILE,
        earlier=f"{BUNDLES}/{{name}}/config.json",
    output:
        metrics=f"{RESULTS}/compare/{{name}}/metrics.csv",
        provenance=f"{RESULTS}/compare/{{name}}/provenance.csv",
        summary=f"{RESULTS}/compare/{{name}}/summary.md",
    log:
        f"{RESULTS}/logs/compare.{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/compare.{{name}}.tsv"
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
        "python -m rlhf_bench.compare {params.earlier:q} {params.results:q} --claims {input.claims:q}"
        " --out-dir {params.out:q} > {log:q} 2>&1"


rule report:
    """report.md and a self-contained report.html with figures, tables, samples and provenance."""
    input:
        LAYOUT.summary_tables(),
        f"{RESULTS}/claims.csv",
        LAYOUT.per_seed("ppo", "train_log.csv"),
        LAYOUT.provenance_files(),
        config=f"{RESULTS}/config.json",
    output:
        md=f"{REPORTS}/report.md",
        html=report(
            f"{REPORTS}/report.html", caption="../report/report.rst", category="Report"
        ),
        pdf=f"{REPORTS}/report.pdf",
        figures=report(
            directory(f"{REPORTS}/figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
    log:
        f"{RESULTS}/logs/report.log",
    benchmark:
        f"{RESULTS}/benchmarks/report.tsv"
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
