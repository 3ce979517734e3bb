# The paper's tables from every result of the run (results/<name>/tables/: CSV, Markdown, LaTeX).


rule tables:
    input:
        plan.result_targets(config),
    output:
        report(directory(f"{RESULTS}/tables"), patterns=["{name}.html"], caption="../report/tables.rst",
               category="Tables", labels={"table": "{name}"}),
    params:
        opts=OPTS,
    log:
        f"{RESULTS}/logs/tables.log",
    conda:
        "../../envs/glora.yaml"
    shell:
        "python -m glora tables {params.opts} --out {output} > {log} 2>&1"


rule figures:
    input:
        plan.result_targets(config),
    output:
        report(directory(f"{RESULTS}/figures"), patterns=["{name}.png"], caption="../report/figures.rst",
               category="Figures", labels={"figure": "{name}"}),
    params:
        opts=OPTS,
    log:
        f"{RESULTS}/logs/figures.log",
    conda:
        "../../envs/glora.yaml"
    shell:
        "python -m glora figures {params.opts} --out {output} > {log} 2>&1"


# Every cell of the tables minus the paper's (mini suite: minus the golden tables committed in config/golden/).
# `python -m glora compare --strict` exits 1 when a cell is outside its tolerance: what a CI job runs.
rule compare:
    input:
        rules.tables.output,
    output:
        deltas=f"{RESULTS}/compare/deltas.csv",
        summary=report(f"{RESULTS}/compare/summary.md", caption="../report/compare.rst", category="Comparison"),
    params:
        opts=OPTS,
        out=lambda w, output: os.path.dirname(output.deltas),
        settings=lambda w: config["compare"],
    log:
        f"{RESULTS}/logs/compare.log",
    conda:
        "../../envs/glora.yaml"
    shell:
        "python -m glora compare {params.opts} --tables {input} --out {params.out} > {log} 2>&1"
