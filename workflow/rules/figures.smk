# One rule per figure. Each lists the code its plotting module runs as inputs (module_sources: the module and
# what it imports), so that editing one plot function reruns only that figure.


rule fig4:
    input:
        runs="results/tables/runs.csv",
        code=module_sources("astromorphic.plotting.fig4"),
    output:
        png=report(
            "figures/fig4{panel}_{task}.png",
            caption="../report/fig4.rst",
            category="Figures",
            labels={"figure": "Fig. 4({panel})", "task": "{task}"},
        ),
        pdf="figures/fig4{panel}_{task}.pdf",
    log:
        "results/logs/figures/fig4{panel}_{task}.log",
    conda:
        "../envs/astromorphic.yaml"
    params:
        threshold=lambda wildcards: threshold(config, wildcards.task),
        label=config["label"],
    shell:
        "astromorphic plot fig4 --runs {input.runs} --task {wildcards.task} --threshold {params.threshold}"
        " --label {params.label:q} --out figures/fig4{wildcards.panel}_{wildcards.task} > {log} 2>&1"


rule lm_curves:
    input:
        runs="results/tables/runs.csv",
        summary="results/tables/runs_summary.csv",
        code=module_sources("astromorphic.plotting.lm_curves"),
    output:
        png=report(
            "figures/lm_perplexity.png",
            caption="../report/lm_perplexity.rst",
            category="Figures",
            labels={"figure": "WikiText-2 perplexity"},
        ),
        pdf="figures/lm_perplexity.pdf",
    log:
        "results/logs/figures/lm_perplexity.log",
    conda:
        "../envs/astromorphic.yaml"
    params:
        label=config["label"],
    shell:
        "astromorphic plot lm --runs {input.runs} --summary {input.summary} --label {params.label:q}"
        " --out figures/lm_perplexity > {log} 2>&1"


rule controls_figure:
    input:
        runs="results/tables/runs.csv",
        code=module_sources("astromorphic.plotting.controls"),
    output:
        png=report(
            "figures/controls_attention.png",
            caption="../report/controls_attention.rst",
            category="Figures",
            labels={"figure": "Attention probe"},
        ),
        pdf="figures/controls_attention.pdf",
    log:
        "results/logs/figures/controls_attention.log",
    conda:
        "../envs/astromorphic.yaml"
    params:
        label=config["label"],
    shell:
        "astromorphic plot controls --runs {input.runs} --label {params.label:q}"
        " --out figures/controls_attention > {log} 2>&1"


rule figS2:
    input:
        bench="results/bench/attention_{device}.csv",
        code=module_sources("astromorphic.plotting.figS2"),
    output:
        png=report(
            "figures/figS2_attention_{device}.png",
            caption="../report/figS2.rst",
            category="Figures",
            labels={"figure": "Fig. S2", "device": "{device}"},
        ),
        pdf="figures/figS2_attention_{device}.pdf",
    log:
        "results/logs/figures/figS2_attention_{device}.log",
    conda:
        "../envs/astromorphic.yaml"
    params:
        label=config["label"],
    shell:
        "astromorphic plot figS2 --bench {input.bench} --label {params.label:q}"
        " --out figures/figS2_attention_{wildcards.device} > {log} 2>&1"


rule fig3:
    input:
        sweep="results/simulation/sweep.csv",
        fit="results/simulation/fit.csv",
        code=module_sources("astromorphic.plotting.fig3"),
    output:
        png=report(
            "figures/fig3_calcium.png",
            caption="../report/fig3.rst",
            category="Figures",
            labels={"figure": "Fig. 3"},
        ),
        pdf="figures/fig3_calcium.pdf",
    log:
        "results/logs/figures/fig3_calcium.log",
    conda:
        "../envs/astromorphic.yaml"
    params:
        label=config["label"],
    shell:
        "astromorphic plot fig3 --sweep {input.sweep} --fit {input.fit} --label {params.label:q}"
        " --out figures/fig3_calcium > {log} 2>&1"


rule sweep_figure:
    input:
        sweep="results/tables/sweep.csv",
        summary="results/tables/runs_summary.csv",
        config="results/configs/all.yaml",
        code=module_sources("astromorphic.plotting.sweep"),
    output:
        png=report(
            "figures/sweep_{task}_{key}.png",
            caption="../report/sweep_figure.rst",
            category="Figures",
            labels={"figure": "sweep {task} {key}"},
        ),
        pdf="figures/sweep_{task}_{key}.pdf",
    log:
        "results/logs/figures/sweep_{task}_{key}.log",
    conda:
        "../envs/astromorphic.yaml"
    params:
        label=config["label"],
    shell:
        "astromorphic plot sweep --sweep {input.sweep} --summary {input.summary} --config {input.config}"
        " --task {wildcards.task} --key {wildcards.key} --label {params.label:q}"
        " --out figures/sweep_{wildcards.task}_{wildcards.key} > {log} 2>&1"


rule forest:
    input:
        claims="results/findings/claims.csv",
        code=module_sources("astromorphic.plotting.forest"),
    output:
        png=report(
            "figures/forest_claims.png",
            caption="../report/forest_claims.rst",
            category="Figures",
            labels={"figure": "The paper's claims (forest plot)"},
        ),
        pdf="figures/forest_claims.pdf",
    log:
        "results/logs/figures/forest_claims.log",
    conda:
        "../envs/astromorphic.yaml"
    params:
        label=config["label"],
    shell:
        "astromorphic plot forest --claims {input.claims} --label {params.label:q}"
        " --out figures/forest_claims > {log} 2>&1"


rule speed_thresholds:
    input:
        curves="results/tables/learning_curves.csv",
        runs="results/tables/runs.csv",
        config="results/configs/all.yaml",
        code=module_sources("astromorphic.plotting.speed_thresholds"),
    output:
        png=report(
            "figures/speed_thresholds_{task}.png",
            caption="../report/speed_thresholds.rst",
            category="Figures",
            labels={"figure": "Steps to a threshold", "task": "{task}"},
        ),
        pdf="figures/speed_thresholds_{task}.pdf",
    log:
        "results/logs/figures/speed_thresholds_{task}.log",
    conda:
        "../envs/astromorphic.yaml"
    params:
        label=config["label"],
    shell:
        "astromorphic plot speed_thresholds --curves {input.curves} --runs {input.runs} --config {input.config}"
        " --task {wildcards.task} --label {params.label:q} --out figures/speed_thresholds_{wildcards.task} > {log} 2>&1"
