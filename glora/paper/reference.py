"""The published numbers the regenerated tables are compared with (``glora/paper/reference/*.csv``)."""

from __future__ import annotations

from importlib import resources

import pandas as pd

TABLES = {
    "table1": "table1_vtab1k_vitb.csv", "table2": "table2_llm.csv", "table3": "table3_domain_generalization.csv",
    "table4": "table4_inference_efficiency.csv", "table5": "table5_learning_rates.csv",
    "table6": "table6_vtab1k_swinb.csv", "figure2": "figure2_fewshot_glora.csv",
}


def load(name: str) -> pd.DataFrame:
    """The reference table ``name`` (table1 ... table6, figure2) as transcribed from the paper, with a
    ``source`` column per row."""
    if name not in TABLES:
        raise ValueError(f"no reference table {name!r}; known: {sorted(TABLES)}")
    with resources.files("glora.paper").joinpath("reference", TABLES[name]).open() as f:
        return pd.read_csv(f)
