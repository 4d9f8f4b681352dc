rule train_reward_model:
    """Pairwise ranking loss on the train pairs; pairwise accuracy on train and test pairs."""
    input:
        config=f"{RESULTS}/{{experiment}}/config.json",
        checksums=f"{RESULTS}/{{experiment}}/data/checksums.json",
    output:
        provenance=f"{RESULTS}/{{experiment}}/reward/provenance.json",
        model=directory(f"{RESULTS}/{{experiment}}/reward/model"),
        metrics=f"{RESULTS}/{{experiment}}/reward/rm_metrics.json",
    log:
        f"{RESULTS}/logs/{{experiment}}/train_reward_model.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{experiment}}.train_reward_model.tsv"
    conda:
        CONDA_ENV
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        env=STAGE_ENV,
        data=lambda w, input: os.path.dirname(input.checksums),
        out=f"{RESULTS}/{{experiment}}/reward",
    shell:
        "{params.env}python -m rlhf_bench.reward --config {input.config} --experiment {wildcards.experiment}"
        " --data {params.data} --out {params.out} > {log} 2>&1"
