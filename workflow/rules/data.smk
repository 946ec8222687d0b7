# Prepared data: results/data/<task>/ (tensors + manifest.json; the manifest is written last).


rule config_snapshot:
    output:
        "results/configs/{name}.yaml",
    log:
        "results/logs/configs/{name}.log",
    wildcard_constraints:
        name=r"all|simulation|(train|data)/[a-z0-9]+",
    localrule: True
    conda:
        "../envs/astromorphic.yaml"
    params:
        config=lambda wildcards: config_snapshot(wildcards.name),
    run:
        write_snapshot(output[0], params.config, log[0])


rule prepare:
    input:
        config="results/configs/data/{task}.yaml",
    output:
        manifest="results/data/{task}/manifest.json",
    log:
        "results/logs/prepare/{task}.log",
    priority: 20
    conda:
        "../envs/astromorphic.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    shell:
        "astromorphic prepare {wildcards.task} --config {input.config} --out results/data/{wildcards.task}"
        " > {log} 2>&1"
