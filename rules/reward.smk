rule train_reward_model:
    """Reward model on the train pairs (ranking loss, or binary classifier); pairwise accuracy on both."""
    input:
        unpack(lambda w: LAYOUT.hub_inputs(w.experiment)),
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
        gpu=lambda w: LAYOUT.resource(w.experiment, "train_reward_model", "gpu", 0),
        mem_mb=lambda w: LAYOUT.resource(
            w.experiment, "train_reward_model", "mem_mb", 8000
        ),
        runtime=lambda w: LAYOUT.resource(
            w.experiment, "train_reward_model", "runtime", 240
        ),
    params:
        env=STAGE_ENV,
        data=lambda w, input: os.path.dirname(input.checksums),
        out=f"{RESULTS}/{{experiment}}/reward",
    shell:
        "{params.env}python -m rlhf_bench.reward --config {input.config:q} --experiment {wildcards.experiment:q}"
        " --data {params.data:q} --out {params.out:q} > {log:q} 2>&1"
