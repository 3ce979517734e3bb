"""``python -m glora compare``: every cell of our tables minus the paper's (or, for the mini suite, minus the
golden values committed in the repository), with a tolerance per table.

Writes ``deltas.csv`` (table, row, column, ours, reference, delta, tolerance, status) and ``summary.md`` (cells
within, outside, missing, not run per table). ``status``: ``within`` / ``outside`` the tolerance, ``missing`` (a cell
the configuration's enabled experiments should have filled, absent: :func:`expected_cells`) or ``not run`` (a
reference cell of a method, task or experiment the configuration does not run); only cells with a reference value
are compared. ``--strict`` fails on ``outside`` and ``missing`` cells, listing the missing ones. Parameter counts
(``params_m``) must agree to two decimals whatever the table's tolerance. Tables 1-6 are compared
(:data:`TABLES`): Table 2 by model, method and data; Table 5's learning rates exactly (tolerance 0); Table 4 as
throughput ratios to the untouched backbone (the paper's "Full tuning" row), since absolute images/s depend on
the GPU.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from glora.atomic import write_csv, write_text
from glora.errors import ConfigError
from glora.paper import reference


@dataclass(frozen=True)
class Comparable:
    """How one of our tables is compared: the reference table it is diffed with, the columns that name a row,
    how our row names read in the paper, which of our rows are results (Table 2 also prints the paper's), and
    which columns are golden (None: all). ``reference`` None: a table of ours that the paper does not have (a
    diagnostic), compared with golden tables only."""

    reference: str | None
    keys: tuple[str, ...] = ("method",)
    aliases: Mapping[str, str] = field(default_factory=dict)
    source: str | None = None
    golden_columns: tuple[str, ...] | None = None

    def ours(self, df: pd.DataFrame) -> pd.DataFrame:
        """Our result rows of ``df`` (Table 2: those whose ``source`` is ``ours``)."""
        if self.source is not None:
            df = df[df["source"] == self.source] if "source" in df else df.iloc[:0]
        return df.drop(columns=[c for c in ("source", "commit", "created") if c in df])

    def golden(self, df: pd.DataFrame) -> pd.DataFrame:
        df = self.ours(df)
        return df[list(self.golden_columns)] if self.golden_columns else df


#: our table file -> how it is compared. Table 3's GLoRA is the 0.29M model (the paper's "GLoRA (0.29M)");
#: Table 4's untouched backbone is the paper's "Full tuning" row, its VPT row is VPT-Deep.
TABLES = {
    "table1_vtab": Comparable("table1"),
    "table2_llm": Comparable("table2", keys=("model", "method", "dataset"), source="ours"),
    "table3_domain_generalization": Comparable("table3", aliases={"GLoRA-0.29M": "GLoRA"}),
    "table4_efficiency": Comparable("table4", aliases={"Backbone (untouched)": "Full tuning", "VPT-Deep": "VPT"},
                                    golden_columns=("method", "extra_params_m", "extra_gflops")),
    "table5_learning_rates": Comparable("table5", keys=("task",), golden_columns=("task", "lr")),
    "table6_vtab_swin": Comparable("table6"),
    "weight_sharing": Comparable(None, keys=("method", "task"),  # its lr is Table 5's, compared exactly there
                                 golden_columns=("method", "task", "params_m", "inherited_val200", "alone_val200",
                                                 "inherited_test", "alone_test", "test_delta")),
}
#: parameter counts (millions) agree when they print the same with two decimals
PARAMS_TOLERANCE = 0.005
FIELDS = ["table", "row", "column", "ours", "reference", "delta", "tolerance", "status"]
STATUSES = ("within", "outside", "missing", "not run")


def _row_names(df: pd.DataFrame, keys: tuple[str, ...]) -> list[str]:
    """One name per row: its key columns joined with " / " (empty keys, e.g. a base model's dataset, left out)."""
    if not len(df):
        return []
    parts = df[list(keys)].astype("string").fillna("")
    return [" / ".join(v for v in values if v) for values in parts.itertuples(index=False)]


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
    """Cells of ``ref`` (rows named by the table's key columns) against ``ours``; one record per reference cell.
    ``paper``: ``ref`` is the paper's table (its row names and units), else a golden table in our own format."""
    spec = TABLES.get(name, Comparable(name))
    ours = spec.ours(ours)
    if paper and spec.aliases and "method" in ours:
        ours = ours.assign(method=[spec.aliases.get(m, m) for m in ours["method"]])
    if paper and spec.reference == "table4":
        ours, ref = _table4_ratios(ours, "Full tuning"), _table4_ratios(ref, "Full tuning")
    if paper and spec.reference == "table6":  # our group columns are capitalised
        ours = ours.rename(columns={"Natural": "natural", "Specialized": "specialized", "Structured": "structured"})
    if not set(spec.keys) <= set(ours.columns):
        ours = pd.DataFrame(columns=list(spec.keys))
    ours = ours.assign(_row=_row_names(ours, spec.keys)).drop_duplicates("_row").set_index("_row")
    records = []
    for row_name, (_, row) in zip(_row_names(ref, spec.keys), ref.iterrows()):
        for column in _numeric(ref):
            expected = row[column]
            if pd.isna(expected):
                continue
            got = ours.at[row_name, column] if row_name in ours.index and column in ours else None
            got = None if got is None or pd.isna(got) else float(got)
            delta = None if got is None else round(got - float(expected), 4)
            allowed = PARAMS_TOLERANCE if column.endswith("params_m") else tolerance
            status = "missing" if got is None else ("within" if abs(delta) <= allowed + 1e-9 else "outside")
            records.append({"table": name, "row": row_name, "column": column, "ours": got,
                            "reference": float(expected), "delta": delta, "tolerance": allowed, "status": status})
    return records


def expected_cells(config: Mapping) -> dict[str, tuple[set[str], Callable[[str], bool]]]:
    """``table -> (row names, column test)``: the cells a complete run of ``config`` fills, in our tables' naming,
    for its enabled experiments only (a table absent here, or a row not listed, is not asked for). VTAB tables:
    the configured tasks' columns, the parameter count, the mean of a group that has a configured task, and the
    averages."""
    from glora.data.tasks import GROUPS, experiment_tasks
    from glora.methods.registry import names
    from glora.paper.tables import LLM_DATA, LLM_MODELS, display_name, vtab_groups
    from glora.workflow import method_of, variants

    exps = config["experiments"]

    def every(column: str) -> bool:
        return True

    def rows(key: str) -> set[str]:
        return {display_name(v, method_of(config, v)[0]) for v in variants(config, exps[key]["methods"])}

    def vtab_columns(key: str) -> Callable[[str], bool]:
        groups = vtab_groups(config, experiment_tasks(config, key))  # task -> group

        def column(name: str) -> bool:
            if name.lower() in GROUPS:
                return name.lower() in groups.values()
            return name in groups or name in ("params_m", "average", "mean_all")

        return column

    out: dict[str, tuple[set[str], Callable[[str], bool]]] = {}
    for table, key in (("table1_vtab", "vtab"), ("table6_vtab_swin", "swin")):
        if exps[key]["enabled"]:
            out[table] = rows(key), vtab_columns(key)
    if exps["vtab"]["enabled"]:
        out["table5_learning_rates"] = set(experiment_tasks(config, "vtab")), every
        if config["diagnostics"]["weight_sharing"]:
            searched = {v for v in variants(config, exps["vtab"]["methods"]) if method_of(config, v)[0] == "glora"}
            out["weight_sharing"] = {f"{display_name(v, 'glora')} / {task}" for v in searched
                                     for task in [*experiment_tasks(config, "vtab"), "mean"]}, every
    if exps["domain_generalization"]["enabled"]:
        out["table3_domain_generalization"] = rows("domain_generalization"), every
    if exps["llm"]["enabled"]:
        llm = exps["llm"]
        method = {"glora": "GLoRA", "lora": "LoRA"}
        out["table2_llm"] = ({f"{LLM_MODELS.get(m, m)} / base" for m in llm["base"]} |
                             {f"{LLM_MODELS.get(r['model'], r['model'])} / {method.get(r['method'], r['method'])} / "
                              f"{LLM_DATA.get(r['data'], r['data'])}" for r in llm["runs"]}), every
    if config["efficiency"]["enabled"]:
        measured = config["efficiency"].get("methods") or names()
        out["table4_efficiency"] = {"Backbone (untouched)", *(display_name(m, m) for m in measured)}, every
    return out


def _expected(config: Mapping, paper: bool) -> dict[str, tuple[set[str], Callable[[str], bool]]]:
    """:func:`expected_cells` with row names as the reference names them (the paper's aliases)."""
    cells = expected_cells(config)
    if paper:
        cells = {t: ({TABLES[t].aliases.get(r, r) for r in rows}, columns) for t, (rows, columns) in cells.items()}
    return cells


def references(config: Mapping) -> dict[str, pd.DataFrame] | None:
    """What each of our tables is compared with: the paper (suite ``paper``), else the golden CSVs of the
    configuration (``compare.golden``, a folder committed in the repository); None when that folder is missing."""
    golden = config["compare"].get("golden")
    if golden:
        folder = Path(golden)
        if not folder.is_dir():
            return None
        return {p.stem: pd.read_csv(p) for p in sorted(folder.glob("*.csv"))}
    return {name: reference.load(spec.reference) for name, spec in TABLES.items() if spec.reference}


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
            raise ConfigError(message)
        write_csv(out / "deltas.csv", [], FIELDS)
        write_text(out / "summary.md", f"# Nothing compared\n\n{message}.\n")
        return pd.DataFrame(columns=FIELDS)
    records = []
    paper = not config["compare"].get("golden")
    expected = _expected(config, paper)
    for name, ref in refs.items():
        path = tables / f"{name}.csv"
        ours = pd.read_csv(path) if path.is_file() else pd.DataFrame({"method": []})
        rows, columns = expected.get(name, (set(), lambda c: False))
        for record in compare_table(name, ours, ref, tolerance.get(name, tolerance["default"]), paper=paper):
            if record["status"] == "missing" and not (record["row"] in rows and columns(record["column"])):
                record["status"] = "not run"
            records.append(record)
    deltas = pd.DataFrame(records, columns=FIELDS)
    write_csv(out / "deltas.csv", records, FIELDS)
    counts = deltas.groupby(["table", "status"]).size().unstack(fill_value=0) if len(deltas) else pd.DataFrame()
    for status in STATUSES:
        if status not in counts:
            counts[status] = 0
    against = f"the golden tables in {golden}" if (golden := config["compare"].get("golden")) else "the paper"
    lines = [f"# Comparison of '{config.get('name') or config['suite']}' with {against}",
             "", "| table | within | outside | missing | not run | tolerance |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name in counts.index:
        lines.append(f"| {name} | {counts.at[name, 'within']} | {counts.at[name, 'outside']} | "
                     f"{counts.at[name, 'missing']} | {counts.at[name, 'not run']} | "
                     f"±{tolerance.get(name, tolerance['default'])} |")
    worst = deltas[deltas["status"] == "outside"].assign(size=lambda d: d["delta"].abs()).nlargest(10, "size")
    if len(worst):
        lines += ["", "Largest differences outside the tolerance:", "", "| table | row | column | ours | reference |",
                  "| --- | --- | --- | --- | --- |"]
        lines += [f"| {r.table} | {r.row} | {r.column} | {r.ours:.4g} | {r.reference:.4g} |"
                  for r in worst.itertuples()]
    missing = deltas[deltas["status"] == "missing"]
    if len(missing):
        lines += ["", "Missing cells (the configuration's enabled experiments should have filled them):", ""]
        lines += [f"- {line}" for line in missing_cells(missing)]
    write_text(out / "summary.md", "\n".join(lines) + "\n")
    return deltas


def missing_cells(deltas: pd.DataFrame, limit: int | None = None) -> list[str]:
    """``table: row / column`` for each ``missing`` cell of ``deltas`` (at most ``limit``, then a count)."""
    cells = [f"{r.table}: {r.row} / {r.column}" for r in deltas[deltas["status"] == "missing"].itertuples()]
    if limit is not None and len(cells) > limit:
        cells = [*cells[:limit], f"... and {len(cells) - limit} more"]
    return cells


def write_golden(tables: str | Path, folder: str | Path) -> list[Path]:
    """Copy the comparable tables of a trusted run into ``folder`` (to be committed as golden values): our
    result rows only (Table 2 without the paper's), Table 4 without the machine's speed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, spec in TABLES.items():
        path = Path(tables) / f"{name}.csv"
        if path.is_file() and len(df := spec.golden(pd.read_csv(path))):
            write_text(folder / path.name, df.to_csv(index=False))
            written.append(folder / path.name)
    return written
