"""Backbones by name: a small declarative table over timm (architecture + overrides + input config).

==================================================  ==================================================
name                                                what it is
==================================================  ==================================================
``vit_base_patch16_224.orig_in21k``                 the paper's ViT-B/16 (Google's ImageNet-21k ``.npz``)
``swin_base_patch4_window7_224.ms_in22k``           the paper's Swin-B (appendix C, Table 6)
``vit_mini``                                        the mini suite's tiny ViT: 32x32, patch 8, width 128, depth 4
``swin_mini``                                       a tiny Swin with the same structure as Swin-B (tests)
==================================================  ==================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

import timm
from torch import nn


@dataclass(frozen=True)
class Backbone:
    """A backbone record: timm architecture, its overrides, and the input it expects.

    With a pretrained ``tag``, the input size, mean/std and interpolation are read from timm's pretrained
    config of ``arch.tag`` (what the checkpoint was trained with); without one they must be given.
    """

    arch: str
    tag: str | None = None
    overrides: dict = field(default_factory=dict)
    input_size: tuple[int, int, int] | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    interpolation: str | None = None

    def __post_init__(self):
        cfg = timm.models.get_pretrained_cfg(self.timm_name).to_dict() if self.tag else {}
        for key in ("input_size", "mean", "std", "interpolation"):
            if getattr(self, key) is None:
                if key not in cfg:
                    raise ValueError(f"backbone {self.arch!r} without a pretrained tag needs {key}")
                object.__setattr__(self, key, tuple(cfg[key]) if key != "interpolation" else cfg[key])

    @property
    def timm_name(self) -> str:
        return f"{self.arch}.{self.tag}" if self.tag else self.arch


BACKBONES: dict[str, Backbone] = {
    "vit_base_patch16_224.orig_in21k": Backbone("vit_base_patch16_224", "orig_in21k"),
    "swin_base_patch4_window7_224.ms_in22k": Backbone("swin_base_patch4_window7_224", "ms_in22k"),
    "vit_mini": Backbone(
        "vit_base_patch16_224",
        overrides={"img_size": 32, "patch_size": 8, "embed_dim": 128, "depth": 4, "num_heads": 4},
        input_size=(3, 32, 32), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation="bicubic"),
    "swin_mini": Backbone(
        "swin_base_patch4_window7_224",
        overrides={"img_size": 32, "patch_size": 2, "window_size": 4, "embed_dim": 32,
                   "depths": (2, 2, 2), "num_heads": (2, 4, 8)},
        input_size=(3, 32, 32), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), interpolation="bicubic"),
}


def get_backbone(name: str) -> Backbone:
    """The record for ``name``; a ``ValueError`` lists the known names."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; known: {sorted(BACKBONES)}") from None


def create_backbone(name: str, num_classes: int, **kwargs) -> nn.Module:
    """A randomly initialised timm model for backbone ``name`` with a ``num_classes`` head.

    ``kwargs`` go to ``timm.create_model`` (e.g. ``drop_path_rate=0.1``). Nothing is downloaded.
    """
    spec = get_backbone(name)
    return timm.create_model(spec.arch, pretrained=False, num_classes=num_classes, **{**spec.overrides, **kwargs})
