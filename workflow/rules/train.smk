# One run per task, model and seed: results/runs/<task>/<model>/seed<k>/. A sweep variant is a model named
# <preset>@<key>=<value>; `astromorphic train` reads the override from the name. checkpoint.pt is not an output, so it
# survives an interrupted job and the rerun resumes from it.


rule train:
    input:
        config="results/configs/train/{task}.yaml",
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
    resources:
        mem_mb=lambda wildcards: task_resources(wildcards.task, "mem_mb"),
        runtime=lambda wildcards: task_resources(wildcards.task, "runtime"),
        gpu=lambda wildcards: task_resources(wildcards.task, "gpu"),
    shell:
        "astromorphic train --task {wildcards.task} --model {wildcards.model} --seed {wildcards.seed}"
        " --config {input.config} --data results/data/{wildcards.task}"
        " --out results/runs/{wildcards.task}/{wildcards.model}/seed{wildcards.seed}"
        " > {log} 2>&1"
