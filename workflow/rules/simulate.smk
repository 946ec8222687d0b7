# Computations behind the two figures that need no training: the neuron-astrocyte simulation (Fig. 3)
# and the attention benchmark (Fig. S2). The simulation follows the identity of its code (module_sources); the
# benchmark measures this machine and is run again on demand (--forcerun bench_attention), not on every edit.


rule simulate:
    input:
        config="results/configs/simulation.yaml",
        code=module_sources("astromorphic.neuroglia.cli"),
    output:
        sweep="results/simulation/sweep.csv",
        sweep_r_ip3="results/simulation/sweep_r_ip3.csv",  # r_IP3 halved and doubled (fit sensitivity)
        fit="results/simulation/fit.csv",
    log:
        "results/logs/simulate.log",
    conda:
        "../envs/astromorphic.yaml"
    threads: lambda wildcards: section_resources("simulation", "threads")
    resources:
        mem_mb=lambda wildcards: section_resources("simulation", "mem_mb"),
        runtime=lambda wildcards: section_resources("simulation", "runtime"),
    shell:
        "astromorphic simulate --config {input.config} --out-dir results/simulation > {log} 2>&1"


rule bench_attention:
    output:
        "results/bench/attention_{device}.csv",
    log:
        "results/logs/bench/attention_{device}.log",
    conda:
        "../envs/astromorphic.yaml"
    threads: lambda wildcards: section_resources("bench", "threads")
    resources:
        mem_mb=lambda wildcards: section_resources("bench", "mem_mb"),
        runtime=lambda wildcards: section_resources("bench", "runtime"),
        gpu=lambda wildcards: 1 if wildcards.device == "cuda" else 0,
        gpu_share=lambda wildcards: GPU_SHARES if wildcards.device == "cuda" else 0,
    params:
        n=",".join(str(n) for n in config["bench"]["n"]),
        repeats=config["bench"]["repeats"],
        max_seconds=config["bench"]["max_seconds"],
    shell:
        "astromorphic bench attention --out {output} --n {params.n} --device {wildcards.device}"
        " --repeats {params.repeats} --max-seconds {params.max_seconds} > {log} 2>&1"
