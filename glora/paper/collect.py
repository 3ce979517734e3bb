"""Gather a run's result files (``results/<name>/``) into pandas tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from glora.layout import Layout
from glora.workflow import RUN


def evaluations(results: str | Path, exp: str) -> pd.DataFrame:
    """One row per evaluate JSON of experiment ``exp``: variant, method, size, task, run, seed, shot, top1,
    merged, adapter_params, the commit of the run that wrote it, and ``target_<name>`` top-1 for the
    domain-generalisation targets."""
    rows = []
    for path, variant, task, run in Layout(str(results)).cells(exp, "evaluate"):
        data = json.loads(path.read_text())
        match = RUN.fullmatch(run)
        rows.append({"variant": variant, "method": data["method"], "size": data.get("size"), "task": task,
                     "run": run, "seed": int(match["seed"]) if match else data.get("seed"),
                     "shot": int(match["shot"]) if match and match["shot"] else None,
                     "top1": data["test"]["top1"], "merged": data["merged"],
                     "adapter_params": data.get("adapter_params"),
                     "commit": data.get("provenance", {}).get("git_commit"),
                     **{f"target_{t}": r["top1"] for t, r in data.get("targets", {}).items()}})
    columns = ["variant", "method", "size", "task", "run", "seed", "shot", "top1", "merged", "adapter_params",
               "commit"]
    targets = sorted({k for r in rows for k in r if k.startswith("target_")})
    return pd.DataFrame(rows, columns=columns + targets)
