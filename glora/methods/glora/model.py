"""GLoRA on whole models: which linears are adapted, fixing or sampling every layer's path, the supernet's
training hooks, and structural re-parameterisation (Eq. 12-14) into a plain model -- one copy
(:func:`merge_glora`) or many subnets written into one re-used model (:class:`SubnetMerger`, what the search
scores)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Literal

import torch
from torch import nn

from glora.methods.base import LINEARS, freeze_backbone, replace_module, select_linears
from glora.methods.glora.layer import GLoRALinear
from glora.methods.glora.options import validate_ranks
from glora.search_space import SearchSpace, check_choices

#: Default target linears per timm family (regex, full match on the module name): ViT-B/16 adapts
#: qkv, proj, fc1, fc2 of every block (48 layers); Swin adapts every linear in its blocks and the
#: patch-merging reductions (appendix C).
TARGETS = {
    "VisionTransformer": LINEARS["VisionTransformer"],
    "SwinTransformer": r"layers\.\d+\.(blocks\.\d+\..+|downsample\.reduction)",
}


def _target_names(model: nn.Module, target_modules: str | Sequence[str] | None) -> list[str]:
    if target_modules is None:
        family = type(model).__name__
        if family not in TARGETS:
            raise ValueError(f"no default GLoRA targets for a {family}; pass target_modules= (a regex or a "
                             f"list of nn.Linear names). Known families: {sorted(TARGETS)}")
        target_modules = TARGETS[family]
    return select_linears(model, target_modules)


def glora_layers(model: nn.Module) -> dict[str, GLoRALinear]:
    """The model's GLoRA layers, name -> layer, in module order."""
    return {n: m for n, m in model.named_modules() if isinstance(m, GLoRALinear)}


def apply_glora(model: nn.Module, ranks: Sequence[int] = (8, 4),
                target_modules: str | Sequence[str] | None = None) -> list[str]:
    """Wrap the target linears of ``model`` in place with :class:`GLoRALinear`.

    Freezes everything but the support tensors and the classifier head. ``target_modules``
    (a regex matched in full against module names, or a list of full or leaf names such as
    ``["q_proj", "k_proj", "v_proj", "o_proj"]`` for a Hugging Face LLaMA) defaults to
    :data:`TARGETS` for the model's family. Returns the adapted module names in module order.
    """
    ranks = validate_ranks(ranks)
    if glora_layers(model):
        raise ValueError("the model already has GLoRA layers; apply_glora works on a plain model")
    names = _target_names(model, target_modules)
    freeze_backbone(model)
    for name in names:
        replace_module(model, name, GLoRALinear(model.get_submodule(name), ranks))
    return names


def layers_or_raise(model: nn.Module) -> dict[str, GLoRALinear]:
    layers = glora_layers(model)
    if not layers:
        raise ValueError("the model has no GLoRA layers: call glora.apply_glora(model) first")
    return layers


def set_choices(model: nn.Module, choices: Mapping[str, Mapping[str, str]] | None) -> None:
    """Fix every GLoRA layer's path (``choices``: name -> choice), or None: sample per forward."""
    layers = layers_or_raise(model)
    if choices is None:
        for layer in layers.values():
            layer.set_choice(None)
        return
    for name, choice in check_choices(layers, choices).items():
        layers[name].set_choice(choice)


def set_impl(model: nn.Module, impl: Literal["fast", "reference"]) -> None:
    """Switch every GLoRA layer between the fast forward and the plain formula (benchmarks)."""
    if impl not in ("fast", "reference"):
        raise ValueError(f"impl must be 'fast' or 'reference', got {impl!r}")
    for layer in layers_or_raise(model).values():
        layer.impl = impl


def supernet_hooks(model: nn.Module):
    """``(before_train, before_eval)`` for :func:`glora.fit.fit`: supernet training samples a path per layer
    per forward from the epoch's generator; validation fixes one random subnet drawn from its generator."""
    layers = layers_or_raise(model)

    def before_train(generator: torch.Generator) -> None:
        for layer in layers.values():
            layer.set_choice(None)
            layer.generator = generator

    def before_eval(generator: torch.Generator) -> None:
        for layer in layers.values():
            layer.set_choice(layer.sample_choice(generator))

    return before_train, before_eval


@torch.no_grad()
def merge_glora(model: nn.Module, choices: Mapping[str, Mapping[str, str]]) -> nn.Module:
    """Structural re-parameterisation (Eq. 12-14): a new plain model equal to the subnet.

    Every GLoRA layer becomes an ``nn.Linear`` with W_uni, b_uni; the input model (its choices
    included) is left untouched. All parameters of the result are trainable, as in a fresh timm model.
    """
    layers = layers_or_raise(model)
    choices = check_choices(layers, choices)
    saved = {n: layer.choice for n, layer in layers.items()}
    try:
        merged = {}
        for name, layer in layers.items():
            layer.set_choice(choices[name])
            merged[name] = layer.merged()
    finally:
        for name, layer in layers.items():
            layer.choice = saved[name]
    memo = {id(layer): merged[name] for name, layer in layers.items()}  # don't copy support tensors
    plain = copy.deepcopy(model, memo)
    plain.requires_grad_(True)
    return plain


class SubnetMerger:
    """Merges subnets of one supernet into one re-used plain model: what the evolutionary search scores.

    ``merger(choices)`` writes W_uni, b_uni of every adapted layer into :attr:`plain` (built once, with a
    bias on every adapted linear) and returns it, so a candidate costs one merge plus one plain evaluation
    pass instead of a copy of the backbone. The merge is computed in the weights' dtype (float32 for
    half-precision weights): W0 + (W0 ⊙ A + B) then differs from the float64 merge of :func:`merge_glora`
    by at most about one rounding of W_uni, which cannot change a ranking of subnets.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.layers = layers_or_raise(model)
        with_bias = {n: {"A": "none", "B": "none", "C": "none", "D": "none", "E": "vector"} for n in self.layers}
        self.plain = merge_glora(model, with_bias).eval().requires_grad_(False)
        self.targets = {n: self.plain.get_submodule(n) for n in self.layers}

    @torch.no_grad()
    def __call__(self, choices: Mapping[str, Mapping[str, str]]) -> nn.Module:
        choices = check_choices(self.layers, choices)
        for name, layer in self.layers.items():
            dtype = torch.float32 if layer.weight.dtype in (torch.float16, torch.bfloat16) else layer.weight.dtype
            weight, bias = layer.merged_tensors(choices[name], compute_dtype=dtype)
            target = self.targets[name]
            target.weight.copy_(weight)
            target.bias.copy_(bias) if bias is not None else target.bias.zero_()
        return self.plain


def glora_space(model: nn.Module) -> SearchSpace:
    """The search space of a model adapted by :func:`apply_glora` (the record's ``search_space``)."""
    layers_or_raise(model)
    return SearchSpace.from_model(model)


def space_of(backbone: str, ranks: Sequence[int], target_modules: str | Sequence[str] | None = None) -> SearchSpace:
    """The GLoRA search space of ``backbone`` adapted with ``ranks``, built on the meta device: the layer shapes
    without weights or memory (appendix E's table, Figure 3, ``python -m glora space``)."""
    from glora.models import create_backbone

    with torch.device("meta"):
        model = create_backbone(backbone, num_classes=10)
        apply_glora(model, ranks, target_modules)
    return SearchSpace.from_model(model)
