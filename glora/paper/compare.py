"""``python -m glora compare``: every cell of our tables minus the paper's (or, for the mini suite, minus the
golden values committed in the repository), with a tolerance per table.

Writes ``deltas.csv`` (table, row, column, ours, reference, delta, tolerance, status) and ``summary.md`` (cells
within, outside, missing per table). ``status``: ``within`` / ``outside`` the tolerance or ``missing`` (we did not
run it); only cells with a reference value are compared. Parameter counts (``params_m``) must agree to two
decimals whatever the table's tolerance. Table 4 is
compared as throughput ratios to the untouched backbone (the paper's "Full tuning" row), since absolute
images/s depend on the GPU.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from glora.atomic import write_csv, write_text
from glora.paper import reference

#: our table file -> (reference table, how our rows are named in it)
TABLES = {"table1_vtab": "table1", "table6_vtab_swin": "table6", "table4_efficiency": "table4"}
ROW_ALIASES = {"table4": {"Backbone (untouched)": "Full tuning", "VPT-Deep": "VPT"},
               "table6": {}, "table1": {}}
#: parameter counts (millions) agree when they print the same with two decimals
PARAMS_TOLERANCE = 0.005
FIELDS = ["table", "row", "column", "ours", "reference", "delta", "tolerance", "status"]


def _numeric(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]


def _table4_ratios(df: pd.DataFrame, base_row: str) -> pd.DataFrame:
    """Throughput columns as ratios to ``base_row``; our ``relative_bs*`` columns renamed likewise."""
    df = df.copy()
    if "throughput_bs1" in df and base_row in set(df["method"]):
        base = df.set_index("method").loc[base_row]
        for c in [c for c in df.columns if c.startswith("throughput_bs")]:
            df[c.replace("throughput", "relative")] = df[c] / base[c]
    return df[[c for c in df.columns if not c.startswith("throughput_bs")]]


def compare_table(name: str, ours: pd.DataFrame, ref: pd.DataFrame, tolerance: float,
                  paper: bool = True) -> list[dict]:
    """Cells of ``ref`` (rows by ``method``) against ``ours``; one record per reference cell. ``paper``: ``ref``
    is the paper's table (its row names and units), else a golden table in our own format."""
    kind = TABLES.get(name, name)
    if paper:
        aliases = ROW_ALIASES.get(kind, {})
        ours = ours.assign(method=[aliases.get(m, m) for m in ours["method"]])
    if paper and kind == "table4":
        ours, ref = _table4_ratios(ours, "Full tuning"), _table4_ratios(ref, "Full tuning")
    if paper and kind == "table6":  # our group columns are capitalised
        ours = ours.rename(columns={"Natural": "natural", "Specialized": "specialized", "Structured": "structured"})
    ours = ours.drop_duplicates("method").set_index("method")
    records = []
    for _, row in ref.iterrows():
        for column in _numeric(ref):
            expected = row[column]
            if pd.isna(expected):
                continue
            got = ours.at[row["method"], column] if row["method"] in ours.index and column in ours else None
            got = None if got is None or pd.isna(got) else float(got)
            delta = None if got is None else round(got - float(expected), 4)
            allowed = PARAMS_TOLERANCE if column.endswith("params_m") else tolerance
            status = "missing" if got is None else ("within" if abs(delta) <= allowed + 1e-9 else "outside")
            records.append({"table": name, "row": row["method"], "column": column, "ours": got,
                            "reference": float(expected), "delta": delta, "tolerance": allowed, "status": status})
    return records


def references(config: Mapping) -> dict[str, pd.DataFrame] | None:
    """What each of our tables is compared with: the paper (suite ``paper``), else the golden CSVs of the
    configuration (``compare.golden``, a folder committed in the repository); None when that folder is missing."""
    golden = config["compare"].get("golden")
    if golden:
        folder = Path(golden)
        if not folder.is_dir():
            return None
        return {p.stem: pd.read_csv(p) for p in sorted(folder.glob("*.csv"))}
    return {name: reference.load(kind) for name, kind in TABLES.items()}


def run_compare(config: Mapping, tables: str | Path, out: str | Path, *, strict: bool = False) -> pd.DataFrame:
    """Compare every table in ``tables`` that has a reference; write ``out``/deltas.csv and summary.md.

    Without golden tables (``compare.golden`` names a missing folder) the summary says how to write them, and
    with ``strict`` that is an error."""
    tables, out = Path(tables), Path(out)
    tolerance = config["compare"]["tolerance"]
    refs = references(config)
    if refs is None:
        golden = config["compare"]["golden"]
        message = (f"golden tables {golden} do not exist; write them from a trusted run with `python -m glora "
                   f"compare --write-golden {golden}` and commit them")
        if strict:
            raise ValueError(message)
        write_csv(out / "deltas.csv", [], FIELDS)
        write_text(out / "summary.md", f"# Nothing compared\n\n{message}.\n")
        return pd.DataFrame(columns=FIELDS)
    records = []
    for name, ref in refs.items():
        path = tables / f"{name}.csv"
        ours = pd.read_csv(path) if path.is_file() else pd.DataFrame({"method": []})
        records += compare_table(name, ours, ref, tolerance.get(name, tolerance["default"]),
                                 paper=not config["compare"].get("golden"))
    deltas = pd.DataFrame(records, columns=FIELDS)
    write_csv(out / "deltas.csv", records, FIELDS)
    counts = deltas.groupby(["table", "status"]).size().unstack(fill_value=0) if len(deltas) else pd.DataFrame()
    for status in ("within", "outside", "missing"):
        if status not in counts:
            counts[status] = 0
    against = f"the golden tables in {golden}" if (golden := config["compare"].get("golden")) else "the paper"
    lines = [f"# Comparison of '{config.get('name') or config['suite']}' with {against}",
             "", "| table | within | outside | missing | tolerance |", "| --- | --- | --- | --- | --- |"]
    for name in counts.index:
        lines.append(f"| {name} | {counts.at[name, 'within']} | {counts.at[name, 'outside']} | "
                     f"{counts.at[name, 'missing']} | ±{tolerance.get(name, tolerance['default'])} |")
    worst = deltas[deltas["status"] == "outside"].assign(size=lambda d: d["delta"].abs()).nlargest(10, "size")
    if len(worst):
        lines += ["", "Largest differences outside the tolerance:", "", "| table | row | column | ours | reference |",
                  "| --- | --- | --- | --- | --- |"]
        lines += [f"| {r.table} | {r.row} | {r.column} | {r.ours:.4g} | {r.reference:.4g} |"
                  for r in worst.itertuples()]
    write_text(out / "summary.md", "\n".join(lines) + "\n")
    return deltas


def write_golden(tables: str | Path, folder: str | Path) -> list[Path]:
    """Copy the comparable tables of a trusted run into ``folder`` (to be committed as golden values)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in TABLES:
        path = Path(tables) / f"{name}.csv"
        if path.is_file():
            df = pd.read_csv(path)
            if name == "table4_efficiency":  # speed is the machine's; only what the method adds is golden
                df = df[["method", "extra_params_m", "extra_gflops"]]
            write_text(folder / path.name, df.to_csv(index=False))
            written.append(folder / path.name)
    return written
