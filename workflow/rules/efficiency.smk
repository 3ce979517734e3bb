# Table 4: extra parameters, FLOPs and throughput of every method relative to the untouched backbone.


def whole_machine(wildcards=None):
    """Every core this run schedules. Each job holds at least one core, so no other job runs while Table 4 is
    timed (the stage records the load it saw in the JSON beside the table). torch's threads still come from the
    configuration (params.torch_threads), so the ratios do not depend on the machine's core count. On a cluster
    the profile's set-threads applies: ask for an exclusive node there (workflow/profiles/slurm)."""
    return workflow.resource_settings.cores or 1


rule efficiency:
    output:
        table=report(plan.efficiency_table(config), caption="../report/efficiency.rst", category="Table 4"),
        settings=plan.efficiency_table(config).removesuffix(".csv") + ".json",
    params:
        opts=OPTS,
        settings=lambda w: {"efficiency": config["efficiency"], "methods": config["methods"],
                            "backbone": config["backbone"], "glora": config["glora"]},
        torch_threads=config["resources"]["threads"],
    log:
        f"{RESULTS}/logs/efficiency.log",
    threads: whole_machine()
    resources:
        gpu=GPU,
        mem_mb=config["resources"]["mem_mb"],
        runtime=runtime("evaluate"),
    conda:
        "../../envs/glora.yaml"
    shell:
        "python -m glora efficiency {params.opts} --out {output.table} --threads {params.torch_threads} > {log} 2>&1"
