rule evaluate:
    """Base vs RLHF policy on the held-out prompts, one seed: per-sample table and per-seed metrics."""
    input:
        unpack(lambda w: LAYOUT.policy_inputs(w.experiment)),
        config=f"{RESULTS}/{{experiment}}/config.json",
        checksums=f"{RESULTS}/{{experiment}}/data/checksums.json",
        adapter=f"{RESULTS}/{{experiment}}/ppo/seed{{seed}}/adapter",
    output:
        provenance=f"{RESULTS}/{{experiment}}/eval/seed{{seed}}/provenance.json",
        samples=f"{RESULTS}/{{experiment}}/eval/seed{{seed}}/samples.parquet",
        metrics=f"{RESULTS}/{{experiment}}/eval/seed{{seed}}/metrics.json",
    params:
        data=f"{RESULTS}/{{experiment}}/data",
        models=lambda w: LAYOUT.policy_args(w.experiment),
        ppo=f"{RESULTS}/{{experiment}}/ppo/seed{{seed}}",
        out=f"{RESULTS}/{{experiment}}/eval/seed{{seed}}",
    log:
        f"{RESULTS}/logs/{{experiment}}/evaluate.seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{experiment}}.evaluate.seed{{seed}}.tsv"
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "{STAGE_ENV}python -m rlhf_bench.evaluate --config {input.config} --experiment {wildcards.experiment}"
        " --seed {wildcards.seed} --data {params.data} {params.models} --ppo {params.ppo}"
        " --out {params.out} > {log} 2>&1"
