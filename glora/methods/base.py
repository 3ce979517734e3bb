"""What the PEFT methods share: module replacement, freezing, model families, and merging wrappers away.

A method that can be re-parameterised wraps the layers it adapts in a :class:`Mergeable` module whose
``merged()`` returns the plain layer (same class and shapes as the one it wrapped) with the adapter folded
into its weights; :func:`merge_wrappers` turns a whole adapted model back into a plain timm model that way.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Sequence

import torch
from torch import nn

#: timm model families the methods know how to adapt; names of their block-level linears
LINEARS = {
    "VisionTransformer": r"blocks\.\d+\.(attn\.(qkv|proj)|mlp\.(fc1|fc2))",
    "SwinTransformer": r"layers\.\d+\.blocks\.\d+\.(attn\.(qkv|proj)|mlp\.(fc1|fc2))",
}


def family(model: nn.Module, method: str, supported: Iterable[str] = tuple(LINEARS)) -> str:
    """The timm family of ``model`` (class name); a ``ValueError`` if ``method`` does not support it."""
    name = type(model).__name__
    supported = tuple(supported)
    if name not in supported:
        raise ValueError(f"{method} adapts {', '.join(supported)} models, not a {name}")
    return name


def head_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The classifier head's parameters by full name (timm's ``get_classifier()``), else empty."""
    get = getattr(model, "get_classifier", None)
    head = get() if callable(get) else None
    if not isinstance(head, nn.Module):
        return {}
    ids = {id(p) for p in head.parameters()}
    return {n: p for n, p in model.named_parameters() if id(p) in ids}


def head_modules(model: nn.Module) -> set[str]:
    """Full names of the classifier head's modules (timm's ``get_classifier()``)."""
    get = getattr(model, "get_classifier", None)
    head = get() if callable(get) else None
    ids = {id(m) for m in head.modules()} if isinstance(head, nn.Module) else set()
    return {n for n, m in model.named_modules() if id(m) in ids}


def freeze_backbone(model: nn.Module) -> None:
    """Freeze every parameter but the classifier head's (what every PEFT method starts from)."""
    model.requires_grad_(False)
    for p in head_parameters(model).values():
        p.requires_grad_(True)


def trained_names(model: nn.Module) -> list[str]:
    """Names of the trainable parameters (what ``apply`` functions return)."""
    return [n for n, p in model.named_parameters() if p.requires_grad]


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` at dotted ``name`` in ``model``."""
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


def block_linears(model: nn.Module, pattern: str) -> list[str]:
    """Names of the ``nn.Linear`` modules of the model's blocks whose name matches ``pattern`` in full;
    ``pattern`` is applied after :data:`LINEARS` (e.g. ``r".*\\.qkv"``)."""
    blocks = re.compile(LINEARS[type(model).__name__])
    want = re.compile(pattern)
    names = [n for n, m in model.named_modules()
             if isinstance(m, nn.Linear) and blocks.fullmatch(n) and want.fullmatch(n)]
    if not names:
        raise ValueError(f"no block linear of the {type(model).__name__} matches {pattern!r}")
    return names


def select_linears(model: nn.Module, target_modules: str | Sequence[str]) -> list[str]:
    """Names (module order) of the ``nn.Linear`` modules of any model that ``target_modules`` picks.

    A string is a regex matched in full against module names (``r"blocks\\.\\d+\\.attn\\.qkv"``); a list holds
    module names, each either a full name or a leaf name that picks every linear called so
    (``["q_proj", "v_proj"]`` in a Hugging Face LLaMA). A ``ValueError`` names what matched nothing.
    """
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if isinstance(target_modules, str):
        pattern = re.compile(target_modules)
        names = [n for n in linears if pattern.fullmatch(n)]
        if not names:
            raise ValueError(f"no nn.Linear in the {type(model).__name__} matches {target_modules!r}")
        return names
    wanted = list(target_modules)
    if not wanted:
        raise ValueError("target_modules is empty: name the nn.Linear modules to adapt")
    picks = {w: [n for n in linears if n == w or n.endswith(f".{w}")] for w in wanted}
    missing = [w for w, found in picks.items() if not found]
    if missing:
        raise ValueError(f"target_modules must name nn.Linear modules of the model (full or leaf names); not found: "
                         f"{missing}")
    chosen = {n for found in picks.values() for n in found}
    return [n for n in linears if n in chosen]


def check_adaptable(model: nn.Module, wrapper: type) -> None:
    """Refuse to adapt a model twice with the same method."""
    if any(isinstance(m, wrapper) for m in model.modules()):
        raise ValueError(f"the model already has {wrapper.__name__} modules; apply a method to a plain model")


class Mergeable(nn.Module):
    """A wrapped layer that folds into a plain layer: ``merged()`` returns it (computed in float64)."""

    def merged(self) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError


@torch.no_grad()
def merge_wrappers(model: nn.Module, drop: Iterable[str] = ()) -> nn.Module:
    """A new plain model: ``model`` with every :class:`Mergeable` replaced by its ``merged()`` layer and the
    attributes ``drop`` (shared adapter tensors) removed. The input model is left untouched; every parameter
    of the result is trainable, as in a fresh timm model."""
    plain = copy.deepcopy(model)
    wrappers = [(n, m) for n, m in plain.named_modules() if isinstance(m, Mergeable)]
    if not wrappers:
        raise ValueError("the model has no adapted layers to merge")
    for name, module in wrappers:
        if not any(name.startswith(f"{other}.") for other, _ in wrappers):  # outermost wrappers only
            replace_module(plain, name, module.merged())
    for name in drop:
        delattr(plain, name)
    return plain.requires_grad_(True)


def merged_linear(base: nn.Linear, weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    """A copy of ``base`` (its class, device and dtype) holding ``weight`` and ``bias``; a bias is added when
    the merge produced one and ``base`` had none."""
    out = nn.Linear(base.in_features, base.out_features, bias=bias is not None,
                    device=base.weight.device, dtype=base.weight.dtype)
    out.weight.copy_(weight.to(base.weight.dtype))
    if bias is not None:
        out.bias.copy_(bias.to(base.weight.dtype))
    return out
