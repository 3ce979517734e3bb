# Mini suite only: pre-train the tiny backbone(s) on the upstream set, the analogue of ImageNet-21k.


rule pretrain:
    input:
        OUT.upstream,
    output:
        OUT.pretrained("{backbone}"),
    log:
        OUT.log("pretrain", "{backbone}"),
    benchmark:
        OUT.benchmark("pretrain", "{backbone}")
    conda:
        "../../envs/glora.yaml"
    threads: config["pretrain"]["threads"]  # fixed: the golden tables depend on the arithmetic
    resources:
        gpu=GPU,
        mem_mb=config["resources"]["mem_mb"],
        runtime=runtime("pretrain"),
    params:
        opts=OPTS,
        settings={k: v for k, v in config["pretrain"].items() if k != "threads"},  # threads: as in every rule
    shell:
        "python -m glora pretrain {params.opts} --set backbone={wildcards.backbone} --data {input}"
        " --out {output} --threads {threads} > {log} 2>&1"
