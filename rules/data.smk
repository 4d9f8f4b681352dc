# Stage data: an experiment's prompts, preference pairs and sft corpus, with checksums (rlhf_bench.train.data).
rule data:
    """Prompts and preference pairs (train/test) and the sft corpus, with sha256 checksums."""
    input:
        unpack(lambda w: LAYOUT.hub_inputs(w.experiment)),
        config=LAYOUT.path("{experiment}", "config.json"),
    output:
        provenance=LAYOUT.pattern("data", "provenance.json"),
        files=[LAYOUT.pattern("data", name) for name in DATA_FILES],
        checksums=LAYOUT.pattern("data", "checksums.json"),
    log:
        LAYOUT.log("data"),
    benchmark:
        LAYOUT.benchmark("data")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=lambda w: LAYOUT.resource(w.experiment, "data", "mem_mb", 4000),
        runtime=lambda w: LAYOUT.resource(w.experiment, "data", "runtime", 30),
    params:
        env=STAGE_ENV,
        out=LAYOUT.pattern("data"),
    shell:
        "{params.env}python -m rlhf_bench.train.data --config {input.config:q} --experiment {wildcards.experiment:q}"
        " --out {params.out:q} > {log:q} 2>&1"
