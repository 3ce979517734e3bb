"""Full fine-tuning: every parameter of the backbone and the head is trained (Table 1's first row)."""

from __future__ import annotations

from glora.methods.record import Method


def apply_full(model) -> list[str]:
    """Make every parameter trainable, in place; returns their names."""
    model.requires_grad_(True)
    return [n for n, _ in model.named_parameters()]


def merge_full(model, **_):
    """Nothing to merge: a fine-tuned model is a plain model."""
    return model


FULL = Method(name="full", display="Full", description="full fine-tuning: every backbone parameter and the head",
              apply_fn="glora.methods.full:apply_full", merge_fn="glora.methods.full:merge_full")
