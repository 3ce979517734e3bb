"""Building a prepared folder so that it appears whole or not at all.

:func:`staged` yields ``<parent>/.<name>.staging/<name>/`` to fill; on success it takes the place of
``<parent>/<name>`` (an incomplete folder there is replaced), on error it is removed. Its name is fixed, not
per process, so a staging folder left by a killed job is removed when the job runs again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def staged(path: str | Path) -> Iterator[Path]:
    path = Path(path)
    holder = path.parent / f".{path.name}.staging"
    old = path.parent / f".{path.name}.old"
    for stale in (holder, old):
        _remove(stale)
    stage = holder / path.name
    stage.mkdir(parents=True)
    try:
        yield stage
        if path.exists() or path.is_symlink():
            os.replace(path, old)
        os.replace(stage, path)
        _remove(old)
    finally:
        _remove(holder)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
