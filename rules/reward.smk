# Stage reward: the reward model on the train pairs, accuracy on both splits (rlhf_bench.train.reward).
rule reward:
    """Reward model on the train pairs (ranking loss, or binary classifier); pairwise accuracy on both."""
    input:
        unpack(lambda w: LAYOUT.hub_inputs(w.experiment)),
        config=LAYOUT.path("{experiment}", "config.json"),
        checksums=LAYOUT.pattern("data", "checksums.json"),
    output:
        provenance=LAYOUT.pattern("reward", "provenance.json"),
        model=directory(LAYOUT.pattern("reward", "model")),
        metrics=LAYOUT.pattern("reward", "rm_metrics.json"),
    log:
        LAYOUT.log("reward"),
    benchmark:
        LAYOUT.benchmark("reward")
    conda:
        CONDA_ENV
    threads: THREADS
    resources:
        gpu=lambda w: LAYOUT.resource(w.experiment, "reward", "gpu", 0),
        mem_mb=lambda w: LAYOUT.resource(w.experiment, "reward", "mem_mb", 8000),
        runtime=lambda w: LAYOUT.resource(w.experiment, "reward", "runtime", 240),
    params:
        env=STAGE_ENV,
        data=lambda w, input: os.path.dirname(input.checksums),
        out=LAYOUT.pattern("reward"),
    shell:
        "{params.env}python -m rlhf_bench.train.reward --config {input.config:q} --experiment {wildcards.experiment:q}"
        " --data {params.data:q} --out {params.out:q} > {log:q} 2>&1"
