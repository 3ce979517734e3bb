"""The paper's tables from a run's results, as pandas DataFrames (one row per method, as in the paper).

Table 1 (and Table 6 on Swin-B): top-1 per VTAB task (mean over seeds), the trainable parameters in millions
(mean over tasks, head excluded), the inference cost ("none" when merged into the backbone), the three group
means, their mean (the paper's "Average") and the plain mean over the tasks. Table 4: Table 4's columns from
``python -m glora efficiency``, throughput also as a ratio to the untouched backbone. Table 5: the learning rate
of every task from the configuration that was run. Appendix E: the exact size of each GLoRA search space.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from glora.errors import ConfigError
from glora.layout import Layout
from glora.methods.registry import METHODS

GROUP_COLUMNS = {"natural": "Natural", "specialized": "Specialized", "structured": "Structured"}


def display_name(variant: str, method: str) -> str:
    """How the paper names a row: the method record's display name; a GLoRA size ``glora_0.86M`` becomes
    ``GLoRA-0.86M``."""
    if method == "glora":
        size = variant.removeprefix("glora_").removeprefix("glora")
        return f"GLoRA-{size}" if size else "GLoRA"
    return METHODS[method].display if method in METHODS else variant


def _order(method: str) -> int:
    names = list(METHODS)
    return names.index(method) if method in names else len(names)


def vtab_groups(config: Mapping, tasks: list[str] | None) -> dict[str, str]:
    """Task -> VTAB group: from the data's suite.json when present, else the mini suite's or the paper's tasks."""
    from glora.data.tasks import MINI_TASKS, VTAB_TASKS
    from glora.data.vtab import vtab_tasks

    known = {**MINI_TASKS, **VTAB_TASKS}
    if Path(config["paths"]["vtab"]).is_dir():
        known.update(vtab_tasks(config["paths"]["vtab"]))
    names = tasks or list(VTAB_TASKS)
    unknown = [t for t in names if t not in known]
    if unknown:
        raise ConfigError(f"no VTAB group known for task(s) {unknown}: declare them in {config['paths']['vtab']}"
                          "/suite.json")
    return {t: known[t].group for t in names}


def vtab_table(evals: pd.DataFrame, groups: Mapping[str, str]) -> pd.DataFrame:
    """Table 1 / Table 6 from :func:`glora.paper.collect.evaluations`: ``groups`` maps each task (column, in
    order) to natural / specialized / structured. Missing cells (not run) are NaN."""
    tasks = list(groups)
    if evals.empty:
        return pd.DataFrame(columns=["method", "params_m", "inference_cost", *tasks])
    mean = evals.groupby(["variant", "method", "task"], as_index=False).agg(
        top1=("top1", "mean"), params=("adapter_params", "mean"), merged=("merged", "all"))
    rows = []
    for (variant, method), part in mean.groupby(["variant", "method"], sort=False):
        acc = part.set_index("task")["top1"]
        row = {"method": display_name(variant, method), "variant": variant,
               "params_m": round(part["params"].mean() / 1e6, 4),
               "inference_cost": "none" if part["merged"].all() else "extra",
               **{t: acc.get(t) for t in tasks}}
        present = {g: [acc[t] for t in tasks if groups[t] == g and t in acc] for g in GROUP_COLUMNS}
        complete = all(t in acc for t in tasks)
        for g, name in GROUP_COLUMNS.items():
            values = present[g]
            row[name] = sum(values) / len(values) if values and len(values) == list(groups.values()).count(g) \
                else None
        group_means = [row[n] for g, n in GROUP_COLUMNS.items() if g in groups.values()]
        row["average"] = sum(group_means) / len(group_means) if complete and group_means else None
        row["mean_all"] = sum(acc[t] for t in tasks) / len(tasks) if complete else None
        rows.append((_order(method), row))
    table = pd.DataFrame([r for _, r in sorted(rows, key=lambda x: x[0])])
    return table.drop(columns=["variant"])


def efficiency_table(path: str | Path) -> pd.DataFrame:
    """Table 4 from ``table4_efficiency.csv``: extra parameters (M), extra GFLOPs, images/s per batch size and
    the ratio to the untouched backbone."""
    df = pd.read_csv(path)
    df["method"] = [display_name(m, m) if m != "backbone" else "Backbone (untouched)" for m in df["method"]]
    keep = ["method", "merged", "extra_params_m", "extra_gflops",
            *[c for c in df.columns if c.startswith(("throughput_bs", "relative_bs"))]]
    return df[keep]


def learning_rates(config: Mapping, tasks: list[str], grid: bool = True) -> pd.DataFrame:
    """Table 5: the learning rate of each task's GLoRA supernet. From ``config`` when the rate is fixed; with
    ``train.supernet_lr_grid``, the rate chosen on val200 (``results``' select records of the first GLoRA size
    in experiments.vtab, under the run's results folder), with each rate's val200 top-1 (%) of the searched
    subnet beside it. ``grid=False``: the configured rates only."""
    import json

    from glora.config import train_settings
    from glora.workflow import Job, grid_variants

    variants = grid_variants(config)
    if not variants or not grid:
        return pd.DataFrame([{"task": t, "lr": train_settings(config, "glora", t)["lr"]} for t in tasks])
    grid = config["train"]["supernet_lr_grid"]
    rows = []
    for task in tasks:
        path = Path(Job("vtab", variants[0], task, "seed0").path(config, "select"))
        record = json.loads(path.read_text()) if path.is_file() else {"grid": []}
        scores = {row["lr"]: row["val_acc"] for row in record["grid"]}
        rows.append({"task": task, "lr": record.get("lr"),
                     **{f"val200_lr{lr:g}": 100 * scores[lr] if lr in scores else None for lr in grid}})
    return pd.DataFrame(rows)


def weight_sharing_table(results: str | Path) -> pd.DataFrame:
    """The weight-sharing diagnostic (``diagnostics.weight_sharing``): per GLoRA size and VTAB task, the searched
    subnet's val200 / test top-1 with the supernet's weights (inherited) and trained alone, and their difference;
    a mean row per size."""
    import json

    rows = []
    for path, variant, task, run in Layout(str(results)).cells("vtab", "standalone"):
        if not run.startswith("seed"):
            continue
        r = json.loads(path.read_text())
        rows.append({"method": display_name(variant, "glora"), "task": task, "lr": r["settings"]["lr"],
                     "params_m": round(r["params"] / 1e6, 4), "inherited_val200": r["inherited"]["val200"],
                     "alone_val200": r["alone"]["val200"], "inherited_test": r["inherited"]["test"],
                     "alone_test": r["alone"]["test"], "test_delta": r["test_delta"]})
    columns = ["method", "task", "lr", "params_m", "inherited_val200", "alone_val200", "inherited_test",
               "alone_test", "test_delta"]
    table = pd.DataFrame(rows, columns=columns)
    if not len(table):
        return table
    means = [{"method": method, "task": "mean", **part[columns[3:]].mean().round(4).to_dict()}
             for method, part in table.groupby("method", sort=False)]
    return pd.concat([table, pd.DataFrame(means, columns=columns)], ignore_index=True)


def domain_generalization_table(evals: pd.DataFrame, targets: list[str], source: str) -> pd.DataFrame:
    """Table 3: top-1 on the 16-shot source (``source``) and on each shifted target, mean over seeds."""
    columns = ["method", "params_m", source, *targets]
    if evals.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for (variant, method), part in evals.groupby(["variant", "method"], sort=False):
        row = {"method": display_name(variant, method), "params_m": round(part["adapter_params"].mean() / 1e6, 4),
               source: part["top1"].mean()}
        row.update({t: part[f"target_{t}"].mean() if f"target_{t}" in part else None for t in targets})
        rows.append((_order(method), row))
    return pd.DataFrame([r for _, r in sorted(rows, key=lambda x: x[0])], columns=columns)


LLM_MODELS = {"llama1_7b": "LLaMA-1-7B", "llama2_7b": "LLaMA-2-7B"}
LLM_DATA = {"alpaca": "Alpaca", "sharegpt": "ShareGPT"}
LLM_COLUMNS = {"arc": "arc_25shot", "hellaswag": "hellaswag_10shot", "mmlu": "mmlu_5shot",
               "truthfulqa": "truthfulqa_0shot", "average": "average"}


def llm_results(results: str | Path) -> pd.DataFrame:
    """Our Table 2 rows from ``results/<name>/llm/evaluate/<model>/<row>.json`` (``row``: ``base`` or
    ``<method>_<data>``), scores in % as the paper prints them, with the commit of each result."""
    import json

    rows = []
    for path, model, row in Layout(str(results)).llm_cells():
        result = json.loads(path.read_text())
        scores, provenance = result["scores"], result.get("provenance", {})
        method, _, data = row.partition("_")
        rows.append({"model": LLM_MODELS.get(model, model), "method": {"glora": "GLoRA", "lora": "LoRA"}.get(
            method, method), "dataset": LLM_DATA.get(data, data) or None,
            **{col: 100 * scores[key] for key, col in LLM_COLUMNS.items()}, "source": "ours",
            "commit": provenance.get("git_commit")})
    return pd.DataFrame(rows, columns=["model", "method", "dataset", *LLM_COLUMNS.values(), "source", "commit"])


def llm_table(reference: pd.DataFrame, ours: pd.DataFrame | None = None) -> pd.DataFrame:
    """Table 2: the paper's rows (source "paper") and ours (source "ours"), base model first, then by model."""
    paper = reference.assign(source="paper")
    if ours is None or not len(ours):
        return paper.reset_index(drop=True)
    return pd.concat([paper, ours[list(paper.columns)]], ignore_index=True)


def search_space_table(backbones: Mapping[str, str], sizes: list[Mapping]) -> pd.DataFrame:
    """Appendix E: the size of each GLoRA search space (``backbones``: experiment label -> backbone name).

    The number of subnets is the product over the adapted layers of each layer's option count (Eq. 11): 432^48
    for ViT-B/16 with one rank. Appendix E prints 432 × 48, the product of the two numbers; that formula is kept
    beside ours (``appendix_E_formula``). The models are built on the meta device: no weights, no memory.
    """
    import math
    from collections import Counter

    from glora.methods.glora.model import space_of

    rows = []
    for label, backbone in backbones.items():
        for size in sizes:
            space = space_of(backbone, size["ranks"])
            per_layer = Counter(layer.size() for layer in space.layers.values())
            product = " · ".join(f"{n}^{k}" for n, k in sorted(per_layer.items(), reverse=True))
            top = max(per_layer)
            rows.append({"experiment": label, "backbone": backbone, "glora": size["name"],
                         "ranks": "/".join(str(r) for r in size["ranks"]), "layers": len(space),
                         "options_per_layer": ", ".join(str(n) for n in sorted(per_layer, reverse=True)),
                         "subnets": product, "log10_subnets": math.log10(space.size()),
                         "appendix_E_formula": f"{top} × {len(space)} = {top * len(space)}"})
    return pd.DataFrame(rows)
