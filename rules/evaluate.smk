# Stage evaluate: base vs RLHF policy on the held-out prompts, one job per seed (rlhf_bench.train.evaluate).
rule evaluate:
    """Base vs RLHF policy on the held-out prompts, one seed: per-sample table and per-seed metrics."""
    input:
        unpack(lambda w: LAYOUT.model_inputs(w.experiment)),
        config=LAYOUT.path("{experiment}", "config.json"),
        checksums=LAYOUT.pattern("data", "checksums.json"),
        adapter=LAYOUT.pattern("ppo", "adapter"),
    output:
        provenance=LAYOUT.pattern("evaluate", "provenance.json"),
        samples=LAYOUT.pattern("evaluate", "samples.parquet"),
        metrics=LAYOUT.pattern("evaluate", "metrics.json"),
    log:
        LAYOUT.log("evaluate"),
    benchmark:
        LAYOUT.benchmark("evaluate")
    conda:
        CONDA_ENV
    threads: THREADS
    resources:
        gpu=lambda w: LAYOUT.resource(w.experiment, "evaluate", "gpu", 0),
        mem_mb=lambda w: LAYOUT.resource(w.experiment, "evaluate", "mem_mb", 8000),
        runtime=lambda w: LAYOUT.resource(w.experiment, "evaluate", "runtime", 120),
    params:
        env=STAGE_ENV,
        data=lambda w, input: os.path.dirname(input.checksums),
        models=lambda w: LAYOUT.policy_args(w.experiment),
        ppo=lambda w, input: os.path.dirname(input.adapter),
        out=LAYOUT.pattern("evaluate"),
    shell:
        "{params.env}python -m rlhf_bench.train.evaluate --config {input.config:q} --experiment {wildcards.experiment:q}"
        " --seed {wildcards.seed:q} --data {params.data:q} {params.models} --ppo {params.ppo:q}"
        " --out {params.out:q} > {log:q} 2>&1"
