# The library tour (until the paper's stages land): train, sample, merge and verify GLoRA.


rule demo:
    output:
        summary="results/demo/summary.json",
        choices="results/demo/choices.json",
        candidates="results/demo/candidates.csv",
        merged="results/demo/merged.safetensors",
    params:
        epochs=config["demo"]["epochs"],
        candidates=config["demo"]["candidates"],
        budget_m=config["demo"]["budget_m"],
        seed=config["demo"]["seed"],
    log:
        "results/logs/demo.log",
    benchmark:
        "results/benchmarks/demo.tsv"
    conda:
        "../../envs/glora.yaml"
    shell:
        "python -m glora demo --out results/demo --epochs {params.epochs} --candidates {params.candidates}"
        " --budget-m {params.budget_m} --seed {params.seed} --quiet > {log} 2>&1"
