"""LoRA (Hu et al., 2022) on the fused qkv projection, as the VTAB baselines use it (NOAH's protocol):

    y = x W0ᵀ + b0 + (α / r) · x Aᵀ Bᵀ,   A (r, in), B (out, r)

Rank 8 on ViT-B/16's 12 qkv layers (768 -> 2304) is 12 · 8 · (768 + 2304) = 294,912 parameters (Table 1's
0.29M). Merged: W = W0 + (α / r) B A. Table 2 (LLMs) adapts the attention projections q, k, v, o of every
decoder layer (``target_modules``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from glora.methods.base import (
    Mergeable,
    block_linears,
    check_adaptable,
    family,
    freeze_backbone,
    merge_wrappers,
    merged_linear,
    replace_module,
    select_linears,
    trained_names,
)


class LoRALinear(Mergeable):
    """``base`` (frozen) plus a rank-``rank`` update; B starts at zero so the layer starts as ``base``."""

    def __init__(self, base: nn.Linear, rank: int = 8, alpha: float | None = None, dropout: float = 0.0):
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {rank}")
        self.base, self.rank = base, rank
        self.scale = (alpha if alpha is not None else rank) / rank
        kw = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, **kw))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, **kw))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (self.dropout(x) @ self.lora_A.t() @ self.lora_B.t()) * self.scale

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        delta = self.scale * (self.lora_B.double() @ self.lora_A.double())
        bias = self.base.bias
        return merged_linear(self.base, self.base.weight.double() + delta, bias)


def apply_lora(model: nn.Module, *, rank: int, alpha: float | None, dropout: float, targets: str,
               target_modules: str | Sequence[str] | None) -> list[str]:
    """Wrap linears with :class:`LoRALinear`: by default the block linears of a timm ViT/Swin matching ``targets``
    (the fused qkv); with ``target_modules`` (a regex, or full or leaf names such as ``["q_proj", "v_proj"]``, see
    :func:`glora.methods.base.select_linears`) those linears of any model, e.g. a Hugging Face causal LM."""
    if target_modules is None:
        family(model, "LoRA")
    check_adaptable(model, LoRALinear)
    names = block_linears(model, targets) if target_modules is None else select_linears(model, target_modules)
    freeze_backbone(model)
    for name in names:
        replace_module(model, name, LoRALinear(model.get_submodule(name), rank, alpha, dropout))
    return trained_names(model)


def merge_lora(model: nn.Module, **_) -> nn.Module:
    """A plain timm model with ``W0 + (α/r) B A`` in every adapted linear."""
    return merge_wrappers(model)
