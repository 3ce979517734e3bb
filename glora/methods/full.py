"""Full fine-tuning: every parameter of the backbone and the head is trained (Table 1's first row)."""

from __future__ import annotations

from torch import nn


def apply_full(model: nn.Module) -> list[str]:
    """Make every parameter trainable, in place; returns their names."""
    model.requires_grad_(True)
    return [n for n, _ in model.named_parameters()]


def merge_full(model: nn.Module, **_) -> nn.Module:
    """Nothing to merge: a fine-tuned model is a plain model."""
    return model
