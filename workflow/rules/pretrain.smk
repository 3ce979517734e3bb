# Mini suite only: pre-train the tiny backbone(s) on the upstream set, the analogue of ImageNet-21k.


rule pretrain:
    input:
        f"{RESULTS}/upstream",
    output:
        f"{RESULTS}/pretrain/{{backbone}}.safetensors",
    params:
        opts=OPTS,
        settings={k: v for k, v in config["pretrain"].items() if k != "threads"},  # threads: as in every rule
    log:
        f"{RESULTS}/logs/pretrain/{{backbone}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/pretrain/{{backbone}}.tsv"
    threads: config["pretrain"]["threads"]  # fixed: the golden tables depend on the arithmetic
    resources:
        gpu=GPU,
        mem_mb=config["resources"]["mem_mb"],
        runtime=runtime("pretrain"),
    conda:
        "../../envs/glora.yaml"
    shell:
        "python -m glora pretrain {params.opts} --set backbone={wildcards.backbone} --data {input}"
        " --out {output} --threads {threads} > {log} 2>&1"
