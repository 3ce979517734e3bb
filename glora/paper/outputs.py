"""``python -m glora tables`` and ``figures``: the paper's outputs from a run's results (``results/<name>/``).

Tables: 1 (VTAB-1K, ViT), 2 (LLMs: the paper's rows and ours), 3 (domain generalisation), 4 (inference
efficiency), 5 (learning rates), 6 (VTAB-1K, Swin), and appendix E's search-space size. Every table says which
run produced it (configuration name, commits, dates); cells that were not run are marked "–". Figures: 2-6
(:mod:`glora.paper.figures`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from glora.data.tasks import experiment_tasks
from glora.layout import Layout
from glora.paper.collect import evaluations
from glora.paper.render import write_table
from glora.paper.tables import (
    GROUP_COLUMNS,
    display_name,
    domain_generalization_table,
    efficiency_table,
    learning_rates,
    llm_results,
    llm_table,
    search_space_table,
    vtab_groups,
    vtab_table,
    weight_sharing_table,
)


def _provenance(config: Mapping, evals) -> str:
    """Which run a table comes from: the configuration and the commits of its results (no dates: the same results
    give the same table files; when each job ran is in results/<name>/logs and benchmarks)."""
    commits = sorted({c for c in evals.get("commit", []) if isinstance(c, str)}) if len(evals) else []
    return (f"Run: configuration '{config.get('name') or config['suite']}' (suite {config['suite']}, backbone "
            f"{config['backbone']}); commits {', '.join(c[:12] for c in commits) or '– (no runs yet)'}.")


def run_tables(config: Mapping, results: str | Path, out: str | Path) -> list[Path]:
    """Write every table the run's results allow; returns the files written."""
    from glora.methods.registry import METHODS

    results, out, written = Path(results), Path(out), []
    group_cols = list(GROUP_COLUMNS.values())
    for exp, key, name, caption in (
            ("vtab", "vtab", "table1_vtab", "Table 1: VTAB-1K top-1 (%)"),
            ("swin", "swin", "table6_vtab_swin", "Table 6: VTAB-1K top-1 (%) with Swin")):
        if not config["experiments"][key]["enabled"]:
            continue
        evals = evaluations(results, exp)
        groups = vtab_groups(config, experiment_tasks(config, key))
        table = vtab_table(evals, groups)
        notes = [_provenance(config, evals),
                 "Average: the mean of the group means (Natural, Specialized, Structured), as in the paper; "
                 "mean_all: the plain mean over the tasks. params_m: trainable parameters in millions, head "
                 "excluded, mean over tasks. –: not run."]
        shown = set(evals["method"]) if len(evals) else set()
        notes += [f"{display_name(m, m)}: {METHODS[m].param_note}." for m in METHODS
                  if m in shown and METHODS[m].param_note]
        written += write_table(table, out / name, caption=caption, notes=notes,
                               bold_max=[*groups, *group_cols, "average", "mean_all"],
                               column_digits={"params_m": 2 if config["suite"] == "paper" else 4})
    spec = config["experiments"]["domain_generalization"]
    if spec["enabled"]:
        evals = evaluations(results, "dg")
        table = domain_generalization_table(evals, list(spec["targets"]), spec["source"])
        written += write_table(table, out / "table3_domain_generalization",
                               caption="Table 3: domain generalisation, top-1 (%) on the 16-shot source and the "
                                       "shifted test sets", notes=[_provenance(config, evals)],
                               bold_max=[spec["source"], *spec["targets"]],
                               column_digits={"params_m": 2 if config["suite"] == "paper" else 4})
    from glora.paper.reference import load

    ours = llm_results(results) if config["experiments"]["llm"]["enabled"] else None
    done = ours is not None and len(ours) > 0
    rows = ("source 'ours': this run (experiments.llm). " if done else "Our LLM runs are not in this run "
            "(experiments.llm.enabled is false): every row is the paper's. ")
    written += write_table(llm_table(load("table2"), ours), out / "table2_llm",
                           caption="Table 2: LLaMA fine-tuned on Alpaca / ShareGPT, Open LLM Leaderboard scores (%)",
                           notes=[_provenance(config, ours if done else []),
                                  rows + "ARC 25-shot acc_norm, HellaSwag 10-shot acc_norm, MMLU 5-shot acc (mean "
                                  "over subjects), TruthfulQA 0-shot mc2; average of the four."])
    csv = Path(Layout.of(config).efficiency_table)
    if csv.is_file():
        table = efficiency_table(csv)
        written += write_table(table, out / "table4_efficiency", caption="Table 4: inference efficiency",
                               notes=[f"Measured by `python -m glora efficiency` ({csv}); compare the relative_bs* "
                                      "ratios (to the untouched backbone) with the paper's, not the absolute "
                                      "images/s (an NVIDIA 3090 in the paper)."], digits=3)
    tasks = list(vtab_groups(config, experiment_tasks(config, "vtab")))
    grid = config["train"]["supernet_lr_grid"]
    how = (f"Chosen per task on val200 from {', '.join(f'{lr:g}' for lr in grid)} (train.supernet_lr_grid): the rate "
           "whose searched subnet scores best on val200 (val200_lr*: that score, %); never a test score." if grid
           else f"From the configuration '{config.get('name') or config['suite']}' as run.")
    written += write_table(learning_rates(config, tasks), out / "table5_learning_rates",
                           caption="Table 5: learning rate per task (GLoRA's supernets)", notes=[how],
                           digits=6)
    if config["diagnostics"]["weight_sharing"]:
        written += write_table(weight_sharing_table(results), out / "weight_sharing",
                               caption="Diagnostic: GLoRA's searched subnet with the supernet's weights (inherited) "
                                       "and trained alone, top-1 (%)",
                               notes=["alone: fresh support tensors, the searched choices fixed, trained on train800 "
                                      "(as the supernet) at the supernet's learning rate for train.baseline_epochs; "
                                      "test_delta = alone_test - inherited_test. Not in the paper."],
                               bold_max=[], column_digits={"lr": 6, "params_m": 4})
    backbones = {"vtab": config["backbone"]}
    if config["experiments"]["swin"]["enabled"]:
        backbones["swin"] = config["experiments"]["swin"]["backbone"]
    written += write_table(search_space_table(backbones, config["glora"]["sizes"]), out / "appendixE_search_space",
                           caption="Appendix E: size of the GLoRA search space",
                           notes=["subnets: the product over the adapted layers of each layer's option count "
                                  "(Eq. 11), exact; appendix E prints the product of the two numbers instead."],
                           column_digits={"log10_subnets": 1})
    return written


def run_figures(config: Mapping, results: str | Path, out: str | Path) -> list[Path]:
    """Write every figure the run's results allow (Figures 2-6); returns the files written."""
    from glora.config import glora_size
    from glora.paper.figures import figure2, figure3, figure4, figure5, searched_choices
    from glora.paper.reference import load

    results, out, written = Path(results), Path(out), []
    if config["experiments"]["fewshot"]["enabled"]:
        evals = evaluations(results, "fewshot")
        if len(evals):
            reference = load("figure2") if config["suite"] == "paper" else None
            written += figure2(evals, out, reference)
    groups = vtab_groups(config, experiment_tasks(config, "vtab"))
    choices = searched_choices(results, "vtab")
    choices = choices[choices["task"].isin(groups)]  # the configured tasks only
    if len(choices):
        ranks = {v: glora_size(config, v)["ranks"] for v in choices["variant"].unique()}
        written += figure3(choices, groups, config["backbone"], ranks, out)
        written += figure4(choices, out)
    task, methods = config["figures"]["tsne_task"], config["figures"]["tsne_variants"]
    exported = [v for v in methods
                if (results / "vtab" / "export" / v / task / "seed0" / "model.safetensors").is_file()]
    if len(exported) == len(methods):
        written += figure5(config, results, task, exported, out, config["figures"]["tsne_images"])
    return written


def where(config: Mapping) -> str:
    """What a user reads after a run: Table 1, the comparison's counts, and where the outputs are."""
    import pandas as pd

    layout = Layout.of(config)
    root = Path(layout.root)
    lines = []
    table1 = Path(layout.tables) / "table1_vtab.md"
    if table1.is_file():
        lines += [table1.read_text().strip(), ""]
    deltas = Path(layout.compare) / "deltas.csv"
    if deltas.is_file():
        counts = pd.read_csv(deltas)["status"].value_counts()
        against = config["compare"].get("golden") or "the paper"
        lines.append(f"Compared with {against}: {counts.get('within', 0)} cells within the tolerance, "
                     f"{counts.get('outside', 0)} outside, {counts.get('missing', 0)} missing "
                     f"({Path(layout.compare) / 'summary.md'}).")
    outputs = [("tables (CSV, Markdown, LaTeX, HTML)", Path(layout.tables)),
               ("figures (PNG, PDF)", Path(layout.figures)),
               ("report (tables, figures, training curves)", Path(layout.report)),
               ("what each output is in the paper", Path("results/README.md"))]
    lines += [f"{what:45s} {path}" for what, path in outputs if path.exists()]
    return "\n".join(lines) if lines else f"nothing in {root} yet: run the workflow first"
