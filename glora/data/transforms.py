"""Image transforms per protocol, built by timm from the backbone record (input size, mean/std, interpolation).

==================  ===========================================================================================
``vtab_transform``  VTAB-1K: resize (squash) to the input size, no augmentation (224 bicubic for ViT-B/16)
``eval_transform``  few-shot / ImageNet(-variants) evaluation: resize the shorter side to input/0.875 (256 for
                    224), centre crop to the input size
``train_transform`` few-shot training: random resized crop, flip, RandAugment, colour jitter, random erasing
==================  ===========================================================================================

Mixup, CutMix and label smoothing act on batches, not images: ``FewShotRecipe`` holds their numbers and the
trainer applies them (``timm.data.Mixup(**recipe.mixup_kwargs(num_classes))`` with
``timm.loss.SoftTargetCrossEntropy``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from timm.data import create_transform

from glora.models import Backbone

EVAL_CROP_PCT = 224 / 256


@dataclass(frozen=True)
class FewShotRecipe:
    """The few-shot training recipe of NOAH (DeiT's augmentation), which the paper follows."""

    # DeiT's rand-m9-mstd0.5-inc1, with the sampled magnitude capped at 9 (mmax9): at 10 timm's
    # PosterizeIncreasing keeps 0 bits, which Pillow >= 10 rejects ("bits must be between 1 and 8").
    auto_augment: str = "rand-m9-mstd0.5-inc1-mmax9"
    color_jitter: float = 0.4
    re_prob: float = 0.25
    re_mode: str = "pixel"
    re_count: int = 1
    mixup: float = 0.8
    cutmix: float = 1.0
    mixup_prob: float = 1.0
    mixup_switch_prob: float = 0.5
    mixup_mode: str = "batch"
    label_smoothing: float = 0.1

    def mixup_kwargs(self, num_classes: int) -> dict:
        """Keyword arguments of ``timm.data.Mixup`` for a ``num_classes`` head."""
        return {"mixup_alpha": self.mixup, "cutmix_alpha": self.cutmix, "prob": self.mixup_prob,
                "switch_prob": self.mixup_switch_prob, "mode": self.mixup_mode,
                "label_smoothing": self.label_smoothing, "num_classes": num_classes}


def vtab_transform(backbone: Backbone) -> Callable:
    """Resize to exactly the input size (aspect ratio not kept), then normalise: the VTAB-1K protocol."""
    return create_transform(backbone.input_size, is_training=False, crop_pct=1.0, crop_mode="squash",
                            interpolation=backbone.interpolation, mean=backbone.mean, std=backbone.std)


def eval_transform(backbone: Backbone) -> Callable:
    """Resize the shorter side to input/0.875, centre crop to the input size, normalise."""
    return create_transform(backbone.input_size, is_training=False, crop_pct=EVAL_CROP_PCT, crop_mode="center",
                            interpolation=backbone.interpolation, mean=backbone.mean, std=backbone.std)


def train_transform(backbone: Backbone, recipe: FewShotRecipe = FewShotRecipe()) -> Callable:
    """timm's training transform with the recipe's augmentation, at the backbone's input size and mean/std."""
    return create_transform(backbone.input_size, is_training=True, auto_augment=recipe.auto_augment,
                            color_jitter=recipe.color_jitter, re_prob=recipe.re_prob, re_mode=recipe.re_mode,
                            re_count=recipe.re_count, interpolation=backbone.interpolation,
                            mean=backbone.mean, std=backbone.std)
