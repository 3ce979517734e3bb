# Supernet (GLoRA) and baseline training: one job per (experiment, variant, task, run).


rule train:
    input:
        data_inputs,
    output:
        weights=OUT.pattern("train", "weights.safetensors"),
        metrics=OUT.pattern("train", "metrics.json"),
        epochs=report(
            OUT.pattern("train", "epochs.csv"),
            caption="../report/train.rst",
            category="Training",
            subcategory="{exp}",
            labels={"variant": "{variant}", "task": "{task}", "run": "{run}"},
        ),
    log:
        OUT.cell_log("train"),
    benchmark:
        OUT.cell_benchmark("train")
    priority: lambda w: plan.train_priority(config, w.variant)
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
        settings=lambda w: plan.train_params(config, w.exp, w.variant, w.task, w.run),
        out=lambda w, output: os.path.dirname(output.weights),
    shell:
        "python -m glora train {params.opts} {params.args} --out {params.out} --threads {threads} > {log} 2>&1"
