"""SSF (Lian et al., 2022): scale and shift the features after the patch embedding, the norms and the block
linears; folded into them on merging. The layer: :mod:`.layer`."""

from __future__ import annotations

from dataclasses import dataclass

from glora.methods.record import Method, option


@dataclass(frozen=True)
class SsfOptions:
    """SSF models/vision_transformer.py: scale ~ N(1, init_std), shift ~ N(0, init_std)."""

    init_std: float = option(0.02, "standard deviation of the initial scales and shifts")


SSF = Method(
    name="ssf", display="SSF",
    description="SSF: scale and shift after the patch embedding, the norms and the block linears", options=SsfOptions,
    apply_fn="glora.methods.ssf.layer:apply_ssf", merge_fn="glora.methods.ssf.layer:merge_ssf",
    param_note="SSF's 0.24M includes the classifier head: 0.21M of scales and shifts plus the mean VTAB-1K head "
               "(49.5 classes x 769 = 0.04M)")
