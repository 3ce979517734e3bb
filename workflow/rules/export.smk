# Structural re-parameterisation into a plain timm model (safetensors + card), verified before it is written.


rule export:
    input:
        unpack(export_inputs),
    output:
        model=f"{RESULTS}/{{exp}}/export/{{variant}}/{{task}}/{{run}}/model.safetensors",
        card=f"{RESULTS}/{{exp}}/export/{{variant}}/{{task}}/{{run}}/card.json",
    params:
        opts=f"--config {RESOLVED} --quiet --device cpu",
        args=job_args,
        choices=lambda w, input: f"--choices {input.choices}" if "choices" in input.keys() else "",
        out=lambda w, output: os.path.dirname(output.model),
    log:
        f"{RESULTS}/logs/{{exp}}/export/{{variant}}/{{task}}/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{exp}}/export/{{variant}}/{{task}}/{{run}}.tsv"
    threads: 1
    resources:
        runtime=runtime("export"),
    conda:
        "../../envs/glora.yaml"
    shell:
        "python -m glora export {params.opts} {params.args} --weights {input.weights} {params.choices} --out {params.out}"
        " --threads {threads} > {log} 2>&1"
