rule prepare_data:
    """Prompts and preference pairs (train/test) and the sft corpus, with sha256 checksums."""
    input:
        unpack(lambda w: LAYOUT.hub_inputs(w.experiment)),
        config=f"{RESULTS}/{{experiment}}/config.json",
    output:
        provenance=f"{RESULTS}/{{experiment}}/data/provenance.json",
        files=[f"{RESULTS}/{{experiment}}/data/{name}" for name in DATA_FILES],
        checksums=f"{RESULTS}/{{experiment}}/data/checksums.json",
    log:
        f"{RESULTS}/logs/{{experiment}}/prepare_data.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{experiment}}.prepare_data.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=lambda w: LAYOUT.resource(w.experiment, "prepare_data", "mem_mb", 4000),
        runtime=lambda w: LAYOUT.resource(w.experiment, "prepare_data", "runtime", 30),
    params:
        env=STAGE_ENV,
        out=f"{RESULTS}/{{experiment}}/data",
    shell:
        "{params.env}python -m rlhf_bench.data --config {input.config:q} --experiment {wildcards.experiment:q}"
        " --out {params.out:q} > {log:q} 2>&1"
