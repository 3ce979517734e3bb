# glora-repro: the GLoRA paper (arXiv 2306.07967) as one DAG.
#   snakemake --cores all --resources gpu=4                       the paper (config.yaml), local GPUs
#   snakemake --workflow-profile workflow/profiles/slurm           the paper on a SLURM cluster
#   snakemake --cores all --configfile config/mini.yaml            the embedded mini suite (CPU, minutes)
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/select.smk"
include: "workflow/rules/retrain.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/diagnostics.smk"
include: "workflow/rules/efficiency.smk"
include: "workflow/rules/llm.smk"
include: "workflow/rules/paper.smk"


rule all:
    default_target: True
    input:
        plan.targets(config),
