"""Write a table as CSV, Markdown (tabulate), LaTeX (booktabs, the best value per column in bold) and HTML (for
``snakemake --report``)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from glora.atomic import write_text


def _cell(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _latex_escape(text: str) -> str:
    return text.replace("_", r"\_").replace("%", r"\%").replace("#", r"\#").replace("&", r"\&").replace("^", r"\^{}")


def write_table(df: pd.DataFrame, stem: str | Path, *, caption: str, notes: Sequence[str] = (),
                bold_max: Sequence[str] = (), digits: int = 1, column_digits: Mapping[str, int] | None = None
                ) -> list[Path]:
    """``stem``.csv (full precision), ``stem``.md, ``stem``.tex and ``stem``.html (``digits`` decimals; the
    largest value of each ``bold_max`` column in bold in LaTeX and HTML); ``notes`` (provenance, footnotes) go
    under the table. Cells not run are empty in the CSV and "–" elsewhere. Returns the four paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    csv_path, md_path, tex_path, html_path = (stem.with_suffix(s) for s in (".csv", ".md", ".tex", ".html"))
    write_text(csv_path, df.to_csv(index=False))
    places = [dict(column_digits or {}).get(c, digits) for c in df.columns]
    cells = [[_cell(v, d) for v, d in zip(row, places)] for row in df.itertuples(index=False)]
    md = f"**{caption}**\n\n" + tabulate(cells, headers=list(df.columns), tablefmt="github", disable_numparse=True)
    md += "\n\n" + "\n".join(f"- {n}" for n in notes) + ("\n" if notes else "")
    write_text(md_path, md)
    best = {c: df[c].max() for c in bold_max if c in df and df[c].notna().any()}
    lines = [r"\begin{table}[t]", r"\centering", f"\\caption{{{_latex_escape(caption)}}}",
             r"\resizebox{\linewidth}{!}{%", f"\\begin{{tabular}}{{l{'r' * (len(df.columns) - 1)}}}", r"\toprule",
             " & ".join(_latex_escape(str(c)) for c in df.columns) + r" \\", r"\midrule"]
    for raw, row in zip(df.itertuples(index=False), cells):
        out = []
        for col, value, text in zip(df.columns, raw, row):
            text = _latex_escape(text)
            out.append(f"\\textbf{{{text}}}" if col in best and value == best[col] else text)
        lines.append(" & ".join(out) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}}"]
    lines += [f"\\par\\footnotesize {_latex_escape(n)}" for n in notes]
    lines += [r"\end{table}", ""]
    write_text(tex_path, "\n".join(lines))
    write_text(html_path, _html(df, cells, caption, notes, best))
    return [csv_path, md_path, tex_path, html_path]


def _html(df: pd.DataFrame, cells: list[list[str]], caption: str, notes: Sequence[str], best: Mapping) -> str:
    """A self-contained HTML page of the table (what ``snakemake --report`` shows)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for raw, row in zip(df.itertuples(index=False), cells):
        tds = [f"<td><b>{html.escape(t)}</b></td>" if c in best and v == best[c] else f"<td>{html.escape(t)}</td>"
               for c, v, t in zip(df.columns, raw, row)]
        rows.append("<tr>" + "".join(tds) + "</tr>")
    style = ("body{font-family:sans-serif;font-size:13px}table{border-collapse:collapse}"
             "th,td{padding:2px 8px;text-align:right;border-bottom:1px solid #ddd}th{border-bottom:2px solid #333}"
             "td:first-child,th:first-child{text-align:left}caption{font-weight:bold;margin-bottom:6px}")
    notes_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(caption)}</title>"
            f"<style>{style}</style></head><body>\n<table><caption>{html.escape(caption)}</caption>\n"
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table>\n"
            + (f"<ul>{notes_html}</ul>\n" if notes else "") + "</body></html>\n")
