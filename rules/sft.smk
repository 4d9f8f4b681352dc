# Stage sft: the policy's language model, where policy: sft (rlhf_bench.train.sft).
rule sft:
    """Tokenizer and GPT-2 policy trained on the experiment's corpus (only where policy: sft)."""
    input:
        unpack(lambda w: LAYOUT.hub_inputs(w.experiment)),
        config=LAYOUT.path("{experiment}", "config.json"),
        checksums=LAYOUT.pattern("data", "checksums.json"),
    output:
        provenance=LAYOUT.pattern("sft", "provenance.json"),
        model=directory(LAYOUT.pattern("sft", "model")),
        metrics=LAYOUT.pattern("sft", "sft_metrics.json"),
    log:
        LAYOUT.log("sft"),
    benchmark:
        LAYOUT.benchmark("sft")
    conda:
        CONDA_ENV
    threads: THREADS
    resources:
        gpu=lambda w: LAYOUT.resource(w.experiment, "sft", "gpu", 0),
        mem_mb=lambda w: LAYOUT.resource(w.experiment, "sft", "mem_mb", 8000),
        runtime=lambda w: LAYOUT.resource(w.experiment, "sft", "runtime", 240),
    params:
        env=STAGE_ENV,
        data=lambda w, input: os.path.dirname(input.checksums),
        out=LAYOUT.pattern("sft"),
    shell:
        "{params.env}python -m rlhf_bench.train.sft --config {input.config:q} --experiment {wildcards.experiment:q}"
        " --data {params.data:q} --out {params.out:q} > {log:q} 2>&1"
