"""Check that a ``snakemake --report`` archive holds every table (HTML) and figure (PNG) of a run, with captions.

``python -m glora.paper.report_check results/ci/report.zip results/ci/tables results/ci/figures`` exits 1 and
names what is missing (`make ci` runs it).
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path


def missing_from_report(report: str | Path, tables: str | Path, figures: str | Path) -> list[str]:
    """Tables (``*.html``) and figures (``*.png``) of the run that the report archive lacks, and captionless ones."""
    with zipfile.ZipFile(report) as archive:
        names = archive.namelist()
        page = next((archive.read(n).decode() for n in names if n.endswith("report.html")), "")
    inside = {Path(n).name for n in names}
    expected = sorted(p.name for p in Path(tables).glob("*.html")) + sorted(p.name for p in Path(figures).glob("*.png"))
    problems = [f"{name}: not in the report" for name in expected if name not in inside]
    for prefix, caption in (("table", "Table 1 of the paper"), ("figure", "Figure 2 of the paper")):
        if any(n.startswith(prefix) for n in expected) and caption not in page:
            problems.append(f"the {prefix} captions (workflow/report/{prefix}s.rst) are not in the report")
    if not expected:
        problems.append(f"no tables or figures in {tables} and {figures}")
    return problems


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3:
        print("usage: python -m glora.paper.report_check REPORT.zip TABLES_DIR FIGURES_DIR", file=sys.stderr)
        return 2
    problems = missing_from_report(*argv)
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
