# Table 5 in the making (train.supernet_lr_grid): GLoRA's supernet learning rate of each VTAB task, chosen on
# val200 among the grid's runs (<run>_lr<rate>: a supernet and a search each); the chosen run's train and search
# outputs become the run's own, so export and evaluation read it like any other.


ruleorder: select_lr > train
ruleorder: select_lr > search


rule select_lr:
    input:
        candidates=lambda w: [job.path(config, "search", "best.json")
                              for job in plan.lr_candidates(config, plan.Job(w.exp, w.variant, w.task, w.run))],
        supernets=lambda w: [job.path(config, "train", "weights.safetensors")
                             for job in plan.lr_candidates(config, plan.Job(w.exp, w.variant, w.task, w.run))],
    output:
        weights=f"{RESULTS}/{{exp}}/train/{{variant}}/{{task}}/{{run}}/weights.safetensors",
        metrics=f"{RESULTS}/{{exp}}/train/{{variant}}/{{task}}/{{run}}/metrics.json",
        epochs=f"{RESULTS}/{{exp}}/train/{{variant}}/{{task}}/{{run}}/epochs.csv",
        best=f"{RESULTS}/{{exp}}/search/{{variant}}/{{task}}/{{run}}/best.json",
        candidates=f"{RESULTS}/{{exp}}/search/{{variant}}/{{task}}/{{run}}/candidates.csv",
        record=f"{RESULTS}/{{exp}}/select/{{variant}}/{{task}}/{{run}}.json",
    wildcard_constraints:
        exp="vtab|swin",
        variant="|".join(plan.grid_variants(config)) or "(?!)",  # no grid: this rule makes nothing
        run=r"(shot\d+_)?seed\d+",
    params:
        train=lambda w, output: os.path.dirname(output.weights),
        search=lambda w, output: os.path.dirname(output.best),
    log:
        f"{RESULTS}/logs/{{exp}}/select/{{variant}}/{{task}}/{{run}}.log",
    threads: 1
    resources:
        runtime=10,
    conda:
        "../../envs/glora.yaml"
    shell:
        "python -m glora select --candidates {input.candidates} --train-out {params.train}"
        " --search-out {params.search} --out {output.record} > {log} 2>&1"
