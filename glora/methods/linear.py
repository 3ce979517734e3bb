"""Linear probe: the backbone is frozen, only the new classifier head is trained (Table 1's "Linear probing")."""

from __future__ import annotations

from torch import nn

from glora.methods.base import head_parameters


def apply_linear(model: nn.Module) -> list[str]:
    """Freeze everything but the classifier head, in place; returns the trained parameter names."""
    head = head_parameters(model)
    if not head:
        raise ValueError(f"{type(model).__name__} has no classifier head (timm get_classifier()) to probe")
    model.requires_grad_(False)
    for p in head.values():
        p.requires_grad_(True)
    return list(head)


def merge_linear(model: nn.Module, **_) -> nn.Module:
    """Nothing to merge: the probed model is already a plain model."""
    return model
