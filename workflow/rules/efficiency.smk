# Table 4: extra parameters, FLOPs and throughput of every method relative to the untouched backbone.


rule efficiency:
    output:
        table=report(plan.efficiency_table(config), caption="../report/efficiency.rst", category="Table 4"),
        settings=plan.efficiency_table(config).removesuffix(".csv") + ".json",
    params:
        opts=OPTS,
        settings=lambda w: {"efficiency": config["efficiency"], "methods": config["methods"],
                            "backbone": config["backbone"], "glora": config["glora"]},
    log:
        f"{RESULTS}/logs/efficiency.log",
    threads: config["resources"]["threads"]
    resources:
        gpu=GPU,
        mem_mb=config["resources"]["mem_mb"],
        runtime=runtime("evaluate"),
    conda:
        "../../envs/glora.yaml"
    shell:
        "python -m glora efficiency {params.opts} --out {output.table} --threads {threads} > {log} 2>&1"
