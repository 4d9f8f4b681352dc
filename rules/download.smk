# Hub models and datasets, fetched once where there is internet; every other job reads the cache offline.
# On a cluster: `snakemake --until download --configfile config/paper.yaml` on the login node first.


localrules:
    download,


rule download:
    """One experiment's hub models and datasets into the hub cache, safetensors only (needs internet)."""
    input:
        config=LAYOUT.path("{experiment}", "config.json"),
    output:
        manifest=LAYOUT.hub_manifest("{experiment}"),
        provenance=LAYOUT.path("{experiment}", "hub", "provenance.json"),
    log:
        LAYOUT.log("download"),
    benchmark:
        LAYOUT.benchmark("download")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=240,
    params:
        out=lambda w, output: os.path.dirname(output.manifest),
    shell:
        "python -m rlhf_bench.train.download --config {input.config:q} --experiment {wildcards.experiment:q}"
        " --out {params.out:q} > {log:q} 2>&1"
