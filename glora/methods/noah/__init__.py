"""NOAH (Zhang et al., 2022): a supernet of prompts, LoRA and adapters, searched per layer, and the subnet found
retrained from the backbone. The layers, search space and hooks: :mod:`.layer`."""

from __future__ import annotations

from dataclasses import dataclass

from glora.methods.record import VIT, Method, option


@dataclass(frozen=True)
class NoahOptions:
    """NOAH experiments/NOAH/supernet/supernet-B_prompt_VPT.yaml; its search cap is ``methods.noah.budget_m``."""

    dims: list[int] = option([1, 5, 10], "sizes each module may take besides none (prompt length, rank, width)")
    dropout: float = option(0.1, "dropout of prompts, LoRA and adapters while training")


NOAH = Method(
    name="noah", display="NOAH",
    description="NOAH: a supernet of prompts, LoRA and adapters, searched per layer, the subnet retrained",
    options=NoahOptions, apply_fn="glora.methods.noah.layer:apply_noah", backbones=(VIT,), search_based=True,
    retrain=True, hooks_fn="glora.methods.noah.layer:noah_hooks", space_fn="glora.methods.noah.layer:noah_space",
    scorer_fn="glora.methods.noah.layer:noah_scorer",
    pipeline={"subnet": "NOAH's subnet comes from its search (train --choices)"})
