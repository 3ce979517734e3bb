# Supernet (GLoRA) and baseline training: one job per (experiment, variant, task, run).


rule train:
    input:
        data_inputs,
    output:
        weights=f"{RESULTS}/{{exp}}/train/{{variant}}/{{task}}/{{run}}/weights.safetensors",
        metrics=f"{RESULTS}/{{exp}}/train/{{variant}}/{{task}}/{{run}}/metrics.json",
        epochs=report(f"{RESULTS}/{{exp}}/train/{{variant}}/{{task}}/{{run}}/epochs.csv", caption="../report/train.rst",
                      category="Training", subcategory="{exp}", labels={"variant": "{variant}", "task": "{task}",
                                                                        "run": "{run}"}),
    params:
        opts=OPTS,
        args=job_args,
        settings=lambda w: plan.train_params(config, w.exp, w.variant, w.task, w.run),
        out=lambda w, output: os.path.dirname(output.weights),
    log:
        f"{RESULTS}/logs/{{exp}}/train/{{variant}}/{{task}}/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{exp}}/train/{{variant}}/{{task}}/{{run}}.tsv"
    threads: config["resources"]["threads"]
    priority: lambda w: plan.train_priority(config, w.variant)
    resources:
        gpu=GPU,
        mem_mb=config["resources"]["mem_mb"],
        runtime=runtime("train"),
    conda:
        "../../envs/glora.yaml"
    shell:
        "python -m glora train {params.opts} {params.args} --out {params.out} --threads {threads}"
        " > {log} 2>&1"
