rule aggregate:
    """Tidy tables over seeds and the base-vs-RLHF tests, documented numbers beside ours."""
    input:
        config=f"{RESULTS}/config.json",
        rm=LAYOUT.per_experiment("reward", "rm_metrics.json"),
        metrics=LAYOUT.per_seed("eval", "metrics.json"),
        samples=LAYOUT.per_seed("eval", "samples.parquet"),
    output:
        LAYOUT.summary_tables(),
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
        "python -m rlhf_bench.aggregate --config {input.config} --results-dir {params.results} --out-dir {params.results}"
        " > {log} 2>&1"


rule report:
    """report.md and a self-contained report.html with figures, tables, samples and provenance."""
    input:
        LAYOUT.summary_tables(),
        LAYOUT.per_seed("ppo", "train_log.csv"),
        LAYOUT.provenance_files(),
        config=f"{RESULTS}/config.json",
    output:
        LAYOUT.report_files(),
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
        reports=lambda w, output: os.path.dirname(output[0]),
    shell:
        "MPLBACKEND=Agg python -m rlhf_bench.report --config {input.config} --results-dir {params.results}"
        " --out-dir {params.reports} > {log} 2>&1"
