"""What every ``python -m glora`` stage shares: argument types, the common options (--config, --set, --device,
--log, --threads, --quiet) and :func:`setup` (logging, torch threads, the validated configuration)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from glora.run import int_at_least

positive_int, seed = int_at_least(1), int_at_least(0)


def limit(text: str) -> int | float:
    """lm-eval's limit: an int (documents per task) or a float below 1 (a fraction of them)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of documents or a fraction, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return int(value) if value >= 1 and value == int(value) else value


def add_common(parser: argparse.ArgumentParser, *, device_default: str = "auto") -> None:
    parser.add_argument("--config", type=Path, action="append",
                        help="configuration file, repeatable: later files overlay earlier ones "
                             "(default: config.yaml)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override one setting after the files, e.g. --set backbone=swin_mini (repeatable)")
    parser.add_argument("--device", default=device_default,
                        help="auto, cpu, cuda or cuda:N (default: %(default)s); on a multi-GPU machine without "
                             "SLURM, auto/cuda claim one free GPU through a lock file")
    parser.add_argument("--log", type=Path, help="also write the log to this file")
    parser.add_argument("--threads", type=positive_int,
                        help="CPU threads for torch, >= 1 (Snakemake passes the rule's threads)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars (also when stderr is not a TTY)")


def setup(args: argparse.Namespace) -> dict:
    """Logging (to ``--log`` when given), progress-bar switch, and the validated configuration."""
    import logging

    from glora.config import load_config

    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if getattr(args, "log", None):
        args.log.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(args.log))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        handlers=handlers, force=True)
    args.quiet = args.quiet or not sys.stderr.isatty()
    if getattr(args, "threads", None) is not None:
        import torch

        torch.set_num_threads(args.threads)
    return load_config(args.config or [Path("config.yaml")], args.set or ())

