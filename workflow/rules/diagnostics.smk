# diagnostics.weight_sharing: GLoRA's searched subnet trained alone next to the same subnet with the supernet's
# weights, per VTAB task (tables/weight_sharing).


rule standalone:
    input:
        data_inputs,
        supernet=rules.train.output.weights,
        metrics=rules.train.output.metrics,
        choices=rules.search.output.best,
    output:
        OUT.pattern("standalone"),
    log:
        OUT.cell_log("standalone"),
    benchmark:
        OUT.cell_benchmark("standalone")
    conda:
        "../../envs/glora.yaml"
    threads: config["resources"]["threads"]
    resources:
        gpu=GPU,
        mem_mb=config["resources"]["mem_mb"],
        runtime=runtime("train"),
    params:
        opts=OPTS,
        args=job_args,
        settings=lambda w: plan.train_params(config, w.exp, w.variant, w.task, w.run, retrain=True),
    shell:
        "python -m glora standalone {params.opts} {params.args} --supernet {input.supernet}"
        " --choices {input.choices} --out {output} --threads {threads} > {log} 2>&1"
