# Stage prompts: base and RLHF policy of every seed answer your own prompts (evaluation.prompts_file), one job per
# experiment (rlhf_bench.train.prompts).


rule prompts:
    """Base and RLHF policy of every seed answer evaluation.prompts_file: reward, judge, words and KL per answer."""
    input:
        unpack(lambda w: LAYOUT.model_inputs(w.experiment)),
        config=LAYOUT.profile_file("config.json"),
        checksums=LAYOUT.pattern("data", "checksums.json"),
        ppo=expand(
            LAYOUT.pattern("ppo", "provenance.json"),
            seed=LAYOUT.seeds,
            allow_missing=True,
        ),
        prompts=config["evaluation"]["prompts_file"] or [],
    output:
        provenance=LAYOUT.pattern("prompts", "provenance.json"),
        samples=LAYOUT.pattern("prompts", "samples.parquet"),
    log:
        LAYOUT.log("prompts"),
    benchmark:
        LAYOUT.benchmark("prompts")
    conda:
        CONDA_ENV
    threads: THREADS
    resources:
        gpu=lambda w: LAYOUT.resource(w.experiment, "prompts", "gpu", 0),
        mem_mb=lambda w: LAYOUT.resource(w.experiment, "prompts", "mem_mb", 8000),
        runtime=lambda w: LAYOUT.resource(w.experiment, "prompts", "runtime", 60),
    params:
        env=STAGE_ENV,
        data=lambda w, input: os.path.dirname(input.checksums),
        models=lambda w: LAYOUT.policy_args(w.experiment),
        ppo=lambda w: LAYOUT.path(w.experiment, "ppo"),  # seed<k>/ for each seed
        out=LAYOUT.pattern("prompts"),
    shell:
        "{params.env}python -m rlhf_bench.train.prompts --config {input.config:q} --experiment {wildcards.experiment:q}"
        " --data {params.data:q} {params.models} --ppo-seeds {params.ppo:q} --prompts {input.prompts:q}"
        " --out {params.out:q} > {log:q} 2>&1"
