# Evolutionary search (appendix B) of each GLoRA supernet on the validation split, under its size's cap.


rule search:
    input:
        weights=rules.train.output.weights,
    output:
        best=report(f"{RESULTS}/{{exp}}/search/{{variant}}/{{task}}/{{run}}/best.json", caption="../report/search.rst",
                    category="Search", subcategory="{exp}", labels={"variant": "{variant}", "task": "{task}",
                                                                    "run": "{run}"}),
        candidates=f"{RESULTS}/{{exp}}/search/{{variant}}/{{task}}/{{run}}/candidates.csv",
    params:
        opts=OPTS,
        args=job_args,
        settings=lambda w: {**config["search"], **plan.size_params(config, w.variant)},
        out=lambda w, output: os.path.dirname(output.best),
    log:
        f"{RESULTS}/logs/{{exp}}/search/{{variant}}/{{task}}/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{exp}}/search/{{variant}}/{{task}}/{{run}}.tsv"
    threads: config["resources"]["threads"]
    priority: 1  # a supernet's run goes on as soon as it is trained
    resources:
        gpu=GPU,
        mem_mb=config["resources"]["mem_mb"],
        runtime=runtime("search"),
    conda:
        "../../envs/glora.yaml"
    shell:
        "python -m glora search {params.opts} {params.args} --weights {input.weights} --out {params.out}"
        " --threads {threads} > {log} 2>&1"
