"""Atomic file writes (a temporary file beside the target, renamed over it) and file digests.

A killed job therefore leaves either the old file or the new one, never half a file. Every output and
resume checkpoint of the stages goes through here. A write that runs out of disk space (or quota) raises
:class:`glora.errors.DiskFullError` naming the file; the file it would have replaced is left as it was.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import io
import json
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from glora.errors import DiskFullError

#: errno values of a full disk or an exhausted quota
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
#: how libraries that write through their own I/O (safetensors' Rust writer) word errno 28
DISK_FULL_TEXT = ("No space left on device", "os error 28", "Disk quota exceeded")


def _disk_full(err: BaseException) -> bool:
    return (isinstance(err, OSError) and err.errno in DISK_FULL) or any(t in str(err) for t in DISK_FULL_TEXT)


def _raise_if_disk_full(err: Exception, path: Path) -> None:
    """A :class:`DiskFullError` naming ``path`` when ``err`` is a full disk (after the temporary file is gone)."""
    if isinstance(err, DiskFullError) or not _disk_full(err):
        return
    folder = next((p for p in (path.parent, *path.parents) if p.exists()), Path.cwd())
    free = shutil.disk_usage(folder).free / 2**20
    kept = f"the previous {path.name} is unchanged" if path.exists() else "nothing was written there"
    raise DiskFullError(f"no space left on the device of {path} while writing it ({free:.1f} MiB free now); "
                        f"{kept}; free some space (or point the results elsewhere) and run the command again") \
        from err


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed to ``path``, on error removed (a full
    disk becomes a :class:`DiskFullError` naming ``path``)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except Exception as err:
        tmp.unlink(missing_ok=True)
        _raise_if_disk_full(err, path)
        raise
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``path``; on success it takes the place of ``path`` (a folder that
    was there is removed), on error it is removed. For outputs that are folders (a saved Hugging Face model)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except Exception as err:
        shutil.rmtree(tmp, ignore_errors=True)
        _raise_if_disk_full(err, path)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, data) -> None:
    write_text(path, json.dumps(data, indent=1) + "\n")


def write_csv(path: str | Path, rows: Sequence[Mapping], fieldnames: Sequence[str]) -> None:
    """Rows as CSV with a header (missing values are empty cells)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fieldnames), restval="")
        writer.writeheader()
        writer.writerows(rows)


def save_torch(path: str | Path, obj) -> None:
    """``torch.save`` atomically (resume checkpoints). Serialised in memory first: torch's own writer reports a
    full disk as an anonymous RuntimeError, Python's file write as the ``OSError`` it is."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes(path, buffer.getbuffer())


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (streamed)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
