"""Linear probe: the backbone is frozen, only the new classifier head is trained (Table 1's "Linear probing")."""

from __future__ import annotations

from glora.methods.record import Method


def apply_linear(model) -> list[str]:
    """Freeze everything but the classifier head, in place; returns the trained parameter names."""
    from glora.methods.base import head_parameters

    head = head_parameters(model)
    if not head:
        raise ValueError(f"{type(model).__name__} has no classifier head (timm get_classifier()) to probe")
    model.requires_grad_(False)
    for p in head.values():
        p.requires_grad_(True)
    return list(head)


def merge_linear(model, **_):
    """Nothing to merge: the probed model is already a plain model."""
    return model


LINEAR = Method(name="linear", display="Linear", description="linear probe: a new head on the frozen backbone",
                apply_fn="glora.methods.linear:apply_linear", merge_fn="glora.methods.linear:merge_linear")
