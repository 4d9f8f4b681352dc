# The reward-vs-KL frontier: arms beside PPO, each where the experiment's `frontier` block asks for it, measured as
# evaluate measures PPO (rlhf_bench.train.<rule>), then one table over all of them (rlhf_bench.analysis.frontier).


rule ppo_path:
    """PPO's policy at the steps of frontier.ppo_path, measured as evaluate measures the final one, every seed."""
    input:
        unpack(lambda w: LAYOUT.model_inputs(w.experiment)),
        config=LAYOUT.path("{experiment}", "config.json"),
        checksums=LAYOUT.pattern("data", "checksums.json"),
        ppo=expand(
            LAYOUT.pattern("ppo", "provenance.json"),
            seed=LAYOUT.seeds,
            allow_missing=True,
        ),
    output:
        provenance=LAYOUT.pattern("ppo_path", "provenance.json"),
        samples=LAYOUT.pattern("ppo_path", "samples.parquet"),
    log:
        LAYOUT.log("ppo_path"),
    benchmark:
        LAYOUT.benchmark("ppo_path")
    conda:
        CONDA_ENV
    threads: THREADS
    resources:
        gpu=lambda w: LAYOUT.resource(w.experiment, "ppo_path", "gpu", 0),
        mem_mb=lambda w: LAYOUT.resource(w.experiment, "ppo_path", "mem_mb", 8000),
        runtime=lambda w: LAYOUT.resource(w.experiment, "ppo_path", "runtime", 120),
    params:
        env=STAGE_ENV,
        data=lambda w, input: os.path.dirname(input.checksums),
        models=lambda w: LAYOUT.policy_args(w.experiment),
        ppo=lambda w: LAYOUT.path(w.experiment, "ppo"),  # seed<k>/ for each seed
        out=LAYOUT.pattern("ppo_path"),
    shell:
        "{params.env}python -m rlhf_bench.train.ppo_path --config {input.config:q} --experiment {wildcards.experiment:q}"
        " --data {params.data:q} {params.models} --ppo-seeds {params.ppo:q} --out {params.out:q} > {log:q} 2>&1"


rule best_of_n:
    """Best-of-n of the base policy by the reward for every n of frontier.best_of_n, every seed."""
    input:
        unpack(lambda w: LAYOUT.model_inputs(w.experiment)),
        config=LAYOUT.path("{experiment}", "config.json"),
        checksums=LAYOUT.pattern("data", "checksums.json"),
    output:
        provenance=LAYOUT.pattern("best_of_n", "provenance.json"),
        samples=LAYOUT.pattern("best_of_n", "samples.parquet"),
    log:
        LAYOUT.log("best_of_n"),
    benchmark:
        LAYOUT.benchmark("best_of_n")
    conda:
        CONDA_ENV
    threads: THREADS
    resources:
        gpu=lambda w: LAYOUT.resource(w.experiment, "best_of_n", "gpu", 0),
        mem_mb=lambda w: LAYOUT.resource(w.experiment, "best_of_n", "mem_mb", 8000),
        runtime=lambda w: LAYOUT.resource(w.experiment, "best_of_n", "runtime", 120),
    params:
        env=STAGE_ENV,
        data=lambda w, input: os.path.dirname(input.checksums),
        models=lambda w: LAYOUT.policy_args(w.experiment),
        out=LAYOUT.pattern("best_of_n"),
    shell:
        "{params.env}python -m rlhf_bench.train.best_of_n --config {input.config:q} --experiment {wildcards.experiment:q}"
        " --data {params.data:q} {params.models} --out {params.out:q} > {log:q} 2>&1"


rule dpo_pairs:
    """DPO's pairs from two base-policy answers per PPO prompt, ranked by the reward (frontier.dpo.pairs: policy)."""
    input:
        unpack(lambda w: LAYOUT.model_inputs(w.experiment)),
        config=LAYOUT.path("{experiment}", "config.json"),
        checksums=LAYOUT.pattern("data", "checksums.json"),
    output:
        provenance=LAYOUT.pattern("dpo_pairs", "provenance.json"),
        pairs=LAYOUT.pattern("dpo_pairs", "pairs.jsonl"),
    log:
        LAYOUT.log("dpo_pairs"),
    benchmark:
        LAYOUT.benchmark("dpo_pairs")
    conda:
        CONDA_ENV
    threads: THREADS
    resources:
        gpu=lambda w: LAYOUT.resource(w.experiment, "dpo_pairs", "gpu", 0),
        mem_mb=lambda w: LAYOUT.resource(w.experiment, "dpo_pairs", "mem_mb", 8000),
        runtime=lambda w: LAYOUT.resource(w.experiment, "dpo_pairs", "runtime", 60),
    params:
        env=STAGE_ENV,
        data=lambda w, input: os.path.dirname(input.checksums),
        models=lambda w: LAYOUT.policy_args(w.experiment),
        out=LAYOUT.pattern("dpo_pairs"),
    shell:
        "{params.env}python -m rlhf_bench.train.dpo_pairs --config {input.config:q} --experiment {wildcards.experiment:q}"
        " --data {params.data:q} {params.models} --out {params.out:q} > {log:q} 2>&1"


rule dpo:
    """trl's DPOTrainer for every beta of frontier.dpo.beta, each policy measured as evaluate does, one seed."""
    input:
        unpack(lambda w: LAYOUT.model_inputs(w.experiment)),
        unpack(lambda w: LAYOUT.dpo_inputs(w.experiment)),
        config=LAYOUT.path("{experiment}", "config.json"),
        checksums=LAYOUT.pattern("data", "checksums.json"),
    output:
        provenance=LAYOUT.pattern("dpo", "provenance.json"),
        samples=LAYOUT.pattern("dpo", "samples.parquet"),
        log=LAYOUT.pattern("dpo", "train_log.csv"),
    log:
        LAYOUT.log("dpo"),
    benchmark:
        LAYOUT.benchmark("dpo")
    conda:
        CONDA_ENV
    threads: THREADS
    resources:
        gpu=lambda w: LAYOUT.resource(w.experiment, "dpo", "gpu", 0),
        mem_mb=lambda w: LAYOUT.resource(w.experiment, "dpo", "mem_mb", 8000),
        runtime=lambda w: LAYOUT.resource(w.experiment, "dpo", "runtime", 480),
    params:
        env=STAGE_ENV,
        data=lambda w, input: os.path.dirname(input.checksums),
        models=lambda w: LAYOUT.policy_args(w.experiment),
        pairs=lambda w: LAYOUT.dpo_pairs_args(w.experiment),
        out=LAYOUT.pattern("dpo"),
    shell:
        "{params.env}python -m rlhf_bench.train.dpo --config {input.config:q} --experiment {wildcards.experiment:q}"
        " --seed {wildcards.seed:q} --data {params.data:q} {params.models} {params.pairs} --out {params.out:q}"
        " > {log:q} 2>&1"


rule frontier:
    """frontier.csv (every arm's points) and frontier_matched.csv (each arm at a matched KL, the best tested)."""
    input:
        LAYOUT.frontier_samples(),
        config=LAYOUT.profile_file("config.json"),
    output:
        [
            report(t, caption="../report/tables.rst", category="Tables")
            for t in LAYOUT.frontier_tables()
        ],
        LAYOUT.profile_record("frontier"),
    log:
        LAYOUT.log("frontier", per_experiment=False),
    benchmark:
        LAYOUT.benchmark("frontier", per_experiment=False)
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        results=lambda w, input: os.path.dirname(input.config),
    shell:
        "python -m rlhf_bench.analysis.frontier --config {input.config:q} --results-dir {params.results:q} --out-dir {params.results:q}"
        " > {log:q} 2>&1"
