"""Adapter (Houlsby et al., 2019), sequential after the MLP, as the VTAB baselines use it (bottleneck 8):

    h = MLP(LN(x));   h' = h + s · W_up σ(W_down h + b_down) + s · b_up

On ViT-B/16: 12 · (768·8 + 8 + 8·768 + 768) = 156,768 parameters (Table 1: 0.16M). The non-linearity sits
between the projections, so the adapter cannot be folded into the backbone: it costs extra inference
parameters and FLOPs (Table 4).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from glora.methods.base import check_adaptable, family, freeze_backbone, replace_module, trained_names

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


class Bottleneck(nn.Module):
    """``s · up(dropout(act(down(x))))``: (..., dim) -> (..., dim); ``up`` starts at zero (an identity adapter)."""

    def __init__(self, dim: int, bottleneck: int = 8, scale: float = 1.0, act: str = "gelu", dropout: float = 0.0,
                 init: str = "xavier", device=None, dtype=None):
        super().__init__()
        if bottleneck < 1:
            raise ValueError(f"adapter bottleneck must be >= 1, got {bottleneck}")
        if act not in ACTIVATIONS:
            raise ValueError(f"adapter activation {act!r} is not one of {sorted(ACTIVATIONS)}")
        self.down = nn.Linear(dim, bottleneck, device=device, dtype=dtype)
        self.up = nn.Linear(bottleneck, dim, device=device, dtype=dtype)
        self.act, self.dropout, self.scale = ACTIVATIONS[act](), nn.Dropout(dropout), scale
        with torch.no_grad():
            if init == "xavier":
                nn.init.xavier_uniform_(self.down.weight)
            else:  # LoRA-style, as AdaptFormer initialises
                nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
            for t in (self.down.bias, self.up.weight, self.up.bias):
                t.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.dropout(self.act(self.down(x)))) * self.scale


class SequentialAdapter(nn.Module):
    """``mlp`` followed by a residual :class:`Bottleneck` on its output."""

    def __init__(self, mlp: nn.Module, adapter: Bottleneck):
        super().__init__()
        self.mlp, self.adapter = mlp, adapter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.mlp(x)
        return h + self.adapter(h)


def mlp_names(model: nn.Module) -> list[str]:
    """The ``mlp`` module of every transformer block (ViT ``blocks.i.mlp``, Swin ``layers.s.blocks.i.mlp``)."""
    return [n for n, m in model.named_modules() if n.endswith(".mlp") and hasattr(m, "fc1") and hasattr(m, "fc2")]


def apply_adapter(model: nn.Module, *, bottleneck: int, scale: float, act: str, dropout: float) -> list[str]:
    """Add a sequential adapter after every block's MLP, in place."""
    family(model, "Adapter")
    check_adaptable(model, SequentialAdapter)
    freeze_backbone(model)
    for name in mlp_names(model):
        mlp = model.get_submodule(name)
        w = mlp.fc2.weight
        replace_module(model, name, SequentialAdapter(
            mlp, Bottleneck(mlp.fc2.out_features, bottleneck, scale, act, dropout, "xavier", w.device, w.dtype)))
    return trained_names(model)
