"""Visual Prompt Tuning (Jia et al., 2022) on a timm ViT: learnable prompt tokens in the token sequence.

VPT-Shallow inserts ``length`` prompts after the class token before the first block (``length · D``
parameters); VPT-Deep gives every block its own prompts, which replace the previous block's
(``depth · length · D``: 12 · 768 · L on ViT-B/16). The prompts are removed again after the last block, so the
final norm and the pooling see the original tokens. Prompt lengths are per task (``methods.vpt_deep.per_task``
in the configuration). Prompts lengthen the sequence, so VPT cannot be merged: it costs inference FLOPs
(Table 4). Swin is not supported: VPT's Swin variant prompts every attention window, a different design.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from glora.methods.base import family, freeze_backbone, trained_names


class PromptedBlock(nn.Module):
    """A ViT block with prompts: inserted after the prefix tokens (first block) or replacing the previous
    block's prompts (deep), and stripped after the block when ``strip``. x: (B, N, D) -> (B, N[+L], D)."""

    def __init__(self, block: nn.Module, prompt: nn.Parameter | None, length: int, prefix: int, insert: bool,
                 strip: bool, dropout: float):
        super().__init__()
        self.block, self.prompt, self.length, self.prefix = block, prompt, length, prefix
        self.insert, self.strip, self.dropout = insert, strip, nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        p, n = self.prefix, self.length
        if self.prompt is not None:
            prompt = self.dropout(self.prompt).unsqueeze(0).expand(x.shape[0], -1, -1).to(x.dtype)
            rest = x[:, p:] if self.insert else x[:, p + n:]
            x = torch.cat([x[:, :p], prompt, rest], dim=1)
        x = self.block(x, *args, **kwargs)
        return torch.cat([x[:, :p], x[:, p + n:]], dim=1) if self.strip else x


def apply_vpt(model: nn.Module, length: int, deep: bool, dropout: float) -> list[str]:
    """Wrap ``model.blocks`` with prompts of ``length`` tokens (every block when ``deep``), in place."""
    family(model, "VPT", ("VisionTransformer",))
    if length < 1:
        raise ValueError(f"VPT prompt length must be >= 1, got {length}")
    if any(isinstance(b, PromptedBlock) for b in model.blocks):
        raise ValueError("the model already has prompts; apply VPT to a plain model")
    freeze_backbone(model)
    dim, depth, prefix = model.embed_dim, len(model.blocks), model.num_prefix_tokens
    patch = model.patch_embed.patch_size
    bound = math.sqrt(6.0 / (3 * patch[0] * patch[1] + dim))  # VPT's xavier-uniform over the patch projection
    w = model.cls_token if model.cls_token is not None else next(model.parameters())
    for i in range(depth):
        prompt = None
        if i == 0 or deep:
            prompt = nn.Parameter(torch.empty(length, dim, device=w.device, dtype=w.dtype).uniform_(-bound, bound))
        model.blocks[i] = PromptedBlock(model.blocks[i], prompt, length, prefix, insert=i == 0,
                                        strip=i == depth - 1, dropout=dropout)
    return trained_names(model)


def apply_vpt_shallow(model: nn.Module, *, length: int, dropout: float) -> list[str]:
    """VPT-Shallow: prompts before the first block only."""
    return apply_vpt(model, length, deep=False, dropout=dropout)


def apply_vpt_deep(model: nn.Module, *, length: int, dropout: float) -> list[str]:
    """VPT-Deep: new prompts at every block."""
    return apply_vpt(model, length, deep=True, dropout=dropout)
