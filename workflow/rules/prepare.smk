# Preparation, the first stage of a paper run: fetch, verify and lay out the data and checkpoints from the
# mirrors in config paths.sources (config/sources.yaml). A target whose files are already where the loaders look
# (laid out by hand) gets no prepare job (glora.workflow.prepare_input); the checks (data.smk) follow either way.
# Downloads need the internet: under SLURM these jobs run on the submitting host (localrules).


localrules:
    prepare_data,
    prepare_checkpoint,


rule prepare_data:
    output:
        OUT.prepared("{family}"),
    log:
        OUT.log("data", "prepare_{family}"),
    benchmark:
        OUT.benchmark("data", "prepare_{family}")
    wildcard_constraints:
        family="vtab|fewshot|imagenet",
    conda:
        "../../envs/glora.yaml"
    threads: 1
    resources:
        runtime=720,
    params:
        opts=f"--config {RESOLVED} --quiet",
        root=lambda w: config["paths"][w.family],
    shell:
        "python -m glora prepare {wildcards.family} {params.opts} --out {output} > {log} 2>&1"


rule prepare_checkpoint:
    output:
        OUT.prepared("checkpoint_{backbone}"),
    log:
        OUT.log("data", "prepare_checkpoint_{backbone}"),
    benchmark:
        OUT.benchmark("data", "prepare_checkpoint_{backbone}")
    conda:
        "../../envs/glora.yaml"
    threads: 1
    resources:
        runtime=120,
    params:
        opts=f"--config {RESOLVED} --quiet",
    shell:
        "python -m glora prepare checkpoint --backbone {wildcards.backbone} {params.opts} --out {output}"
        " > {log} 2>&1"


rule check_llm:
    output:
        OUT.manifest("llm"),
    log:
        OUT.log("data", "check_llm"),
    benchmark:
        OUT.benchmark("data", "check_llm")
    conda:
        "../../envs/glora.yaml"
    threads: 1
    resources:
        runtime=10,
    params:
        opts=f"--config {RESOLVED} --quiet",
        models=LLM["models"],
    shell:
        "python -m glora prepare llama {params.opts} --out {output} > {log} 2>&1"
