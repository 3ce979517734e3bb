# Table 5 in the making (train.supernet_lr_grid): GLoRA's supernet learning rate of each VTAB task, chosen on
# val200 among the grid's runs (<run>_lr<rate>: a supernet and a search each); the chosen run's train and search
# outputs become the run's own, so export and evaluation read it like any other.


ruleorder: select_lr > train
ruleorder: select_lr > search


rule select_lr:
    input:
        candidates=lambda w: [
            job.path(config, "search", "best.json")
            for job in plan.lr_candidates(config, plan.Job(w.exp, w.variant, w.task, w.run))
        ],
        supernets=lambda w: [
            job.path(config, "train", "weights.safetensors")
            for job in plan.lr_candidates(config, plan.Job(w.exp, w.variant, w.task, w.run))
        ],
    output:
        weights=OUT.pattern("train", "weights.safetensors"),
        metrics=OUT.pattern("train", "metrics.json"),
        epochs=OUT.pattern("train", "epochs.csv"),
        best=OUT.pattern("search", "best.json"),
        candidates=OUT.pattern("search", "candidates.csv"),
        record=OUT.pattern("select"),
    log:
        OUT.cell_log("select"),
    wildcard_constraints:
        exp="vtab|swin",
        variant="|".join(plan.grid_variants(config)) or "(?!)",  # no grid: this rule makes nothing
        run=r"(shot\d+_)?seed\d+",
    conda:
        "../../envs/glora.yaml"
    threads: 1
    resources:
        runtime=10,
    params:
        train=lambda w, output: os.path.dirname(output.weights),
        search=lambda w, output: os.path.dirname(output.best),
    shell:
        "python -m glora select --candidates {input.candidates} --train-out {params.train}"
        " --search-out {params.search} --out {output.record} > {log} 2>&1"
