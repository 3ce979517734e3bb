"""Where a result came from: configuration hash, git commit, package versions, seed, device, time."""

from __future__ import annotations

import datetime
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
    """The provenance block every stage writes into its JSON result."""
    from glora.config import config_hash

    record = {"created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              "git_commit": git_commit(), "versions": versions(), "host": platform.node()}
    if config is not None:
        record["config_hash"] = config_hash(config)
        record["suite"] = config.get("suite")
    if seed is not None:
        record["seed"] = seed
    if device is not None:
        from glora.devices import describe

        record["device"] = describe(device)
    return record
