"""RepAdapter (Luo et al., 2023): a linear adapter before the attention and the MLP, folded into them on
merging. The layer: :mod:`.layer`."""

from __future__ import annotations

from dataclasses import dataclass

from glora.methods.record import Method, option


@dataclass(frozen=True)
class RepAdapterOptions:
    """RepAdapter configs/repblock/<task>.yaml: dim 8, groups 2, dropout 0.1; scale per task."""

    dim: int = option(8, "width of the adapter")
    groups: int = option(2, "groups of the up projection")
    scale: float = option(1.0, "factor s on the adapter's output")
    dropout: float = option(0.1, "dropout between the projections while training")


REPADAPTER = Method(
    name="repadapter", display="RepAdapter",
    description="RepAdapter: linear adapters before the attention and the MLP, folded into them",
    options=RepAdapterOptions, apply_fn="glora.methods.repadapter.layer:apply_repadapter",
    merge_fn="glora.methods.repadapter.layer:merge_repadapter",
    param_note="RepAdapter's 0.22M counts the projection weights only (221,184); with their biases, which fold "
               "into the backbone's on merging, it trains 239,808")
