# The reproduction DAG of "Delving Deeper Into Astromorphic Transformers" (arXiv 2312.10925).
#
#   prepare data -> train {task}/{model}/seed{seed} -> aggregate -> tables -> figures, findings page -> report
#
# Every step is one `astromorphic ...` command (src/astromorphic/); the rules only wire files together.
# Default: config/config.yaml (synthetic stand-ins, a few minutes on 2 CPU cores). Others:
#   snakemake --profile profiles/default --configfile config/paper.yaml
# A --configfile replaces config/config.yaml instead of being merged into it.
from snakemake.utils import min_version

min_version("9.0")


if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/findings.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
