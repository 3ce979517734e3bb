"""VTAB-1K: the 19 tasks as a declarative table, and the Dataset of one task's split.

Layout (the export most PEFT repos share): ``<root>/<task>/`` holds ``train800.txt``, ``val200.txt``,
``train800val200.txt`` and ``test.txt``, each line ``relative/path.jpg <int label>`` (relative to the task
folder). The paper trains on ``train800``, searches on ``val200`` and reports on ``test``; images are only
resized to the backbone's input size and normalised (no augmentation).

A root whose ``suite.json`` declares ``"family": "vtab"`` (the generated mini suite) lists its own tasks,
class counts, groups and split sizes, which replace the table.
"""

from __future__ import annotations

from pathlib import Path

from glora.data.lists import DataError, ImageList, pick, suite_int, suite_records
from glora.data.tasks import GROUPS, SPLITS, VTAB_TASKS, VtabTask
from glora.data.transforms import vtab_transform
from glora.models import Backbone

HINT = ("To obtain VTAB-1K: use `python -m glora prepare vtab` (docs/data.md), the VTAB-1K export used by "
        "NOAH/FacT (vtab-1k.zip), or build it from TFDS with the VTAB scripts; each <root>/<task>/ needs "
        "train800.txt, val200.txt, train800val200.txt and test.txt.")


def vtab_tasks(root: str | Path) -> dict[str, VtabTask]:
    """The tasks of ``root``: those its ``suite.json`` declares, else the paper's 19."""
    found = suite_records(root, "vtab", "tasks")
    if found is None:
        return VTAB_TASKS
    path, declared = found
    tasks = {}
    for name, record in declared.items():
        key = f"tasks.{name}"
        sizes = record.get("sizes") if isinstance(record, dict) else None
        if not isinstance(sizes, dict) or record.get("group") not in GROUPS:
            raise DataError(f"{path}: {key} needs num_classes, group (one of {list(GROUPS)}) and sizes; "
                            "regenerate the suite with `python -m glora data mini`")
        task = VtabTask(name, suite_int(path, f"{key}.num_classes", record.get("num_classes")), record["group"],
                        test_size=suite_int(path, f"{key}.sizes.test", sizes.get("test")),
                        train_size=suite_int(path, f"{key}.sizes.train800", sizes.get("train800")),
                        val_size=suite_int(path, f"{key}.sizes.val200", sizes.get("val200")))
        if sizes.get("train800val200", task.sizes["train800val200"]) != task.sizes["train800val200"]:
            raise DataError(f"{path}: {key}.sizes.train800val200 = {sizes['train800val200']} but train800 + val200 "
                            f"= {task.sizes['train800val200']}; regenerate the suite with `python -m glora data mini`")
        tasks[name] = task
    return tasks


def get_task(root: str | Path, name: str) -> VtabTask:
    """The record of task ``name`` in ``root``; a ``DataError`` lists the known names."""
    tasks = vtab_tasks(root)
    return pick(tasks, name, "VTAB task", "VTAB-1K" if tasks is VTAB_TASKS else str(Path(root) / "suite.json"))


def build_vtab(root: str | Path, task: str, split: str, backbone: Backbone) -> ImageList:
    """The Dataset of ``<root>/<task>/<split>.txt``, resized to the backbone's input size and normalised."""
    if split not in SPLITS:
        raise DataError(f"unknown VTAB split {split!r}; known: {list(SPLITS)}")
    record = get_task(root, task)
    folder = Path(root) / task
    return ImageList.from_list(folder / f"{split}.txt", folder, vtab_transform(backbone),
                               num_classes=record.num_classes, hint=HINT, root=Path(root))
