"""Adapter (Houlsby et al., 2019): a sequential bottleneck after every block's MLP. The layer: :mod:`.layer`."""

from __future__ import annotations

from dataclasses import dataclass

from glora.methods.record import Method, option


@dataclass(frozen=True)
class AdapterOptions:
    """NOAH experiments/Adapter/ViT-B_prompt_adapter_8.yaml: bottleneck 8 after the MLP."""

    bottleneck: int = option(8, "width of the bottleneck")
    scale: float = option(1.0, "factor s on the adapter's output")
    act: str = option("gelu", "activation between the projections: gelu or relu")
    dropout: float = option(0.0, "dropout between the projections while training")


ADAPTER = Method(name="adapter", display="Adapter", description="Adapter: a sequential bottleneck after every MLP",
                 options=AdapterOptions, apply_fn="glora.methods.adapter.layer:apply_adapter")
