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


# results/configs/code/data/<task>.txt holds the hash of the code that prepares the task's data
# (astromorphic.runs.data_code_hash); a change rewrites it (params rerun trigger), so the data are prepared again
# and the runs on them retrain.
rule data_code_snapshot:
    output:
        "results/configs/code/data/{task}.txt",
    log:
        "results/logs/configs/code/data/{task}.log",
    localrule: True
    params:
        code=lambda wildcards: DATA_CODE_HASHES[wildcards.task],
    run:
        write_data_code_snapshot(output[0], params.code, log[0])


# On a cluster, preparation runs on the submitting host: it downloads, and compute nodes are often offline.
rule prepare:
    input:
        config="results/configs/data/{task}.yaml",
        code="results/configs/code/data/{task}.txt",
    output:
        manifest="results/data/{task}/manifest.json",
    log:
        "results/logs/prepare/{task}.log",
    localrule: True
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
