"""BitFit (Zaken et al., 2022): only the bias terms are trained -- every bias of the backbone, LayerNorm's
included, plus the new head. On ViT-B/16 that is 102,912 parameters (Table 1: 0.10M)."""

from __future__ import annotations

from glora.methods.record import Method


def apply_bitfit(model) -> list[str]:
    """Make every non-head ``*.bias`` parameter trainable, in place; returns the trained names."""
    from glora.methods.base import family, freeze_backbone, head_parameters, trained_names

    family(model, "BitFit")
    freeze_backbone(model)
    head = set(head_parameters(model))
    for name, p in model.named_parameters():
        if name.rsplit(".", 1)[-1] == "bias" and name not in head:
            p.requires_grad_(True)
    return trained_names(model)


def merge_bitfit(model, **_):
    """Nothing to fold: the tuned biases are the plain model's biases."""
    return model


BITFIT = Method(name="bitfit", display="BitFit", description="BitFit: every bias (LayerNorm's included) and the head",
                apply_fn="glora.methods.bitfit:apply_bitfit", merge_fn="glora.methods.bitfit:merge_bitfit")
