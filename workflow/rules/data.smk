# Data: the mini suite is generated; the paper's folders (config paths), prepared (prepare.smk) or laid out by
# hand, are checked before GPU time is spent.


rule mini_data:
    output:
        directory(OUT.data),
    log:
        OUT.log("data", "mini"),
    benchmark:
        OUT.benchmark("data", "mini")
    conda:
        "../../envs/glora.yaml"
    threads: 1
    resources:
        runtime=30,
    params:
        seed=config["data"]["seed"],
    shell:
        "python -m glora data mini --out {output} --seed {params.seed} --parts vtab fewshot imagenet_variants"
        " --quiet > {log} 2>&1"


# Only pre-training reads the upstream set (the ImageNet-21k analogue): the mini suite's committed backbone
# needs none of it.
rule mini_upstream:
    output:
        directory(OUT.upstream),
    log:
        OUT.log("data", "upstream"),
    benchmark:
        OUT.benchmark("data", "upstream")
    conda:
        "../../envs/glora.yaml"
    threads: 1
    resources:
        runtime=30,
    params:
        settings=config["data"],
    shell:
        "python -m glora data mini --out {output} --seed {params.settings[seed]} --parts upstream"
        " --upstream-per-class {params.settings[upstream_per_class]} --quiet > {log} 2>&1"


rule check_data:
    input:
        lambda w: plan.prepare_input(config, w.family),
    output:
        OUT.manifest("{family}"),
    log:
        OUT.log("data", "check_{family}"),
    benchmark:
        OUT.benchmark("data", "check_{family}")
    wildcard_constraints:
        family="vtab|fewshot|imagenet",
    conda:
        "../../envs/glora.yaml"
    threads: 1
    resources:
        runtime=120,
    params:
        root=lambda w: config["paths"][w.family],
    shell:
        "python -m glora data check --family {wildcards.family} --root {params.root} --manifest {output} > {log} 2>&1"


rule check_checkpoint:
    input:
        lambda w: plan.prepare_input(config, f"checkpoint_{w.backbone}"),
    output:
        OUT.manifest("checkpoint_{backbone}"),
    log:
        OUT.log("data", "checkpoint_{backbone}"),
    benchmark:
        OUT.benchmark("data", "checkpoint_{backbone}")
    conda:
        "../../envs/glora.yaml"
    threads: 1
    resources:
        runtime=10,
    params:
        path=lambda w: plan.checkpoint_of(config, w.backbone),
    shell:
        "python -m glora checkpoint --backbone {wildcards.backbone} --path {params.path} --out {output} > {log} 2>&1"
