"""PEFT methods by name, as small declarative records (the way timm registers models).

A method adapts a plain backbone in place (``apply``) and, when it can be re-parameterised,
turns the adapted model back into a plain one (``merge``). Search-based methods (GLoRA) train a
supernet on ``train800`` and pick a subnet on ``val200``; the others train on ``train800val200``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from glora.methods import glora as _glora


@dataclass(frozen=True)
class Method:
    """One PEFT method: how to adapt a model, how to merge it, and how it is trained."""

    name: str
    apply: Callable[..., list[str]]
    merge: Callable[..., nn.Module] | None
    search_based: bool
    description: str


METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    """Add ``method`` to :data:`METHODS`; names are unique."""
    if method.name in METHODS:
        raise ValueError(f"method {method.name!r} is already registered")
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    """The record for ``name``; a ``ValueError`` lists the registered names."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; registered: {sorted(METHODS)}") from None


register_method(Method(
    name="glora", apply=_glora.apply_glora, merge=_glora.merge_glora, search_based=True,
    description="Generalized LoRA: W0 + W0⊙A + B, b0 + b0⊙D + E + W0·C, layer-wise searched (Eq. 10)"))
