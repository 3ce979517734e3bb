"""Where a result came from: configuration hash, git commit, package versions, seed, device.

Only facts that the command, the code and the machine determine are recorded, so that running the same
command twice writes the same bytes. When and where exactly a job ran, how long it took and how fast it went
(dates, host names, wall times, images/s) are volatile: they go to the log (``--log``; under Snakemake
``results/<name>/logs/``) and Snakemake's ``results/<name>/benchmarks/`` TSVs, never into results. The rule and its
two exceptions (Table 4's throughput, which is a measurement of speed, and the scheduler's allocation in the
device record) are in docs/troubleshooting.md, "Identical runs, identical files".
"""

from __future__ import annotations

import platform
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

PACKAGES = ("glora", "torch", "torchvision", "timm", "numpy", "safetensors", "transformers", "datasets", "lm_eval")


def git_commit(where: str | Path | None = None) -> str | None:
    """The checkout's commit, with ``-dirty`` when tracked files differ from it; None outside git."""
    cwd = Path(where) if where else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def versions() -> dict[str, str | None]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def provenance(config: Mapping | None = None, *, seed: int | None = None, device=None) -> dict:
    """The provenance block every stage writes into its JSON result (no date or host name: see above)."""
    from glora.config import config_hash

    record = {"git_commit": git_commit(), "versions": versions()}
    if config is not None:
        record["config_hash"] = config_hash(config)
        record["suite"] = config.get("suite")
    if seed is not None:
        record["seed"] = seed
    if device is not None:
        from glora.devices import describe

        record["device"] = describe(device)
    return record
