"""Few-shot fine-grained sets and ImageNet 16-shot: a declarative table, list-file names, the Dataset.

Layout (NOAH's, from CoOp's splits): ``<root>/<dataset>/annotations/`` holds
``train_meta.list.num_shot_{K}.seed_{S}``, ``val_meta.list`` and ``test_meta.list``, each line
``path label`` with paths relative to ``<root>/<dataset>/``. Training images get timm's RandAugment recipe
(``FewShotRecipe``); evaluation resizes to 256 and centre crops 224 (scaled to the backbone's input size).

A root whose ``suite.json`` declares ``"family": "fewshot"`` (the generated mini suite) lists its own
datasets, class counts, shots and seeds, which replace the table.
"""

from __future__ import annotations

from pathlib import Path

from glora.data.lists import DataError, ImageList, pick, suite_int, suite_records
from glora.data.tasks import FEWSHOT_SETS, FewShotSet, list_name
from glora.data.transforms import FewShotRecipe, eval_transform, train_transform
from glora.models import Backbone

SPLITS = ("train", "val", "test")
HINT = ("To obtain the few-shot data: use `python -m glora prepare fewshot` (docs/data.md) or the few-shot "
        "splits of NOAH / CoOp; each <root>/<dataset>/annotations/ needs train_meta.list.num_shot_{K}.seed_{S}, "
        "val_meta.list and test_meta.list.")


def fewshot_sets(root: str | Path) -> dict[str, FewShotSet]:
    """The datasets of ``root``: those its ``suite.json`` declares, else the paper's six."""
    found = suite_records(root, "fewshot", "datasets")
    if found is None:
        return FEWSHOT_SETS
    path, declared = found
    sets = {}
    for name, record in declared.items():
        key = f"datasets.{name}"
        record = record if isinstance(record, dict) else {}
        shots, seeds = record.get("shots"), record.get("seeds")
        for field, values, least in (("shots", shots, 1), ("seeds", seeds, 0)):
            if not isinstance(values, list) or not values or not all(type(v) is int and v >= least for v in values):
                raise DataError(f"{path}: {key}.{field} must be a non-empty list of integers >= {least}, got "
                                f"{values!r}; regenerate the suite with `python -m glora data mini`")
        sets[name] = FewShotSet(name, suite_int(path, f"{key}.num_classes", record.get("num_classes")),
                                tuple(shots), tuple(seeds))
    return sets


def get_set(root: str | Path, name: str) -> FewShotSet:
    """The record of dataset ``name`` in ``root``; a ``DataError`` lists the known names."""
    sets = fewshot_sets(root)
    source = "the paper's few-shot sets" if sets is FEWSHOT_SETS else str(Path(root) / "suite.json")
    return pick(sets, name, "few-shot dataset", source)


def build_fewshot(root: str | Path, dataset: str, split: str, backbone: Backbone, *, train: bool | None = None,
                  shot: int | None = None, seed: int | None = None,
                  recipe: FewShotRecipe | None = None) -> ImageList:
    """The Dataset of one split; ``shot`` and ``seed`` pick the training list (ignored for val/test).

    ``train`` (default: ``split == "train"``) selects the augmented training transform, else the
    evaluation one.
    """
    if split not in SPLITS:
        raise DataError(f"unknown few-shot split {split!r}; known: {list(SPLITS)}")
    record = get_set(root, dataset)
    if split == "train" and (shot not in record.shots or seed not in record.seeds):
        raise DataError(f"few-shot {dataset!r} split 'train' needs shot in {list(record.shots)} and seed in "
                        f"{list(record.seeds)}, got shot={shot!r}, seed={seed!r}")
    folder = Path(root) / dataset
    augment = split == "train" if train is None else train
    transform = train_transform(backbone, recipe or FewShotRecipe()) if augment else eval_transform(backbone)
    return ImageList.from_list(folder / list_name(split, shot, seed), folder, transform,
                               num_classes=record.num_classes, hint=HINT, root=Path(root))
