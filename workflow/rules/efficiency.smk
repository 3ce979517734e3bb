# Table 4: extra parameters, FLOPs and throughput of every method relative to the untouched backbone.


rule efficiency:
    output:
        table=report(OUT.efficiency_table, caption="../report/efficiency.rst", category="Table 4"),
        settings=OUT.efficiency_table.removesuffix(".csv") + ".json",
    log:
        OUT.log("efficiency"),
    conda:
        "../../envs/glora.yaml"
    threads: whole_machine()
    resources:
        gpu=GPU,
        mem_mb=config["resources"]["mem_mb"],
        runtime=runtime("evaluate"),
    params:
        opts=OPTS,
        settings=lambda w: {
            "efficiency": config["efficiency"],
            "methods": config["methods"],
            "backbone": config["backbone"],
            "glora": config["glora"],
        },
        torch_threads=config["resources"]["threads"],
    shell:
        "python -m glora efficiency {params.opts} --out {output.table} --threads {params.torch_threads} > {log} 2>&1"
