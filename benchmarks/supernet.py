"""What the benchmarks share: a GLoRA supernet with the values of a trained one."""

from __future__ import annotations

import torch

import glora


@torch.no_grad()
def trained_like(model: torch.nn.Module, std: float = 0.01, generator: torch.Generator | None = None) -> None:
    """Draw every trainable support tensor from N(0, std): a fresh supernet is all zeros in its ``_d`` factors,
    which would time (and check) paths that add nothing."""
    for layer in glora.glora_layers(model).values():
        for p in layer.support_tensors().values():
            if p.requires_grad:
                p.normal_(0, std, generator=generator)
