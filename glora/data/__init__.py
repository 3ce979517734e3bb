"""Datasets of the paper, read from the on-disk layouts users already have (docs/data.md), plus the mini suite.

Families: ``vtab`` (VTAB-1K), ``fewshot`` (the five fine-grained sets and ImageNet 16-shot) and
``imagenet`` (the domain-generalisation targets). ``build(family, task, split, root, ...)`` returns a
``torch.utils.data.Dataset``; ``python -m glora data check`` validates a folder before GPU time is spent.
"""

import importlib

#: name -> the module that defines it; loaded on first use, so that the task tables (:mod:`glora.data.tasks`)
#: and the preparation's checks import no torch
_FACE = {
    "build": "datasets", "FAMILIES": "check", "check_dataset": "check", "build_fewshot": "fewshot",
    "VARIANTS": "imagenet", "Variant": "imagenet", "build_imagenet": "imagenet", "imagenet_synsets": "imagenet",
    "DataError": "lists", "ImageList": "lists", "read_list": "lists", "FewShotRecipe": "transforms",
    "eval_transform": "transforms", "train_transform": "transforms", "vtab_transform": "transforms",
    "build_vtab": "vtab", "FEWSHOT_SETS": "tasks", "FewShotSet": "tasks", "GROUPS": "tasks", "VTAB_TASKS": "tasks",
    "VtabTask": "tasks",
}

__all__ = sorted(_FACE)


def __getattr__(name: str):
    if name in _FACE:
        return getattr(importlib.import_module(f"{__name__}.{_FACE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
