# Table 2: GLoRA (supernet, search, merge) and LoRA on local Hugging Face causal LMs, scored with
# lm-evaluation-harness. Rows: experiments.llm.runs (<model>/<method>_<data>) and experiments.llm.base.


wildcard_constraints:
    model="[A-Za-z0-9_.-]+",
    method="glora|lora",
    data="[A-Za-z0-9_.-]+",


rule llm_mini:
    output:
        directory(OUT.llm_data),
    log:
        OUT.log("llm", "mini"),
    conda:
        "../../envs/llm.yaml"
    shell:
        "python -m glora llm-mini --out {output} > {log} 2>&1"


rule llm_train:
    input:
        llm_data,
    output:
        weights=OUT.llm("train", "{model}", "{method}_{data}", "weights.safetensors"),
        metrics=OUT.llm("train", "{model}", "{method}_{data}", "metrics.json"),
    log:
        OUT.log("llm", "train", "{model}", "{method}_{data}"),
    benchmark:
        OUT.benchmark("llm", "train", "{model}", "{method}_{data}")
    conda:
        "../../envs/llm.yaml"
    threads: config["resources"]["threads"]
    resources:
        gpu=GPU,
        mem_mb=config["resources"]["mem_mb"],
        runtime=runtime("train"),
    params:
        opts=LLM_GPU_OPTS,
        model=lambda w: LLM["models"][w.model],
        instructions=lambda w: LLM["instructions"][w.data],
        settings=lambda w: config["llm"],
        out=lambda w, output: os.path.dirname(output.weights),
    shell:
        "python -m glora llm-train {params.opts} --method {wildcards.method}"
        " --model {params.model} --data {params.instructions} --out {params.out} --threads {threads} > {log} 2>&1"


rule llm_search:
    input:
        weights=OUT.llm("train", "{model}", "glora_{data}", "weights.safetensors"),
    output:
        best=OUT.llm("search", "{model}", "glora_{data}", "best.json"),
    log:
        OUT.log("llm", "search", "{model}", "glora_{data}"),
    benchmark:
        OUT.benchmark("llm", "search", "{model}", "glora_{data}")
    conda:
        "../../envs/llm.yaml"
    threads: config["resources"]["threads"]
    resources:
        gpu=GPU,
        mem_mb=config["resources"]["mem_mb"],
        runtime=runtime("search"),
    params:
        opts=LLM_GPU_OPTS,
        model=lambda w: LLM["models"][w.model],
        eval_data=LLM["eval_data"],
        settings=lambda w: config["llm"],
        out=lambda w, output: os.path.dirname(output.best),
    shell:
        "python -m glora llm-search {params.opts} --model {params.model}"
        " --weights {input.weights} --eval-data {params.eval_data} --out {params.out} --threads {threads}"
        " > {log} 2>&1"


rule llm_export:
    input:
        unpack(llm_export_inputs),
    output:
        directory(OUT.llm("export", "{model}", "{method}_{data}")),
    log:
        OUT.log("llm", "export", "{model}", "{method}_{data}"),
    conda:
        "../../envs/llm.yaml"
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=runtime("export"),
    params:
        opts=LLM_OPTS,
        model=lambda w: LLM["models"][w.model],
        choices=lambda w, input: f"--choices {input.choices}" if "choices" in input.keys() else "",
    shell:
        "python -m glora llm-export {params.opts} --model {params.model} --weights {input.weights}"
        " {params.choices} --out {output} > {log} 2>&1"


rule llm_evaluate:
    input:
        llm_evaluated_model,
    output:
        OUT.llm("evaluate", "{model}", "{row}"),
    log:
        OUT.log("llm", "evaluate", "{model}", "{row}"),
    benchmark:
        OUT.benchmark("llm", "evaluate", "{model}", "{row}")
    wildcard_constraints:
        row=r"base|(glora|lora)_[A-Za-z0-9_.-]+",
    conda:
        "../../envs/llm.yaml"
    threads: config["resources"]["threads"]
    resources:
        gpu=GPU,
        mem_mb=config["resources"]["mem_mb"],
        runtime=runtime("evaluate"),
    params:
        opts=LLM_GPU_OPTS,
        model=lambda w, input: LLM["models"][w.model] if w.row == "base" else input[0],  # the exported folder
        eval_data=LLM["eval_data"],
        settings=lambda w: config["llm"].get("evaluate", {}),
    shell:
        "python -m glora llm-evaluate {params.opts} --model {params.model}"
        " --eval-data {params.eval_data} --out {output} --threads {threads} > {log} 2>&1"
