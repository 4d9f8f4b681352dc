rule evaluate:
    """Base vs RLHF policy on the held-out prompts, one seed: per-sample table and per-seed metrics."""
    input:
        unpack(lambda w: LAYOUT.model_inputs(w.experiment)),
        config=f"{RESULTS}/{{experiment}}/config.json",
        checksums=f"{RESULTS}/{{experiment}}/data/checksums.json",
        adapter=f"{RESULTS}/{{experiment}}/ppo/seed{{seed}}/adapter",
    output:
        provenance=f"{RESULTS}/{{experiment}}/eval/seed{{seed}}/provenance.json",
        samples=f"{RESULTS}/{{experiment}}/eval/seed{{seed}}/samples.parquet",
        metrics=f"{RESULTS}/{{experiment}}/eval/seed{{seed}}/metrics.json",
    log:
        f"{RESULTS}/logs/{{experiment}}/evaluate.seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{experiment}}.evaluate.seed{{seed}}.tsv"
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
        out=f"{RESULTS}/{{experiment}}/eval/seed{{seed}}",
    shell:
        "{params.env}python -m rlhf_bench.evaluate --config {input.config:q} --experiment {wildcards.experiment:q}"
        " --seed {wildcards.seed:q} --data {params.data:q} {params.models} --ppo {params.ppo:q}"
        " --out {params.out:q} > {log:q} 2>&1"
