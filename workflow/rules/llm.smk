# Table 2: GLoRA (supernet, search, merge) and LoRA on local Hugging Face causal LMs, scored with
# lm-evaluation-harness. Rows: experiments.llm.runs (<model>/<method>_<data>) and experiments.llm.base.

wildcard_constraints:
    model="[A-Za-z0-9_.-]+",
    method="glora|lora",
    data="[A-Za-z0-9_.-]+",


rule llm_mini:
    output:
        directory(f"{RESULTS}/llm/data"),
    log:
        f"{RESULTS}/logs/llm/mini.log",
    conda:
        "../../envs/llm.yaml"
    shell:
        "python -m glora llm-mini --out {output} > {log} 2>&1"


rule llm_train:
    input:
        llm_data,
    output:
        weights=f"{RESULTS}/llm/train/{{model}}/{{method}}_{{data}}/weights.safetensors",
        metrics=f"{RESULTS}/llm/train/{{model}}/{{method}}_{{data}}/metrics.json",
    params:
        opts=LLM_GPU_OPTS,
        model=lambda w: LLM["models"][w.model],
        instructions=lambda w: LLM["instructions"][w.data],
        settings=lambda w: config["llm"],
        out=lambda w, output: os.path.dirname(output.weights),
    log:
        f"{RESULTS}/logs/llm/train/{{model}}/{{method}}_{{data}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/llm/train/{{model}}/{{method}}_{{data}}.tsv"
    threads: config["resources"]["threads"]
    resources:
        gpu=GPU,
        mem_mb=config["resources"]["mem_mb"],
        runtime=runtime("train"),
    conda:
        "../../envs/llm.yaml"
    shell:
        "python -m glora llm-train {params.opts} --method {wildcards.method}"
        " --model {params.model} --data {params.instructions} --out {params.out} --threads {threads} > {log} 2>&1"


rule llm_search:
    input:
        weights=f"{RESULTS}/llm/train/{{model}}/glora_{{data}}/weights.safetensors",
    output:
        best=f"{RESULTS}/llm/search/{{model}}/glora_{{data}}/best.json",
    params:
        opts=LLM_GPU_OPTS,
        model=lambda w: LLM["models"][w.model],
        eval_data=LLM["eval_data"],
        settings=lambda w: config["llm"],
        out=lambda w, output: os.path.dirname(output.best),
    log:
        f"{RESULTS}/logs/llm/search/{{model}}/glora_{{data}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/llm/search/{{model}}/glora_{{data}}.tsv"
    threads: config["resources"]["threads"]
    resources:
        gpu=GPU,
        mem_mb=config["resources"]["mem_mb"],
        runtime=runtime("search"),
    conda:
        "../../envs/llm.yaml"
    shell:
        "python -m glora llm-search {params.opts} --model {params.model}"
        " --weights {input.weights} --eval-data {params.eval_data} --out {params.out} --threads {threads}"
        " > {log} 2>&1"


rule llm_export:
    input:
        unpack(llm_export_inputs),
    output:
        directory(f"{RESULTS}/llm/export/{{model}}/{{method}}_{{data}}"),
    params:
        opts=LLM_OPTS,
        model=lambda w: LLM["models"][w.model],
        choices=lambda w, input: f"--choices {input.choices}" if "choices" in input.keys() else "",
    log:
        f"{RESULTS}/logs/llm/export/{{model}}/{{method}}_{{data}}.log",
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=runtime("export"),
    conda:
        "../../envs/llm.yaml"
    shell:
        "python -m glora llm-export {params.opts} --model {params.model} --weights {input.weights}"
        " {params.choices} --out {output} > {log} 2>&1"


rule llm_evaluate:
    input:
        llm_evaluated_model,
    output:
        f"{RESULTS}/llm/evaluate/{{model}}/{{row}}.json",
    params:
        opts=LLM_GPU_OPTS,
        model=lambda w, input: LLM["models"][w.model] if w.row == "base" else input[0],  # the exported folder
        eval_data=LLM["eval_data"],
        settings=lambda w: config["llm"].get("evaluate", {}),
    log:
        f"{RESULTS}/logs/llm/evaluate/{{model}}/{{row}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/llm/evaluate/{{model}}/{{row}}.tsv"
    wildcard_constraints:
        row=r"base|(glora|lora)_[A-Za-z0-9_.-]+",
    threads: config["resources"]["threads"]
    resources:
        gpu=GPU,
        mem_mb=config["resources"]["mem_mb"],
        runtime=runtime("evaluate"),
    conda:
        "../../envs/llm.yaml"
    shell:
        "python -m glora llm-evaluate {params.opts} --model {params.model}"
        " --eval-data {params.eval_data} --out {output} --threads {threads} > {log} 2>&1"
