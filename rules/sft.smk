rule sft:
    """Tokenizer and GPT-2 policy trained on the experiment's corpus (only where policy: sft)."""
    input:
        unpack(lambda w: LAYOUT.hub_inputs(w.experiment)),
        config=f"{RESULTS}/{{experiment}}/config.json",
        checksums=f"{RESULTS}/{{experiment}}/data/checksums.json",
    output:
        provenance=f"{RESULTS}/{{experiment}}/sft/provenance.json",
        model=directory(f"{RESULTS}/{{experiment}}/sft/model"),
        metrics=f"{RESULTS}/{{experiment}}/sft/sft_metrics.json",
    log:
        f"{RESULTS}/logs/{{experiment}}/sft.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{experiment}}.sft.tsv"
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
        out=f"{RESULTS}/{{experiment}}/sft",
    shell:
        "{params.env}python -m rlhf_bench.sft --config {input.config:q} --experiment {wildcards.experiment:q}"
        " --data {params.data:q} --out {params.out:q} > {log:q} 2>&1"
