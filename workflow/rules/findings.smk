# The findings page: workflow/notebooks/findings.py (jupytext percent format) executed on the tables and
# exported without its code cells as Markdown and HTML (`astromorphic findings`); the HTML goes into the report.
# The claims' comparisons are written first as a table of their own (rule claims), which the forest plot draws
# (rule forest, figures.smk) and the page shows, with the language model's perplexity curves (findings_figures).

FINDINGS_CODE = module_sources("astromorphic.findings")


rule claims:
    input:
        tables=findings_inputs(),
        config="results/configs/all.yaml",
        code=FINDINGS_CODE,
    output:
        "results/findings/claims.csv",
    log:
        "results/logs/claims.log",
    conda:
        "../envs/astromorphic.yaml"
    shell:
        "astromorphic findings --tables {input.tables} --config {input.config} --claims {output} --no-page"
        " > {log} 2>&1"


rule findings:
    input:
        notebook="workflow/notebooks/findings.py",
        tables=findings_inputs(),
        config="results/configs/all.yaml",
        figures=list(findings_figures().values()),
        code=FINDINGS_CODE,
    output:
        md="results/findings/findings.md",
        figures=findings_figure_copies(),
        html=report(
            "results/findings/findings.html",
            caption="../report/findings.rst",
            category="Findings",
            labels={"page": "findings"},
        ),
    log:
        "results/logs/findings.log",
    conda:
        "../envs/astromorphic.yaml"
    params:
        figures=findings_figure_args(),
    shell:
        "astromorphic findings --notebook {input.notebook} --tables {input.tables} --config {input.config}"
        " {params.figures} --out-dir results/findings > {log} 2>&1"
