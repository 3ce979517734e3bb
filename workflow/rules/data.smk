# Data: the mini suite is generated; the paper's folders (config paths), prepared (prepare.smk) or laid out by
# hand, are checked before GPU time is spent.


rule mini_data:
    output:
        directory(f"{RESULTS}/data"),
    params:
        seed=config["data"]["seed"],
    log:
        f"{RESULTS}/logs/data/mini.log",
    benchmark:
        f"{RESULTS}/benchmarks/data/mini.tsv"
    threads: 1
    resources:
        runtime=30,
    conda:
        "../../envs/glora.yaml"
    shell:
        "python -m glora data mini --out {output} --seed {params.seed} --parts vtab fewshot imagenet_variants"
        " --quiet > {log} 2>&1"


# Only pre-training reads the upstream set (the ImageNet-21k analogue): the mini suite's committed backbone
# needs none of it.
rule mini_upstream:
    output:
        directory(f"{RESULTS}/upstream"),
    params:
        settings=config["data"],
    log:
        f"{RESULTS}/logs/data/upstream.log",
    benchmark:
        f"{RESULTS}/benchmarks/data/upstream.tsv"
    threads: 1
    resources:
        runtime=30,
    conda:
        "../../envs/glora.yaml"
    shell:
        "python -m glora data mini --out {output} --seed {params.settings[seed]} --parts upstream"
        " --upstream-per-class {params.settings[upstream_per_class]} --quiet > {log} 2>&1"


rule check_data:
    input:
        lambda w: plan.prepare_input(config, w.family),
    output:
        f"{RESULTS}/data/{{family}}.json",
    wildcard_constraints:
        family="vtab|fewshot|imagenet",
    params:
        root=lambda w: config["paths"][w.family],
    log:
        f"{RESULTS}/logs/data/check_{{family}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/data/check_{{family}}.tsv"
    threads: 1
    resources:
        runtime=120,
    conda:
        "../../envs/glora.yaml"
    shell:
        "python -m glora data check --family {wildcards.family} --root {params.root} --manifest {output} > {log} 2>&1"


rule check_checkpoint:
    input:
        lambda w: plan.prepare_input(config, f"checkpoint_{w.backbone}"),
    output:
        f"{RESULTS}/data/checkpoint_{{backbone}}.json",
    params:
        path=lambda w: next(c for e in plan.EXPERIMENTS for b, c in [plan.backbone_of(config, e)]
                            if b == w.backbone),
    log:
        f"{RESULTS}/logs/data/checkpoint_{{backbone}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/data/checkpoint_{{backbone}}.tsv"
    threads: 1
    resources:
        runtime=10,
    conda:
        "../../envs/glora.yaml"
    shell:
        "python -m glora checkpoint --backbone {wildcards.backbone} --path {params.path} --out {output} > {log} 2>&1"
