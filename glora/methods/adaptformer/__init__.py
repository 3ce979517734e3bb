"""AdaptFormer (Chen et al., 2022): a scaled bottleneck parallel to every block's MLP. The layer: :mod:`.layer`."""

from __future__ import annotations

from dataclasses import dataclass

from glora.methods.record import Method, option


@dataclass(frozen=True)
class AdaptFormerOptions:
    """AdaptFormer models/adapter.py, the VTAB setting (as the FacT paper runs it)."""

    bottleneck: int = option(8, "width of the bottleneck")
    scale: float = option(0.1, "factor s on the branch's output")
    dropout: float = option(0.1, "dropout between the projections while training")


ADAPTFORMER = Method(name="adaptformer", display="AdaptFormer",
                     description="AdaptFormer: a scaled bottleneck parallel to every MLP", options=AdaptFormerOptions,
                     apply_fn="glora.methods.adaptformer.layer:apply_adaptformer")
