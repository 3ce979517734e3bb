"""The Dataset of one split of any family, with the transform of its protocol (``glora.data.build``)."""

from __future__ import annotations

from pathlib import Path

from glora.data.check import FAMILIES
from glora.data.fewshot import build_fewshot
from glora.data.imagenet import build_imagenet
from glora.data.lists import DataError, ImageList
from glora.data.vtab import build_vtab
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
