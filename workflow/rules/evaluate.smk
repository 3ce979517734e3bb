# Test accuracy of every exported model (and the ImageNet variants for the domain-generalisation runs).


rule evaluate:
    input:
        model=rules.export.output.model,
        card=rules.export.output.card,
        weights=rules.train.output.weights,
    output:
        report(
            OUT.pattern("evaluate"),
            caption="../report/evaluate.rst",
            category="Evaluation",
            subcategory="{exp}",
            labels={"variant": "{variant}", "task": "{task}", "run": "{run}"},
        ),
    log:
        OUT.cell_log("evaluate"),
    benchmark:
        OUT.cell_benchmark("evaluate")
    conda:
        "../../envs/glora.yaml"
    threads: config["resources"]["threads"]
    resources:
        gpu=GPU,
        mem_mb=config["resources"]["mem_mb"],
        runtime=runtime("evaluate"),
    params:
        opts=OPTS,
        targets=lambda w: plan.eval_targets(config, w.exp),
        supernet=lambda w, input: (
            f"--supernet {input.weights}"
            if config["evaluate"]["supernet_check"] and plan.merged_from_supernet(config, w.variant)
            else ""
        ),
        swin=lambda w: plan.backbone_args(config, w.exp),
    shell:
        "python -m glora evaluate {params.opts} {params.swin} --model {input.model} {params.supernet} {params.targets}"
        " --out {output} --threads {threads} > {log} 2>&1"
