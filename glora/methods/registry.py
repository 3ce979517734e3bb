"""PEFT methods by name, as small declarative records (the way timm registers models).

A method adapts a plain backbone in place (``apply``) and, when it can be re-parameterised, turns the
adapted model back into a plain one (``merge``). Search-based methods (GLoRA) train a supernet on
``train800`` and pick a subnet on ``val200``; the others train on ``train800val200``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from glora import weights
from glora.methods import full as _full
from glora.methods import glora as _glora
from glora.methods import linear as _linear


@dataclass(frozen=True)
class Method:
    """One PEFT method: how to adapt a model, merge it, store its trainable weights, and train it.

    ``apply(model, **kwargs)`` adapts in place and returns the adapted names; ``merge(model, **context)``
    returns a plain model with the same outputs (None: the method cannot be merged); ``save(model, path,
    metadata)`` / ``load(model, path)`` write and read the trainable weights; ``train_hooks(model)`` gives the
    ``(before_train, before_eval)`` steps of :class:`glora.train.Hooks` (GLoRA: path sampling).
    """

    name: str
    apply: Callable[..., list[str]]
    merge: Callable[..., nn.Module] | None
    search_based: bool
    description: str
    save: Callable[..., None] = weights.save_trainable
    load: Callable[..., dict] = weights.load_trainable
    train_hooks: Callable[[nn.Module], tuple[Callable, Callable]] | None = None


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
    name="full", apply=_full.apply_full, merge=_full.merge_full, search_based=False,
    description="full fine-tuning: every backbone parameter and the head"))
register_method(Method(
    name="linear", apply=_linear.apply_linear, merge=_linear.merge_linear, search_based=False,
    description="linear probe: a new head on the frozen backbone"))
register_method(Method(
    name="glora", apply=_glora.apply_glora,
    merge=_glora.merge_glora, search_based=True,
    description="Generalized LoRA: W0 + W0⊙A + B, b0 + b0⊙D + E + W0·C, layer-wise searched (Eq. 10)",
    save=_glora.save_supernet, load=_glora.load_supernet, train_hooks=_glora.supernet_hooks))
