"""SSF (Lian et al., 2022): scale and shift the features after a layer, ``y = γ ⊙ f(x) + β``.

Applied after the patch embedding, every LayerNorm (the final one included), and the qkv, proj, fc1 and fc2
linears of every block. On ViT-B/16: 2 · (768 + 12 · 8,448 + 768) = 205,824 parameters (0.21M). Table 1's
0.24M is SSF's own count, which includes the classifier head: the mean VTAB head (49.5 classes · 769) adds
0.04M. Merged (Eq. 5 of the SSF paper): W = γ ⊙ W0 (row-wise), b = γ ⊙ b0 + β, for linears, LayerNorms
and the patch-embedding convolution alike.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from glora.methods.base import (
    LINEARS,
    Mergeable,
    check_adaptable,
    family,
    freeze_backbone,
    head_modules,
    merge_wrappers,
    replace_module,
    trained_names,
)


class SSFLayer(Mergeable):
    """``base`` followed by a per-channel scale and shift (channel dim: last, or 1 for a Conv2d)."""

    def __init__(self, base: nn.Module, channels: int, init_std: float = 0.02):
        super().__init__()
        self.base = base
        kw = {"device": next(base.parameters()).device, "dtype": next(base.parameters()).dtype}
        self.ssf_scale = nn.Parameter(torch.empty(channels, **kw).normal_(1.0, init_std))
        self.ssf_shift = nn.Parameter(torch.empty(channels, **kw).normal_(0.0, init_std))
        self.channel_dim = 1 if isinstance(base, nn.Conv2d) else -1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        if self.channel_dim == 1:
            return y * self.ssf_scale[:, None, None] + self.ssf_shift[:, None, None]
        return y * self.ssf_scale + self.ssf_shift

    @torch.no_grad()
    def merged(self) -> nn.Module:
        import copy

        plain = copy.deepcopy(self.base)
        scale, shift = self.ssf_scale.double(), self.ssf_shift.double()
        weight = plain.weight.double()
        plain.weight.copy_(weight * scale.view(-1, *[1] * (weight.dim() - 1)))
        bias = plain.bias.double() if plain.bias is not None else torch.zeros_like(shift)
        if plain.bias is None:
            plain.bias = nn.Parameter(torch.zeros_like(self.ssf_shift))
        plain.bias.copy_(bias * scale + shift)
        return plain


def ssf_targets(model: nn.Module) -> list[str]:
    """The patch-embedding convolution, every LayerNorm outside the head, and the blocks' qkv/proj/fc1/fc2."""
    linears = re.compile(LINEARS[type(model).__name__])
    head = head_modules(model)
    names = ["patch_embed.proj"]
    for name, module in model.named_modules():
        if (isinstance(module, nn.LayerNorm) and module.elementwise_affine and name not in head) or \
                (isinstance(module, nn.Linear) and linears.fullmatch(name)):
            names.append(name)
    return names


def apply_ssf(model: nn.Module, *, init_std: float) -> list[str]:
    """Wrap every :func:`ssf_targets` layer in :class:`SSFLayer`, in place."""
    family(model, "SSF")
    check_adaptable(model, SSFLayer)
    freeze_backbone(model)
    for name in ssf_targets(model):
        module = model.get_submodule(name)
        channels = module.out_channels if isinstance(module, nn.Conv2d) else (
            module.out_features if isinstance(module, nn.Linear) else module.normalized_shape[0])
        replace_module(model, name, SSFLayer(module, channels, init_std))
    return trained_names(model)


def merge_ssf(model: nn.Module, **_) -> nn.Module:
    """A plain timm model with every scale and shift folded into the layer before it."""
    return merge_wrappers(model)
