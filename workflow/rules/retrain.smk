# NOAH: the subnet its search found, trained again from the pre-trained backbone on the final training split.


rule retrain:
    input:
        data_inputs,
        choices=rules.search.output.best,
    output:
        weights=OUT.pattern("retrain", "weights.safetensors"),
        metrics=OUT.pattern("retrain", "metrics.json"),
        epochs=OUT.pattern("retrain", "epochs.csv"),
    log:
        OUT.cell_log("retrain"),
    benchmark:
        OUT.cell_benchmark("retrain")
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
        settings=lambda w: plan.train_params(config, w.exp, w.variant, w.task, retrain=True),
        out=lambda w, output: os.path.dirname(output.weights),
    shell:
        "python -m glora train {params.opts} {params.args} --choices {input.choices} --out {params.out}"
        " --threads {threads} > {log} 2>&1"
