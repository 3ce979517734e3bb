"""Datasets of the paper, read from the on-disk layouts users already have (DESIGN §3), plus the mini suite.

Families: ``vtab`` (VTAB-1K), ``fewshot`` (the five fine-grained sets and ImageNet 16-shot) and
``imagenet`` (the domain-generalisation targets). ``build(family, task, split, root, ...)`` returns a
``torch.utils.data.Dataset``; ``python -m glora data check`` validates a folder before GPU time is spent.
"""

from __future__ import annotations

from pathlib import Path

from glora.data.check import FAMILIES, check_dataset
from glora.data.fewshot import FEWSHOT_SETS, FewShotSet, build_fewshot
from glora.data.imagenet import VARIANTS, Variant, build_imagenet, imagenet_synsets
from glora.data.lists import DataError, ImageList, read_list
from glora.data.transforms import FewShotRecipe, eval_transform, train_transform, vtab_transform
from glora.data.vtab import GROUPS, VTAB_TASKS, VtabTask, build_vtab
from glora.models import get_backbone


def build(family: str, task: str, split: str, root: str | Path, *, backbone: str = "vit_base_patch16_224.orig_in21k",
          train: bool | None = None, shot: int | None = None, seed: int | None = None) -> ImageList:
    """The Dataset of one split, with the transform of its protocol at ``backbone``'s input size and mean/std.

    - ``vtab``: ``task`` is a task folder; ``split`` is train800, val200, train800val200 or test; no
      augmentation on any split (the paper's protocol), so ``train`` changes nothing.
    - ``fewshot``: ``task`` is a dataset folder; ``split`` is train (needs ``shot`` and ``seed``), val or
      test; ``train`` (default: ``split == "train"``) selects the augmented transform.
    - ``imagenet``: ``task`` is imagenet_v2, imagenet_sketch, imagenet_a or imagenet_r; ``split`` is test;
      labels are 1000-class indices; ``train`` changes nothing.
    """
    spec = get_backbone(backbone)
    if family == "fewshot":
        return build_fewshot(root, task, split, spec, train=train, shot=shot, seed=seed)
    if family not in FAMILIES:
        raise DataError(f"unknown data family {family!r}; known: {list(FAMILIES)}")
    if shot is not None or seed is not None:
        raise DataError(f"shot/seed pick a few-shot training list; family {family!r} has none")
    return build_vtab(root, task, split, spec) if family == "vtab" else build_imagenet(root, task, split, spec)


__all__ = ["FAMILIES", "FEWSHOT_SETS", "GROUPS", "VARIANTS", "VTAB_TASKS", "DataError", "FewShotRecipe",
           "FewShotSet", "ImageList", "Variant", "VtabTask", "build", "build_fewshot", "build_imagenet",
           "build_vtab", "check_dataset", "eval_transform", "imagenet_synsets", "read_list", "train_transform",
           "vtab_transform"]
