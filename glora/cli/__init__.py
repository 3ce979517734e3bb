"""``python -m glora <stage>``: the command line that users and Snakemake rules call.

Each stage parses its arguments and calls one library function; no logic lives here. A stage's parser is
defined beside its handler, in the module of its kind: :mod:`.inputs` (demo, data, space, checkpoint, prepare),
:mod:`.stages` (one experiment cell, and efficiency), :mod:`.paper` (tables, figures, compare, where, and plan:
a configuration's cost), :mod:`.llm` (Table 2). Exit codes: 0 done; 1 a bug (with its traceback) or ``compare
--strict`` finding cells outside their tolerance or missing; 2 bad input (:class:`glora.errors.GloraError`, one
``error: ...`` line naming the file/line/key and the fix; also a bad command line); 3 a NaN/inf loss.
``GLORA_TRACEBACK=1`` also prints the traceback of a ``GloraError``.
"""

from __future__ import annotations

import argparse
import os
import sys

from glora.cli import inputs, llm, paper, stages
from glora.errors import GloraError


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as one ``error: ...`` line (exit 2) instead of the usage block and a line."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m glora", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="stage", required=True, metavar="<stage>")
    for kind in (inputs, stages, paper, llm):
        kind.register(subparsers)
    return parser


def _terminated(signum, frame):
    """SIGTERM (Snakemake stopping its jobs, ``kill``, a scheduler) unwinds like Ctrl-C: temporary files of
    writes under way are removed, finished outputs stay."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    import signal
    import threading

    args = build_parser().parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
    try:
        return args.func(args)
    except GloraError as err:
        if os.environ.get("GLORA_TRACEBACK"):
            import traceback

            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)

