"""``python -m glora`` stages of the paper's outputs: tables, figures, their comparison with the paper (or the
golden tables), where a finished run's outputs are, and what a configuration will cost before it runs (plan)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from glora.cli.common import add_common, setup
from glora.layout import Layout


def _paper_outputs(args: argparse.Namespace, kind: str) -> int:
    """``tables`` / ``figures``: write the paper's outputs of the run into results/<name>/<kind>."""
    from glora.paper import outputs

    config = setup(args)
    layout = Layout.of(config)
    write = outputs.run_tables if kind == "tables" else outputs.run_figures
    for path in write(config, layout.root, args.out or getattr(layout, kind)):
        print(path)
    return 0


def _tables(args: argparse.Namespace) -> int:
    return _paper_outputs(args, "tables")


def add_tables(stages) -> None:
    tables = stages.add_parser("tables", help="the paper's tables from the run's results (CSV, Markdown, LaTeX)")
    tables.add_argument("--out", type=Path, help="folder (default: results/<name>/tables)")
    add_common(tables)
    tables.set_defaults(func=_tables)


def _figures(args: argparse.Namespace) -> int:
    return _paper_outputs(args, "figures")


def add_figures(stages) -> None:
    figures = stages.add_parser("figures", help="the paper's figures from the run's results (PNG 300 dpi, PDF)")
    figures.add_argument("--out", type=Path, help="folder (default: results/<name>/figures)")
    add_common(figures)
    figures.set_defaults(func=_figures)


def _compare(args: argparse.Namespace) -> int:
    from glora.paper.compare import STATUSES, missing_cells, run_compare, write_golden

    config = setup(args)
    layout = Layout.of(config)
    tables = args.tables or Path(layout.tables)
    if args.write_golden:
        for path in write_golden(tables, args.write_golden):
            print(path)
        return 0
    out = args.out or Path(layout.compare)
    deltas = run_compare(config, tables, out, strict=args.strict)
    counts = deltas["status"].value_counts().to_dict()
    print(json.dumps({status: counts.get(status, 0) for status in STATUSES}))
    outside, missing = counts.get("outside", 0), counts.get("missing", 0)
    if args.strict and (outside or missing):
        problems = [f"{outside} cell(s) outside their tolerance"] if outside else []
        if missing:
            problems.append(f"{missing} cell(s) of enabled experiments missing ({'; '.join(missing_cells(deltas, 20))})"
                            ": their results were never produced; run the workflow to the end")
        print(f"error: compare --strict: {', '.join(problems)}; see {out / 'summary.md'}", file=sys.stderr)
        return 1
    return 0


def add_compare(stages) -> None:
    compare = stages.add_parser("compare", help="our tables minus the paper's (or the golden ones), per cell")
    compare.add_argument("--tables", type=Path, help="folder of our tables (default: results/<name>/tables)")
    compare.add_argument("--out", type=Path, help="folder for deltas.csv and summary.md (default: "
                                                  "results/<name>/compare)")
    compare.add_argument("--strict", action="store_true", help="exit 1 when a cell is outside its tolerance or a "
                         "cell of an enabled experiment is missing (listed)")
    compare.add_argument("--write-golden", type=Path, metavar="FOLDER",
                         help="instead: copy the tables into FOLDER as golden values (to commit)")
    add_common(compare)
    compare.set_defaults(func=_compare)


def _where(args: argparse.Namespace) -> int:
    from glora.paper.outputs import where

    print(where(setup(args)))
    return 0


def add_where(stages) -> None:
    where = stages.add_parser("where", help="after a run: Table 1, the comparison with the golden tables (or the "
                                            "paper) and where every output is")
    add_common(where)
    where.set_defaults(func=_where)


def _plan(args: argparse.Namespace) -> int:
    from glora.plan_cost import describe

    print(describe(setup(args), args.calibration, args.on, as_json=args.json))
    return 0


def add_plan(stages) -> None:
    from glora.plan_cost import CALIBRATION

    plan = stages.add_parser("plan", help="before a run: per-rule job counts and estimated device-hours of a "
                                          "configuration, from the measured calibration table")
    plan.add_argument("--calibration", type=Path, default=CALIBRATION,
                      help="measured images/s per backbone, kind and device (default: %(default)s)")
    plan.add_argument("--on", metavar="DEVICE", help="estimate for this device of the table (default: a GPU when "
                                                     "it has one, else its CPU)")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    add_common(plan)
    plan.set_defaults(func=_plan)


def register(stages) -> None:
    """Add this module's stages to the ``python -m glora`` parser."""
    add_tables(stages)
    add_figures(stages)
    add_compare(stages)
    add_where(stages)
    add_plan(stages)
