# Stage ppo: trl.PPOTrainer with a LoRA adapter, one job per seed (rlhf_bench.train.ppo).
rule ppo:
    """trl.PPOTrainer with a LoRA adapter, one seed."""
    input:
        unpack(lambda w: LAYOUT.model_inputs(w.experiment)),
        config=LAYOUT.path("{experiment}", "config.json"),
        checksums=LAYOUT.pattern("data", "checksums.json"),
    output:
        provenance=LAYOUT.pattern("ppo", "provenance.json"),
        adapter=directory(LAYOUT.pattern("ppo", "adapter")),
        value_head=LAYOUT.pattern("ppo", "value_head.safetensors"),
        log=LAYOUT.pattern("ppo", "train_log.csv"),
        timings=LAYOUT.pattern("ppo", "timings.csv"),
        path=directory(LAYOUT.pattern("ppo", "path")),
    log:
        LAYOUT.log("ppo"),
    benchmark:
        LAYOUT.benchmark("ppo")
    conda:
        CONDA_ENV
    threads: THREADS
    resources:
        gpu=lambda w: LAYOUT.resource(w.experiment, "ppo", "gpu", 0),
        gres=lambda w: LAYOUT.resource(w.experiment, "ppo", "gres", ""),
        mem_mb=lambda w: LAYOUT.resource(w.experiment, "ppo", "mem_mb", 8000),
        runtime=lambda w: LAYOUT.resource(w.experiment, "ppo", "runtime", 480),
    params:
        env=STAGE_ENV,
        data=lambda w, input: os.path.dirname(input.checksums),
        models=lambda w: LAYOUT.policy_args(w.experiment),
        out=LAYOUT.pattern("ppo"),
    shell:
        "{params.env}python -m rlhf_bench.train.ppo --config {input.config:q} --experiment {wildcards.experiment:q}"
        " --seed {wildcards.seed:q} --data {params.data:q} {params.models} --out {params.out:q} > {log:q} 2>&1"
