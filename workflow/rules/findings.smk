# The findings page: workflow/notebooks/findings.py (jupytext percent format) executed on the tables and
# exported without its code cells as Markdown and HTML (`astromorphic findings`); the HTML goes into the report.


rule findings:
    input:
        notebook="workflow/notebooks/findings.py",
        tables=findings_inputs(),
        config="results/configs/all.yaml",
        code="src/astromorphic/findings.py",
    output:
        md="results/findings/findings.md",
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
    shell:
        "astromorphic findings --notebook {input.notebook} --tables results/tables --config {input.config}"
        " --out-dir results/findings > {log} 2>&1"
