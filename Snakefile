# glora-repro: the GLoRA paper (arXiv 2306.07967) as one DAG. `make run` or
# `snakemake --cores all` (add `--configfile config/mini.yaml` for the embedded mini suite).
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"


rule all:
    input:
        all_targets(),
    default_target: True
