"""RepAdapter (Luo et al., 2023): a linear adapter before the attention and the MLP, folded into them.

Placed on the normalised input of every block's qkv and fc1 linears (dimension 8, 2 groups in the up
projection, dropout 0.1 between the projections while training)::

    x' = x + s · (W_B (W_A x + a) + b)      W_A (8, D), W_B (D, 8) block-diagonal in 2 groups

so ``base(x') = (W0 (I + s W_B W_A)) x + W0 s (W_B a + b) + b0`` (Eq. 6 of the RepAdapter paper).
On ViT-B/16, 24 adapters of 768·8 + 8 + 768·4 + 768 = 9,992 parameters: 239,808 (0.24M). Table 1's 0.22M
is 221,184, the projection weights alone: the RepAdapter paper does not count the biases, which vanish into
the backbone's biases on merging.
"""

from __future__ import annotations

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
    trained_names,
)


class RepAdapterLinear(Mergeable):
    """``base(x + s · B(dropout(A(x))))`` with a grouped B; starts as ``base`` (B is zero)."""

    def __init__(self, base: nn.Linear, dim: int = 8, groups: int = 2, scale: float = 1.0, dropout: float = 0.1):
        super().__init__()
        d = base.in_features
        if dim % groups or d % groups:
            raise ValueError(f"RepAdapter dim {dim} and width {d} must both be divisible by groups={groups}")
        kw = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.base, self.groups, self.scale = base, groups, scale
        self.adapter_A = nn.Linear(d, dim, **kw)
        self.weight_B = nn.Parameter(torch.zeros(d, dim // groups, **kw))  # conv1d(dim, d, 1, groups) weight
        self.bias_B = nn.Parameter(torch.zeros(d, **kw))
        nn.init.xavier_uniform_(self.adapter_A.weight)
        nn.init.zeros_(self.adapter_A.bias)
        self.dropout = nn.Dropout(dropout)

    def dense_B(self) -> torch.Tensor:
        """The up projection as a dense (d, dim) block-diagonal matrix."""
        g = self.groups
        d, k = self.weight_B.shape
        blocks = self.weight_B.view(g, d // g, k)
        return torch.block_diag(*blocks.unbind(0))

    def adapt(self, x: torch.Tensor) -> torch.Tensor:
        z = self.dropout(self.adapter_A(x))
        g = self.groups
        d, k = self.weight_B.shape
        up = torch.einsum("...gk,gok->...go", z.unflatten(-1, (g, k)), self.weight_B.view(g, d // g, k))
        return x + (up.flatten(-2) + self.bias_B) * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(self.adapt(x))

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        w0 = self.base.weight.double()
        b_dense, a = self.dense_B().double(), self.adapter_A.weight.double()
        weight = w0 + self.scale * (w0 @ b_dense @ a)
        shift = self.scale * (b_dense @ self.adapter_A.bias.double() + self.bias_B.double())
        bias = w0 @ shift + (self.base.bias.double() if self.base.bias is not None else 0.0)
        return merged_linear(self.base, weight, bias)


def apply_repadapter(model: nn.Module, *, dim: int, groups: int, scale: float, dropout: float) -> list[str]:
    """Put a RepAdapter on the input of every block's qkv and fc1, in place."""
    family(model, "RepAdapter")
    check_adaptable(model, RepAdapterLinear)
    freeze_backbone(model)
    for name in block_linears(model, r".*\.(qkv|fc1)"):
        replace_module(model, name, RepAdapterLinear(model.get_submodule(name), dim, groups, scale, dropout))
    return trained_names(model)


def merge_repadapter(model: nn.Module, **_) -> nn.Module:
    """A plain timm model: every adapter folded into the qkv / fc1 after it."""
    return merge_wrappers(model)
