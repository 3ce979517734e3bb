# NOAH: the subnet its search found, trained again from the pre-trained backbone on the final training split.


rule retrain:
    input:
        data_inputs,
        choices=rules.search.output.best,
    output:
        weights=f"{RESULTS}/{{exp}}/retrain/{{variant}}/{{task}}/{{run}}/weights.safetensors",
        metrics=f"{RESULTS}/{{exp}}/retrain/{{variant}}/{{task}}/{{run}}/metrics.json",
        epochs=f"{RESULTS}/{{exp}}/retrain/{{variant}}/{{task}}/{{run}}/epochs.csv",
    params:
        opts=OPTS,
        args=job_args,
        settings=lambda w: plan.train_params(config, w.exp, w.variant, w.task, retrain=True),
        out=lambda w, output: os.path.dirname(output.weights),
    log:
        f"{RESULTS}/logs/{{exp}}/retrain/{{variant}}/{{task}}/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{exp}}/retrain/{{variant}}/{{task}}/{{run}}.tsv"
    threads: config["resources"]["threads"]
    resources:
        gpu=GPU,
        mem_mb=config["resources"]["mem_mb"],
        runtime=runtime("train"),
    conda:
        "../../envs/glora.yaml"
    shell:
        "python -m glora train {params.opts} {params.args} --choices {input.choices} --out {params.out}"
        " --threads {threads} > {log} 2>&1"
