"""The tasks and datasets of the paper and of the mini suite as declarative tables -- names, groups, classes,
split sizes, list files -- without torch or image libraries, so that the Snakemake plan lists them cheaply. The
loaders (:mod:`glora.data.vtab`, :mod:`glora.data.fewshot`) and the mini suite's renderers
(:mod:`glora.data.mini_tasks`) build on these records."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

GROUPS = ("natural", "specialized", "structured")
SPLITS = ("train800", "val200", "train800val200", "test")
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


@dataclass(frozen=True)
class MiniTask:
    """A generated VTAB-style task of the mini suite: name, VTAB group, classes, what the label means, and its
    image renderer ``render(rng, labels, part) -> uint8 (N, 32, 32, 3)`` (attached by
    :data:`glora.data.mini_tasks.TASKS`). ``procedural``: every image is a fresh random sample (nothing to keep
    apart between splits); the others crop sources that ``glora.data.draw.note`` records."""

    name: str
    group: str
    num_classes: int
    description: str
    procedural: bool = False
    render: Callable | None = None


MINI_TASKS: dict[str, MiniTask] = {t.name: t for t in [
    MiniTask("digits", "natural", 10, "SVHN analogue: the centre digit of scikit-learn's digits, colourised, "
             "with neighbouring digits; train/val/test from disjoint source digits"),
    MiniTask("textures", "natural", 6, "DTD analogue: which texture photo (brick, grass, gravel, moon, page, "
             "coins) a tinted crop is from; train/val/test from disjoint regions"),
    MiniTask("faces", "natural", 2, "face (1) or not (0), from scikit-image's lfw_subset; train/val/test "
             "from disjoint source images"),
    MiniTask("specimen", "specialized", 5, "EuroSAT/Resisc analogue: which scientific image (ihc, retina, hubble, "
             "cell, microaneurysms) a patch is from; train/val/test from disjoint regions"),
    MiniTask("ihc_marker", "specialized", 2, "PatchCamelyon analogue: whether the centre of an ihc.png patch is "
             "DAB-positive tissue (1) or not (0), with the DAB stain faded to 8%; train/val/test from disjoint "
             "regions"),
    MiniTask("lesion_grade", "specialized", 5, "Retinopathy analogue: lesion-load grade 0-4 of a retina.jpg patch "
             "with drawn lesions; train/val/test from disjoint regions"),
    MiniTask("dsprites_loc_mini", "structured", 16, "dSprites location: x-position bin (16) of a white shape",
             procedural=True),
    MiniTask("dsprites_ori_mini", "structured", 16, "dSprites orientation: orientation bin (16 of 360 degrees) of "
             "a shape without rotational symmetry", procedural=True),
    MiniTask("clevr_count_mini", "structured", 8, "CLEVR count: number of solids minus 3 (3..10)", procedural=True),
    MiniTask("clevr_dist_mini", "structured", 6, "CLEVR distance: depth bin of the nearest solid (0 = nearest, "
             "equal bins of 1/depth)", procedural=True),
]}


# ------------------------------------------------------------------ few-shot sets (NOAH's lists, CoOp's splits)

@dataclass(frozen=True)
class FewShotSet:
    """One few-shot dataset: folder name, classes, and the (shot, seed) training lists it ships."""

    name: str
    num_classes: int
    shots: tuple[int, ...] = (1, 2, 4, 8, 16)
    seeds: tuple[int, ...] = (0, 1, 2)

    def lists(self) -> list[str]:
        """Every list file the loader and ``data check`` read, relative to the dataset's folder."""
        return [*(list_name("train", k, s) for k in self.shots for s in self.seeds), list_name("val"),
                list_name("test")]


FEWSHOT_SETS: dict[str, FewShotSet] = {s.name: s for s in [
    FewShotSet("food101", 101),
    FewShotSet("oxford-flowers102", 102),
    FewShotSet("standford-cars", 196),  # sic: the folder name NOAH's splits use
    FewShotSet("oxford-pets", 37),
    FewShotSet("fgvc-aircraft", 100),
    FewShotSet("imagenet", 1000, shots=(16,)),  # the source set of the domain-generalisation experiments
]}


def list_name(split: str, shot: int | None = None, seed: int | None = None) -> str:
    """The list file of a split, relative to ``<root>/<dataset>/``."""
    if split == "train":
        return f"annotations/train_meta.list.num_shot_{shot}.seed_{seed}"
    return f"annotations/{split}_meta.list"


def experiment_tasks(config: Mapping, key: str) -> list[str]:
    """The tasks of a VTAB experiment (``experiments.<key>``): its list, else the suite's (the mini suite's or the
    paper's 19)."""
    tasks = config["experiments"][key].get("tasks")
    if tasks:
        return list(tasks)
    return list(MINI_TASKS if config["suite"] == "mini" else VTAB_TASKS)
