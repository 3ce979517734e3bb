"""Shared fixtures: tiny timm backbones and helpers to fill support tensors with random values."""

import random

import pytest
import torch

import glora
from glora.models import create_backbone


def randomize_support(model: torch.nn.Module, seed: int = 0, std: float = 0.05) -> None:
    """Give every support tensor random values (a fresh supernet is all zeros in the _d factors)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in glora.glora_layers(model).values():
            for p in layer.support_tensors().values():
                p.copy_(torch.randn(p.shape, generator=gen) * std)


def all_choices(options):
    """Every choice of one layer (the product of its options), in a fixed order."""
    import itertools

    keys = list(options)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(options[k] for k in keys))]


def pretrained_like(name: str, num_classes: int = 7, seed: int = 0) -> torch.nn.Module:
    """A timm backbone in eval mode whose biases and norm affines are not at their init values.

    timm initialises biases to zero and LayerNorm to the identity affine: that hides every b0 ⊙ D
    term, and makes a B vector/scalar after a LayerNorm see sum(x) = 0. Pre-trained models have neither.
    """
    torch.manual_seed(seed)
    model = create_backbone(name, num_classes=num_classes).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear) and m.bias is not None:
                m.bias.normal_(0, 0.02)
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.normal_(1, 0.1)
                m.bias.normal_(0, 0.1)
    return model


@pytest.fixture
def vit_mini():
    return pretrained_like("vit_mini")


@pytest.fixture
def swin_mini():
    return pretrained_like("swin_mini")


@pytest.fixture
def rng():
    return random.Random(1234)
