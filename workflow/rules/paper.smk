# The paper's tables from every result of the run (results/<name>/tables/: CSV, Markdown, LaTeX).


rule tables:
    input:
        plan.result_targets(config),
    output:
        report(
            directory(OUT.tables),
            patterns=["{name}.html"],
            caption="../report/tables.rst",
            category="Tables",
            labels={"table": "{name}"},
        ),
    log:
        OUT.log("tables"),
    conda:
        "../../envs/glora.yaml"
    params:
        opts=OPTS,
    shell:
        "python -m glora tables {params.opts} --out {output} > {log} 2>&1"


rule figures:
    input:
        plan.result_targets(config),
    output:
        report(
            directory(OUT.figures),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
            labels={"figure": "{name}"},
        ),
    log:
        OUT.log("figures"),
    conda:
        "../../envs/glora.yaml"
    params:
        opts=OPTS,
    shell:
        "python -m glora figures {params.opts} --out {output} > {log} 2>&1"


# Every cell of the tables minus the paper's (mini suite: minus the golden tables committed in config/golden/).
# `python -m glora compare --strict` exits 1 when a cell is outside its tolerance: what a CI job runs.
rule compare:
    input:
        rules.tables.output,
    output:
        deltas=f"{OUT.compare}/deltas.csv",
        summary=report(f"{OUT.compare}/summary.md", caption="../report/compare.rst", category="Comparison"),
    log:
        OUT.log("compare"),
    conda:
        "../../envs/glora.yaml"
    params:
        opts=OPTS,
        out=lambda w, output: os.path.dirname(output.deltas),
        settings=lambda w: config["compare"],
    shell:
        "python -m glora compare {params.opts} --tables {input} --out {params.out} > {log} 2>&1"
