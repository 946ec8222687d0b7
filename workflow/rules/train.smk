# One run per task, model and seed: results/runs/<task>/<model>/seed<k>/. A sweep variant is a model named
# <preset>@<key>=<value>; `astromorphic train` reads the override from the name. checkpoint.pt is not an output, so it
# survives an interrupted job and the rerun resumes from it (when it belongs to the same configuration, data and code).
#
# results/configs/code/<task>.txt holds the hash of the source files that determine a run of the task
# (astromorphic.runs.code_hash); it is rewritten when that hash changes (a params rerun trigger), and then every
# run of the task retrains from scratch. Code that only reports runs (tables, figures, aggregation) is not in it.


rule code_snapshot:
    output:
        "results/configs/code/{task}.txt",
    log:
        "results/logs/configs/code/{task}.log",
    localrule: True
    params:
        code=lambda wildcards: CODE_HASHES[wildcards.task],  # a changed hash rewrites the snapshot
    run:
        write_code_snapshot(output[0], params.code, log[0])


# results/configs/code/modules/<name>.txt: the identity of the code a reporting command runs (module_sources in
# common.smk); the tables, figures and findings rules list it as an input.
rule module_code_snapshot:
    output:
        "results/configs/code/modules/{module}.txt",
    log:
        "results/logs/configs/code/modules/{module}.log",
    localrule: True
    conda:
        "../envs/astromorphic.yaml"
    params:
        code=lambda wildcards: MODULE_CODE_HASHES[wildcards.module],  # a changed identity rewrites the snapshot
        header=MODULE_CODE_HEADER,
    # a shell job (a `run:` job parses the whole workflow again in a process of its own, seconds each)
    shell:
        "printf '%scode_hash: %s\\n' {params.header:q} {params.code} > {output} && echo wrote {output} > {log}"


rule train:
    input:
        config="results/configs/train/{task}.yaml",
        code="results/configs/code/{task}.txt",
        data="results/data/{task}/manifest.json",
    output:
        record="results/runs/{task}/{model}/seed{seed}/run.json",
        metrics="results/runs/{task}/{model}/seed{seed}/metrics.csv",
    log:
        "results/logs/train/{task}/{model}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{task}/{model}/seed{seed}.tsv"
    # Training is the long path of the DAG: start it before the simulation and the benchmark.
    priority: 10
    conda:
        "../envs/astromorphic.yaml"
    threads: lambda wildcards: task_resources(wildcards.task, "threads")
    # Runs of a task with resources.runs_per_gpu > 1 share a GPU: locally through gpu_share, on SLURM as group
    # jobs of that many runs in one allocation (common.smk).
    group:
        lambda wildcards: train_group(wildcards.task)
    resources:
        mem_mb=lambda wildcards: task_resources(wildcards.task, "mem_mb"),
        runtime=lambda wildcards: task_resources(wildcards.task, "runtime"),
        gpu_share=lambda wildcards: train_gpu_share(wildcards.task),
        gres=lambda wildcards: train_gres(wildcards.task),
    # --force: snakemake has decided that this run is out of date, so a finished run in the directory is replaced.
    shell:
        "astromorphic train --task {wildcards.task} --model {wildcards.model} --seed {wildcards.seed}"
        " --config {input.config} --data results/data/{wildcards.task} --force"
        " --out results/runs/{wildcards.task}/{wildcards.model}/seed{wildcards.seed}"
        " > {log} 2>&1"
