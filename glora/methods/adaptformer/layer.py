"""AdaptFormer (Chen et al., 2022): a scaled bottleneck parallel to every block's MLP (bottleneck 8, scale 0.1,
ReLU, no LayerNorm in the branch -- the VTAB setting):

    x' = x + MLP(LN(x)) + s · W_up ReLU(W_down x + b_down) + s · b_up

The branch reads the block's residual stream x, as in the AdaptFormer code, not the normalised MLP input:
the block's ``norm2`` is moved inside the wrapper (``norm2`` becomes an identity) so that one module sees
both. 156,768 parameters on ViT-B/16 (Table 1: 0.16M); not mergeable (Table 4 lists its overhead).
"""

from __future__ import annotations

import torch
from torch import nn

from glora.methods.adapter.layer import Bottleneck, mlp_names
from glora.methods.base import check_adaptable, family, freeze_backbone, trained_names


class ParallelAdapter(nn.Module):
    """``mlp(norm(x)) + adapter(x)``: replaces a block's ``mlp`` while its ``norm2`` becomes an identity."""

    def __init__(self, norm: nn.Module, mlp: nn.Module, adapter: Bottleneck):
        super().__init__()
        self.norm, self.mlp, self.adapter = norm, mlp, adapter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.norm(x)) + self.adapter(x)


def apply_adaptformer(model: nn.Module, *, bottleneck: int, scale: float, dropout: float) -> list[str]:
    """Add an AdaptFormer branch to every block, in place."""
    family(model, "AdaptFormer")
    check_adaptable(model, ParallelAdapter)
    freeze_backbone(model)
    for name in mlp_names(model):
        block_name = name.rpartition(".")[0]
        block = model.get_submodule(block_name)
        mlp, w = block.mlp, block.mlp.fc1.weight
        adapter = Bottleneck(mlp.fc1.in_features, bottleneck, scale, "relu", dropout, "kaiming", w.device, w.dtype)
        block.mlp = ParallelAdapter(block.norm2, mlp, adapter)
        block.norm2 = nn.Identity()
    return trained_names(model)
