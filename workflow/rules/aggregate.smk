# All runs -> tidy tables -> the paper's tables (CSV, Markdown, LaTeX, and HTML for the report).
# Each rule lists the code its command runs as inputs (module_sources), so editing that code reruns the rule.
# A run that a committed record stands for (config key `records`) is read from the record instead.


rule aggregate:
    input:
        records=expand("{run}/run.json", run=aggregated_run_dirs()),
        metrics=expand("{run}/metrics.csv", run=aggregated_run_dirs()),
        code=module_sources("astromorphic.tables.aggregate"),
    output:
        tidy="results/tables/runs.csv",
        summary="results/tables/runs_summary.csv",
        timing="results/timing/epochs.csv",
        curves="results/tables/learning_curves.csv",
    log:
        "results/logs/aggregate.log",
    conda:
        "../envs/astromorphic.yaml"
    params:
        runs=aggregated_run_dirs(),
    shell:
        "astromorphic aggregate --runs {params.runs} --out {output.tidy} --summary {output.summary}"
        " --timing {output.timing} --curves {output.curves} > {log} 2>&1"


rule tables:
    input:
        config="results/configs/all.yaml",
        summary="results/tables/runs_summary.csv",
        runs="results/tables/runs.csv",
        curves="results/tables/learning_curves.csv",
        reference="results/reference/paper_values.csv",
        # The data prepared here (tasks with runs to train); committed records carry their own data provenance.
        manifests=expand("results/data/{task}/manifest.json", task=prepared_tasks()),
        code=module_sources("astromorphic.tables"),
    output:
        table_outputs("csv"),
        table_outputs("md"),
        table_outputs("tex"),
        [
            report(
                path,
                caption=f"../report/{Path(path).stem}.rst",
                category="Tables",
                labels={"table": Path(path).stem},
            )
            for path in table_outputs("html")
        ],
    log:
        "results/logs/tables.log",
    conda:
        "../envs/astromorphic.yaml"
    shell:
        "astromorphic tables --config {input.config} --summary {input.summary} --runs {input.runs}"
        " --curves {input.curves}"
        " --reference {input.reference} --manifests {input.manifests} --out-dir results/tables > {log} 2>&1"


# Where each aggregated run came from (a committed record or this workflow), whether the current code made it,
# whether `astromorphic records verify` re-derived it and which of its packages differ from the lock's versions;
# the findings page reports it. The code snapshots make it follow a change of the code, the verification file
# (when there is one) a new verification, the lock a re-lock.
rule records_table:
    input:
        records=expand("{run}/run.json", run=aggregated_run_dirs()),
        code=expand("results/configs/code/{task}.txt", task=TASKS),
        module=module_sources("astromorphic.runs.records"),
        lock="requirements-lock.txt",
        verification=verification_file(),
    output:
        "results/tables/records.csv",
    log:
        "results/logs/records_table.log",
    conda:
        "../envs/astromorphic.yaml"
    params:
        runs=aggregated_run_dirs(),
        records=config["records"] or "",
        verification=lambda wildcards, input: (
            f" --verification {input.verification}" if input.verification else ""
        ),
    shell:
        "astromorphic records table --runs {params.runs} --records {params.records:q}{params.verification}"
        " --lock {input.lock} --out {output} > {log} 2>&1"


# Projected device-hours of every run of the configuration (astromorphic.bench.cost), from the throughput file that
# report.cost_throughput names (measured by `astromorphic bench throughput`), with the measured speed-up of runs
# sharing a GPU when report.cost_sharing names it (gpu_share_check.sh); the caption names both.
rule cost_table:
    input:
        config="results/configs/all.yaml",
        throughput=lambda wildcards: config["report"]["cost_throughput"],
        sharing=lambda wildcards: config["report"]["cost_sharing"] or [],
        code=module_sources("astromorphic.bench.cost"),
    output:
        csv="results/tables/cost.csv",
        md=report(
            "results/tables/cost.md",
            caption="../report/cost.rst",
            category="Tables",
            labels={"table": "cost"},
        ),
    log:
        "results/logs/cost.log",
    params:
        sharing=lambda wildcards, input: f" --sharing {input.sharing}" if input.sharing else "",
    conda:
        "../envs/astromorphic.yaml"
    shell:
        "astromorphic bench cost --config {input.config} --throughput {input.throughput}"
        "{params.sharing} --out results/tables/cost > {log} 2>&1"
