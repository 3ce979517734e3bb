# Structural re-parameterisation into a plain timm model (safetensors + card), verified before it is written.


rule export:
    input:
        unpack(export_inputs),
    output:
        model=OUT.pattern("export", "model.safetensors"),
        card=OUT.pattern("export", "card.json"),
    log:
        OUT.cell_log("export"),
    benchmark:
        OUT.cell_benchmark("export")
    conda:
        "../../envs/glora.yaml"
    threads: 1
    resources:
        runtime=runtime("export"),
    params:
        opts=f"--config {RESOLVED} --quiet --device cpu",
        args=job_args,
        choices=lambda w, input: f"--choices {input.choices}" if "choices" in input.keys() else "",
        out=lambda w, output: os.path.dirname(output.model),
    shell:
        "python -m glora export {params.opts} {params.args} --weights {input.weights} {params.choices} --out {params.out}"
        " --threads {threads} > {log} 2>&1"
