"""Pick the torch device for a stage, and claim a free GPU of a shared multi-GPU machine.

Snakemake only counts ``gpu`` resource tokens (``--resources gpu=N``): it never says *which* GPU a job
should use, so without SLURM every job would land on GPU 0. A job therefore claims a distinct free GPU
itself, with an exclusive ``flock`` on ``<lock_dir>/gpu<i>.lock``, and narrows ``CUDA_VISIBLE_DEVICES``
to it before CUDA is initialised. The OS drops a ``flock`` when its process exits, even when killed, so
there are no stale locks. Under a scheduler allocation (SLURM, or ``CUDA_VISIBLE_DEVICES`` set by
someone else) the allocation is used as is. ``torch`` is imported lazily: claiming needs only the stdlib.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import platform
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from glora.errors import ConfigError, GloraError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

_HELD: list[IO[str]] = []  # open lock files: a claim lives as long as the process
_OWN_VISIBLE: str | None = None  # the CUDA_VISIBLE_DEVICES value this process set itself
_HOW: str | None = None  # how resolve_device chose the GPU (recorded in provenance by describe)


@dataclass
class GpuClaim:
    """An exclusive claim of GPU ``index`` (held through an open, flock-ed ``lock_path``)."""

    index: int
    lock_path: Path
    _handle: IO[str] | None = None

    def release(self) -> None:
        """Drop the lock (the lock file itself stays: deleting it would race with other claimers)."""
        if self._handle is not None:
            if self._handle in _HELD:
                _HELD.remove(self._handle)
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


class NoFreeGpu(GloraError, RuntimeError):
    """Every GPU lock stayed held while waiting; the message names the holders."""


def default_lock_dir() -> Path:
    """``$GLORA_GPU_LOCK_DIR``, else a per-user folder under the temp dir."""
    return Path(os.environ.get("GLORA_GPU_LOCK_DIR") or Path(tempfile.gettempdir()) / f"glora-gpu-locks-{os.getuid()}")


def _try_lock(path: Path) -> IO[str] | None:
    """Open ``path`` without truncating it and take an exclusive non-blocking flock; None if held."""
    fh = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o666), "r+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        fh.close()
        if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return None
        raise
    fh.truncate(0)
    fh.write(f"pid={os.getpid()} host={socket.gethostname()}\n")
    fh.flush()
    return fh


def claim_gpu(count: int, lock_dir: str | Path | None = None, wait_s: float = 0, poll_s: float = 1.0) -> GpuClaim:
    """Claim the first free GPU of ``range(count)``, polling up to ``wait_s`` seconds; RuntimeError if none."""
    lock_dir = Path(lock_dir) if lock_dir is not None else default_lock_dir()
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    while True:
        for i in range(count):
            path = lock_dir / f"gpu{i}.lock"
            fh = _try_lock(path)
            if fh is not None:
                _HELD.append(fh)
                log.info("claimed GPU %d (lock %s)", i, path)
                return GpuClaim(i, path, fh)
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(poll_s, left))
    holders = {i: (lock_dir / f"gpu{i}.lock").read_text().strip() or "?" for i in range(count)}
    raise NoFreeGpu(
        f"no free GPU: all {count} GPU locks in {lock_dir} are held "
        f"({', '.join(f'gpu{i}: {h}' for i, h in holders.items())}) after waiting {wait_s:g}s; "
        "lower --resources gpu=N or free a GPU"
    )


def _cuda_count() -> int:
    """Number of visible GPUs without initialising CUDA (torch asks NVML when it can)."""
    import torch

    return torch.cuda.device_count()


def resolve_device(
    spec: str = "auto", *, lock_dir: str | Path | None = None, count: int | None = None, wait_s: float = 0
) -> torch.device:
    """Turn ``--device`` (auto|cpu|cuda|cuda:N) into a torch.device, claiming a free GPU if needed."""
    global _OWN_VISIBLE, _HOW
    import torch

    index: int | None = None
    if spec.startswith("cuda:") and spec[5:].isdigit():
        index = int(spec[5:])
    elif spec not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"unknown device {spec!r}: expected auto, cpu, cuda or cuda:N")
    if spec == "cpu":
        return torch.device("cpu")
    n = _cuda_count() if count is None else count
    if n == 0:
        if spec == "auto":
            return torch.device("cpu")
        raise ConfigError(
            f"--device {spec} but no CUDA device is visible (CUDA_VISIBLE_DEVICES="
            f"{os.environ.get('CUDA_VISIBLE_DEVICES')!r}, torch CUDA build {torch.version.cuda}); "
            "use --device cpu or auto"
        )
    if index is not None:  # an explicit choice: the caller manages sharing
        if index >= n:
            raise ConfigError(f"--device {spec} but only {n} CUDA device(s) are visible")
        _HOW = "explicit"
        return torch.device(f"cuda:{index}")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if os.environ.get("SLURM_JOB_ID") or (visible is not None and visible != _OWN_VISIBLE):
        _HOW = "slurm allocation" if os.environ.get("SLURM_JOB_ID") else "CUDA_VISIBLE_DEVICES as set"
        return torch.device("cuda")  # a scheduler allocation: use it as is
    if n > 1 and _OWN_VISIBLE is None:
        claim = claim_gpu(n, lock_dir, wait_s=wait_s)
        _HOW = f"lock {claim.lock_path}"
        if torch.cuda.is_initialized():  # too late to narrow the visible set
            log.warning("CUDA already initialised: using cuda:%d without narrowing CUDA_VISIBLE_DEVICES", claim.index)
            return torch.device(f"cuda:{claim.index}")
        _OWN_VISIBLE = os.environ["CUDA_VISIBLE_DEVICES"] = str(claim.index)
    elif _HOW is None:
        _HOW = "the only GPU"
    return torch.device("cuda")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(device: torch.device | str) -> dict:
    """Provenance of the device a stage ran on."""
    import torch

    device = torch.device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
    return {
        "device": str(device),
        "name": name,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "gpu_claim": _HOW if device.type == "cuda" else None,
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "torch_threads": torch.get_num_threads(),
    }
