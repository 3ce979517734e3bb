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
from glora.errors import ConfigError
from glora.methods import adapter as _adapter
from glora.methods import adaptformer as _adaptformer
from glora.methods import bitfit as _bitfit
from glora.methods import fact as _fact
from glora.methods import full as _full
from glora.methods import glora as _glora
from glora.methods import linear as _linear
from glora.methods import lora as _lora
from glora.methods import noah as _noah
from glora.methods import repadapter as _repadapter
from glora.methods import ssf as _ssf
from glora.methods import vpt as _vpt


@dataclass(frozen=True)
class Method:
    """One PEFT method: how to adapt a model, merge it, store its trainable weights, and train it.

    ``apply(model, **kwargs)`` adapts in place and returns the adapted names; ``merge(model, **context)``
    returns a plain model with the same outputs (None: the method cannot be merged); ``save(model, path,
    metadata)`` / ``load(model, path)`` write and read the trainable weights; ``train_hooks(model)`` gives the
    ``(before_train, before_eval)`` steps of :class:`glora.train.Hooks` (GLoRA: path sampling).
    A search-based method also gives ``search_space(model)`` (a :class:`glora.search_space.SearchSpace`)
    and ``scorer(model)`` (``choices -> module`` to evaluate); ``retrain``: the subnet found is trained
    again from the backbone (NOAH) instead of being merged from the supernet (GLoRA).
    """

    name: str
    apply: Callable[..., list[str]]
    merge: Callable[..., nn.Module] | None
    search_based: bool
    description: str
    save: Callable[..., None] = weights.save_trainable
    load: Callable[..., dict] = weights.load_trainable
    train_hooks: Callable[[nn.Module], tuple[Callable, Callable]] | None = None
    search_space: Callable[[nn.Module], object] | None = None
    scorer: Callable[[nn.Module], Callable[[dict], nn.Module]] | None = None
    retrain: bool = False
    param_note: str = ""  # why Table 1's "# param" differs from count_trainable (a table footnote)


METHODS: dict[str, Method] = {}


def _glora_space(model: nn.Module):
    from glora.search_space import SearchSpace

    return SearchSpace.from_model(model)


def register_method(method: Method) -> Method:
    """Add ``method`` to :data:`METHODS`; names are unique."""
    if method.name in METHODS:
        raise ValueError(f"method {method.name!r} is already registered")
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    """The record for ``name``; a :class:`ConfigError` (a ``ValueError``) lists the registered names."""
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(f"unknown method {name!r}; registered: {sorted(METHODS)}") from None


register_method(Method(
    name="full", apply=_full.apply_full, merge=_full.merge_full, search_based=False,
    description="full fine-tuning: every backbone parameter and the head"))
register_method(Method(
    name="linear", apply=_linear.apply_linear, merge=_linear.merge_linear, search_based=False,
    description="linear probe: a new head on the frozen backbone"))
register_method(Method(
    name="bitfit", apply=_bitfit.apply_bitfit, merge=_bitfit.merge_bitfit, search_based=False,
    description="BitFit: every bias (LayerNorm's included) and the head"))
register_method(Method(
    name="vpt_shallow", apply=_vpt.apply_vpt_shallow, merge=None, search_based=False,
    description="VPT-Shallow: prompt tokens before the first block"))
register_method(Method(
    name="vpt_deep", apply=_vpt.apply_vpt_deep, merge=None, search_based=False,
    description="VPT-Deep: new prompt tokens at every block",
    param_note="VPT publishes its per-task VPT-Deep prompt lengths only in a spreadsheet (vtab_all_release.csv) "
               "we cannot reach; the per-task lengths we use give 0.68M on average, Table 1 prints 0.53M"))
register_method(Method(
    name="adapter", apply=_adapter.apply_adapter, merge=None, search_based=False,
    description="Adapter: a sequential bottleneck after every MLP"))
register_method(Method(
    name="adaptformer", apply=_adaptformer.apply_adaptformer, merge=None, search_based=False,
    description="AdaptFormer: a scaled bottleneck parallel to every MLP"))
register_method(Method(
    name="lora", apply=_lora.apply_lora, merge=_lora.merge_lora, search_based=False,
    description="LoRA: a low-rank update of every fused qkv"))
register_method(Method(
    name="ssf", apply=_ssf.apply_ssf, merge=_ssf.merge_ssf, search_based=False,
    description="SSF: scale and shift after the patch embedding, the norms and the block linears",
    param_note="SSF's 0.24M includes the classifier head: 0.21M of scales and shifts plus the mean VTAB-1K head "
               "(49.5 classes x 769 = 0.04M)"))
register_method(Method(
    name="fact_tt", apply=_fact.apply_fact_tt, merge=_fact.merge_fact, search_based=False,
    description="FacT-TT: updates of all blocks as a tensor-train with shared U, V"))
register_method(Method(
    name="fact_tk", apply=_fact.apply_fact_tk, merge=_fact.merge_fact, search_based=False,
    description="FacT-TK: updates of all blocks as a Tucker tensor with shared U, V"))
register_method(Method(
    name="repadapter", apply=_repadapter.apply_repadapter, merge=_repadapter.merge_repadapter, search_based=False,
    description="RepAdapter: linear adapters before the attention and the MLP, folded into them",
    param_note="RepAdapter's 0.22M counts the projection weights only (221,184); with their biases, which fold "
               "into the backbone's on merging, it trains 239,808"))
register_method(Method(
    name="noah", apply=_noah.apply_noah, merge=None, search_based=True,
    description="NOAH: a supernet of prompts, LoRA and adapters, searched per layer, the subnet retrained",
    train_hooks=_noah.noah_hooks, search_space=_noah.noah_space, scorer=_noah.noah_scorer, retrain=True))
register_method(Method(
    name="glora", apply=_glora.apply_glora,
    merge=_glora.merge_glora, search_based=True,
    description="Generalized LoRA: W0 + W0⊙A + B, b0 + b0⊙D + E + W0·C, layer-wise searched (Eq. 10)",
    save=_glora.save_supernet, load=_glora.load_supernet, train_hooks=_glora.supernet_hooks,
    search_space=_glora_space, scorer=_glora.SubnetMerger))


def names() -> list[str]:
    """The registered method names, in Table 1's order."""
    return list(METHODS)


def apply(name: str, model: nn.Module, **overrides) -> nn.Module:
    """Adapt ``model`` in place with method ``name`` (its source paper's defaults, updated by ``overrides``)
    and return it: only the method's parameters and the classifier head are left trainable."""
    get_method(name).apply(model, **overrides)
    return model


def count_trainable(model: nn.Module) -> int:
    """Trainable parameters of ``model``, the classifier head excluded (Table 1's "# param")."""
    from glora.methods.base import head_parameters

    head = {id(p) for p in head_parameters(model).values()}
    return sum(p.numel() for p in model.parameters() if p.requires_grad and id(p) not in head)
