# Preparation, the first stage of a paper run: fetch, verify and lay out the data and checkpoints from the
# mirrors in config paths.sources (config/sources.yaml). A target whose files are already where the loaders look
# (laid out by hand) gets no prepare job (glora.workflow.prepare_input); the checks (data.smk) follow either way.
# Downloads need the internet: under SLURM these jobs run on the submitting host (localrules).

localrules:
    prepare_data,
    prepare_checkpoint,


rule prepare_data:
    output:
        plan.prepared_report(config, "{family}"),
    wildcard_constraints:
        family="vtab|fewshot|imagenet",
    params:
        opts=f"--config {RESOLVED} --quiet",
        root=lambda w: config["paths"][w.family],
    log:
        f"{RESULTS}/logs/data/prepare_{{family}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/data/prepare_{{family}}.tsv"
    threads: 1
    resources:
        runtime=720,
    conda:
        "../../envs/glora.yaml"
    shell:
        "python -m glora prepare {wildcards.family} {params.opts} --out {output} > {log} 2>&1"


rule prepare_checkpoint:
    output:
        plan.prepared_report(config, "checkpoint_{backbone}"),
    params:
        opts=f"--config {RESOLVED} --quiet",
    log:
        f"{RESULTS}/logs/data/prepare_checkpoint_{{backbone}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/data/prepare_checkpoint_{{backbone}}.tsv"
    threads: 1
    resources:
        runtime=120,
    conda:
        "../../envs/glora.yaml"
    shell:
        "python -m glora prepare checkpoint --backbone {wildcards.backbone} {params.opts} --out {output}"
        " > {log} 2>&1"


rule check_llm:
    output:
        f"{RESULTS}/data/llm.json",
    params:
        opts=f"--config {RESOLVED} --quiet",
        models=LLM["models"],
    log:
        f"{RESULTS}/logs/data/check_llm.log",
    benchmark:
        f"{RESULTS}/benchmarks/data/check_llm.tsv"
    threads: 1
    resources:
        runtime=10,
    conda:
        "../../envs/glora.yaml"
    shell:
        "python -m glora prepare llama {params.opts} --out {output} > {log} 2>&1"
