# The paper's tables from every result of the run (results/<name>/tables/: CSV, Markdown, LaTeX).


rule tables:
    input:
        plan.result_targets(config),
    output:
        directory(f"{RESULTS}/tables"),
    params:
        opts=OPTS,
    log:
        f"{RESULTS}/logs/tables.log",
    conda:
        "../../envs/glora.yaml"
    shell:
        "python -m glora tables {params.opts} --out {output} > {log} 2>&1"
