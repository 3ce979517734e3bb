"""VTAB-1K: the 19 tasks as a declarative table, and the Dataset of one task's split.

Layout (the export most PEFT repos share): ``<root>/<task>/`` holds ``train800.txt``, ``val200.txt``,
``train800val200.txt`` and ``test.txt``, each line ``relative/path.jpg <int label>`` (relative to the task
folder). The paper trains on ``train800``, searches on ``val200`` and reports on ``test``; images are only
resized to the backbone's input size and normalised (no augmentation).

A root whose ``suite.json`` declares ``"family": "vtab"`` (the generated mini suite) lists its own tasks,
class counts, groups and split sizes, which replace the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from glora.data.lists import DataError, ImageList, pick, suite_int, suite_records
from glora.data.transforms import vtab_transform
from glora.models import Backbone

GROUPS = ("natural", "specialized", "structured")
SPLITS = ("train800", "val200", "train800val200", "test")
HINT = ("To obtain VTAB-1K: use the VTAB-1K export used by NOAH/FacT (vtab-1k.zip), or build it from TFDS with "
        "the VTAB scripts; each <root>/<task>/ needs train800.txt, val200.txt, train800val200.txt and test.txt.")


@dataclass(frozen=True)
class VtabTask:
    """One VTAB-1K task: folder name, classes, group, and the lines each split's list holds."""

    name: str
    num_classes: int
    group: str
    test_size: int
    train_size: int = 800
    val_size: int = 200

    @property
    def sizes(self) -> dict[str, int]:
        return {"train800": self.train_size, "val200": self.val_size,
                "train800val200": self.train_size + self.val_size, "test": self.test_size}


VTAB_TASKS: dict[str, VtabTask] = {task.name: task for task in [
    VtabTask("cifar", 100, "natural", 10000),
    VtabTask("caltech101", 102, "natural", 6084),
    VtabTask("dtd", 47, "natural", 1880),
    VtabTask("oxford_flowers102", 102, "natural", 6149),
    VtabTask("oxford_iiit_pet", 37, "natural", 3669),
    VtabTask("svhn", 10, "natural", 26032),
    VtabTask("sun397", 397, "natural", 21750),
    VtabTask("patch_camelyon", 2, "specialized", 32768),
    VtabTask("eurosat", 10, "specialized", 5400),
    VtabTask("resisc45", 45, "specialized", 6300),
    VtabTask("diabetic_retinopathy", 5, "specialized", 42670),
    VtabTask("clevr_count", 8, "structured", 15000),
    VtabTask("clevr_dist", 6, "structured", 15000),
    VtabTask("dmlab", 6, "structured", 22735),
    VtabTask("kitti", 4, "structured", 711),
    VtabTask("dsprites_loc", 16, "structured", 73728),
    VtabTask("dsprites_ori", 16, "structured", 73728),
    VtabTask("smallnorb_azi", 18, "structured", 12150),
    VtabTask("smallnorb_ele", 9, "structured", 12150),
]}


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
