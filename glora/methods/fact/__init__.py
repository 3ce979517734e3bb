"""FacT (Jie & Deng, 2023): the weight updates of all blocks as one factorised tensor with U, V shared by every
layer, as a tensor-train (FacT-TT) or a Tucker tensor (FacT-TK). The layer: :mod:`.layer`."""

from __future__ import annotations

from dataclasses import dataclass

from glora.methods.record import VIT, Method, option


@dataclass(frozen=True)
class FactOptions:
    """FacT configs/{tt,tk}/<task>.yaml: rank and scale per task (``methods.fact_*.per_task``); dropout 0.1."""

    rank: int = option(16, "rank r of the shared factors U, V (and the cores)")
    scale: float = option(1.0, "factor s on the update")
    dropout: float = option(0.1, "dropout in the rank space while training")


FACT_TT = Method(name="fact_tt", display="FacT-TT",
                 description="FacT-TT: updates of all blocks as a tensor-train with shared U, V", options=FactOptions,
                 apply_fn="glora.methods.fact.layer:apply_fact_tt", merge_fn="glora.methods.fact.layer:merge_fact",
                 backbones=(VIT,))
FACT_TK = Method(name="fact_tk", display="FacT",
                 description="FacT-TK: updates of all blocks as a Tucker tensor with shared U, V", options=FactOptions,
                 apply_fn="glora.methods.fact.layer:apply_fact_tk", merge_fn="glora.methods.fact.layer:merge_fact",
                 backbones=(VIT,))
