rule ppo:
    """trl.PPOTrainer with a LoRA adapter, one seed."""
    input:
        unpack(lambda w: LAYOUT.model_inputs(w.experiment)),
        config=f"{RESULTS}/{{experiment}}/config.json",
        checksums=f"{RESULTS}/{{experiment}}/data/checksums.json",
    output:
        provenance=f"{RESULTS}/{{experiment}}/ppo/seed{{seed}}/provenance.json",
        adapter=directory(f"{RESULTS}/{{experiment}}/ppo/seed{{seed}}/adapter"),
        value_head=f"{RESULTS}/{{experiment}}/ppo/seed{{seed}}/value_head.safetensors",
        log=f"{RESULTS}/{{experiment}}/ppo/seed{{seed}}/train_log.csv",
    log:
        f"{RESULTS}/logs/{{experiment}}/ppo.seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{experiment}}.ppo.seed{{seed}}.tsv"
    conda:
        CONDA_ENV
    threads: THREADS
    resources:
        gpu=lambda w: LAYOUT.resource(w.experiment, "ppo", "gpu", 0),
        mem_mb=lambda w: LAYOUT.resource(w.experiment, "ppo", "mem_mb", 8000),
        runtime=lambda w: LAYOUT.resource(w.experiment, "ppo", "runtime", 480),
    params:
        env=STAGE_ENV,
        data=lambda w, input: os.path.dirname(input.checksums),
        models=lambda w: LAYOUT.policy_args(w.experiment),
        out=f"{RESULTS}/{{experiment}}/ppo/seed{{seed}}",
    shell:
        "{params.env}python -m rlhf_bench.ppo --config {input.config:q} --experiment {wildcards.experiment:q}"
        " --seed {wildcards.seed:q} --data {params.data:q} {params.models} --out {params.out:q} > {log:q} 2>&1"
