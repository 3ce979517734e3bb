# Evolutionary search (appendix B) of each GLoRA supernet on the validation split, under its size's cap.


rule search:
    input:
        weights=rules.train.output.weights,
    output:
        best=report(
            OUT.pattern("search", "best.json"),
            caption="../report/search.rst",
            category="Search",
            subcategory="{exp}",
            labels={"variant": "{variant}", "task": "{task}", "run": "{run}"},
        ),
        candidates=OUT.pattern("search", "candidates.csv"),
    log:
        OUT.cell_log("search"),
    benchmark:
        OUT.cell_benchmark("search")
    priority: 1  # a supernet's run goes on as soon as it is trained
    conda:
        "../../envs/glora.yaml"
    threads: config["resources"]["threads"]
    resources:
        gpu=GPU,
        mem_mb=config["resources"]["mem_mb"],
        runtime=runtime("search"),
    params:
        opts=OPTS,
        args=job_args,
        settings=lambda w: {**config["search"], **plan.size_params(config, w.variant)},
        out=lambda w, output: os.path.dirname(output.best),
    shell:
        "python -m glora search {params.opts} {params.args} --weights {input.weights} --out {params.out}"
        " --threads {threads} > {log} 2>&1"
