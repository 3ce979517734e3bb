"""``python -m glora tables``: the paper's tables from a run's results (``results/<name>/tables/``).

Written so far: Table 1 (VTAB-1K, ViT), Table 4 (inference efficiency), Table 5 (learning rates), Table 6
(VTAB-1K, Swin). Every table says which run produced it (configuration name, commits, dates); cells that were
not run are marked "–".
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from pathlib import Path

from glora.paper.collect import evaluations
from glora.paper.render import write_table
from glora.paper.tables import GROUP_COLUMNS, efficiency_table, learning_rates, vtab_table


def _provenance(config: Mapping, evals) -> str:
    commits = sorted({c for c in evals.get("commit", []) if isinstance(c, str)}) if len(evals) else []
    created = sorted(c for c in evals.get("created", []) if isinstance(c, str)) if len(evals) else []
    span = f"{created[0][:10]} – {created[-1][:10]}" if created else "no runs yet"
    return (f"Run: configuration '{config.get('name') or config['suite']}' (suite {config['suite']}, backbone "
            f"{config['backbone']}); commits {', '.join(c[:12] for c in commits) or '–'}; results dated {span}; "
            f"tables written {datetime.date.today().isoformat()}.")


def _vtab_groups(config: Mapping, tasks: list[str] | None) -> dict[str, str]:
    from glora.data.vtab import vtab_tasks

    known = vtab_tasks(config["paths"]["vtab"]) if Path(config["paths"]["vtab"]).is_dir() else None
    if known is None:
        from glora.data.vtab import VTAB_TASKS as known
    names = tasks or list(known)
    return {t: known[t].group for t in names}


def run_tables(config: Mapping, results: str | Path, out: str | Path) -> list[Path]:
    """Write every table the run's results allow; returns the files written."""
    from glora.methods.registry import METHODS
    from glora.workflow import efficiency_table as efficiency_csv
    from glora.workflow import vtab_tasks

    results, out, written = Path(results), Path(out), []
    group_cols = list(GROUP_COLUMNS.values())
    for exp, key, name, caption in (
            ("vtab", "vtab", "table1_vtab", "Table 1: VTAB-1K top-1 (%)"),
            ("swin", "swin", "table6_vtab_swin", "Table 6: VTAB-1K top-1 (%) with Swin")):
        if not config["experiments"][key]["enabled"]:
            continue
        evals = evaluations(results, exp)
        groups = _vtab_groups(config, vtab_tasks(config, key))
        table = vtab_table(evals, groups)
        notes = [_provenance(config, evals),
                 "Average: the mean of the group means (Natural, Specialized, Structured), as in the paper; "
                 "mean_all: the plain mean over the tasks. params_m: trainable parameters in millions, head "
                 "excluded, mean over tasks. –: not run."]
        shown = set(evals["method"]) if len(evals) else set()
        notes += [f"{m}: {METHODS[m].param_note}." for m in METHODS if m in shown and METHODS[m].param_note]
        written += write_table(table, out / name, caption=caption, notes=notes,
                               bold_max=[*groups, *group_cols, "average", "mean_all"],
                               column_digits={"params_m": 2 if config["suite"] == "paper" else 4})
    csv = Path(efficiency_csv(config))
    if csv.is_file():
        table = efficiency_table(csv)
        written += write_table(table, out / "table4_efficiency", caption="Table 4: inference efficiency",
                               notes=[f"Measured by `python -m glora efficiency` ({csv}); compare the relative_bs* "
                                      "ratios (to the untouched backbone) with the paper's, not the absolute "
                                      "images/s (an NVIDIA 3090 in the paper)."], digits=3)
    tasks = list(_vtab_groups(config, vtab_tasks(config, "vtab")))
    written += write_table(learning_rates(config, tasks), out / "table5_learning_rates",
                           caption="Table 5: learning rate per task (GLoRA)",
                           notes=[f"From the configuration '{config.get('name') or config['suite']}' as run."],
                           digits=6)
    return written
