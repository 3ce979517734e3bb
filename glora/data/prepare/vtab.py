"""VTAB-1K from the community archive: its members checked against the 19 tasks, then one task at a time.

The archive (``vtab.archive`` in the sources file) is the export NOAH's ``get_vtab1k.py`` writes and
RepAdapter shares: ``[<top>/]<task>/images/<split>/<n>.jpg`` and ``<task>/<split>.txt``. The committed manifest
is :data:`glora.data.vtab.VTAB_TASKS` (classes, split sizes), the table the loader and ``data check`` use.
Before anything is unpacked the archive's member list must hold the four list files of every task asked
for: an archive missing tasks is refused, naming them. Each task is then unpacked into a staging folder,
checked (split sizes, labels, every listed image present) and moved into place; a task already complete is
kept as it is.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from glora.data import vtab
from glora.data.check import check_dataset
from glora.data.lists import DataError
from glora.data.prepare.fetch import discard, fetch
from glora.data.prepare.sources import PrepareError, Registry, Sources
from glora.data.prepare.stage import staged
from glora.data.prepare.unpack import members, unpack

LIST_FILES = tuple(f"{split}.txt" for split in vtab.SPLITS)


def complete(root: Path, task: str) -> bool:
    """Whether ``root/task`` passes ``data check`` without decoding (sizes, labels, every image present)."""
    if not (root / task).is_dir():
        return False
    try:
        check_dataset("vtab", root, tasks=[task], decode=False)
    except DataError:
        return False
    return True


def archive_layout(archive: Path) -> tuple[str, dict[str, set[str]]]:
    """``(prefix, {task: list files})`` of the VTAB-1K tasks in ``archive`` (``prefix``: the folder above them)."""
    found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for name in members(archive):
        parts = name.replace("\\", "/").split("/")
        if len(parts) >= 2 and parts[-1] in LIST_FILES and parts[-2] in vtab.VTAB_TASKS:
            found["/".join(parts[:-2])][parts[-2]].add(parts[-1])
    if not found:
        return "", {}
    prefix = max(found, key=lambda p: len(found[p]))  # e.g. "vtab-1k"; ignores stray copies (__MACOSX/...)
    return (prefix + "/" if prefix else ""), dict(found[prefix])


def check_archive(archive: Path, tasks: list[str]) -> str:
    """The member prefix of the tasks in ``archive``; refuses an archive without all of ``tasks``."""
    prefix, found = archive_layout(archive)
    missing = [t for t in tasks if t not in found]
    partial = {t: sorted(set(LIST_FILES) - found[t]) for t in tasks if t in found and found[t] != set(LIST_FILES)}
    if missing:
        raise PrepareError(f"{archive.name} holds {len([t for t in tasks if t in found])} of the {len(tasks)} "
                           f"VTAB-1K tasks asked for; missing: {', '.join(missing)}")
    if partial:
        raise PrepareError(f"{archive.name}: tasks without all their list files: "
                           + "; ".join(f"{t} lacks {', '.join(names)}" for t, names in partial.items()))
    return prefix


def prepare(root: str | Path, tasks: list[str], sources: Sources, registry: Registry, downloads: Path, *,
            keep_downloads: bool = False, quiet: bool = False) -> dict:
    """Lay out ``tasks`` under ``root``; a report of what was kept, fetched and unpacked."""
    root = Path(root)
    unknown = [t for t in tasks if t not in vtab.VTAB_TASKS]
    if unknown:
        raise PrepareError(f"unknown VTAB-1K task(s) {unknown}; known: {list(vtab.VTAB_TASKS)}")
    todo = [t for t in tasks if not complete(root, t)]
    report = {"family": "vtab", "root": str(root), "kept": [t for t in tasks if t not in todo], "prepared": todo,
              "artefacts": []}
    if not todo:
        return report
    artefact = sources.vtab_archive()
    archive = downloads / artefact.file
    record = fetch(artefact, archive, registry, sources, verify=lambda path: check_archive(path, todo), quiet=quiet)
    report["artefacts"].append(record)
    prefix = check_archive(archive, todo)
    for task in todo:
        with staged(root / task) as stage:
            unpack(archive, stage, {f"{prefix}{task}/": ""}, quiet=quiet)
            try:
                check_dataset("vtab", stage.parent, tasks=[task], decode=False)
            except DataError as err:
                raise PrepareError(f"{archive} ({record.get('url') or 'already downloaded'}): task {task} does not "
                                   f"match the VTAB-1K manifest (glora.data.vtab.VTAB_TASKS):\n{err}") from None
    if not keep_downloads:
        discard(archive)
    return report
