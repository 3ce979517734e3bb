"""GLoRA -- Generalized LoRA (arXiv 2306.07967): the method's record, and the package face of its implementation.

==============  ===========================================================================================
module          what
==============  ===========================================================================================
:mod:`.options`  the search space of one layer (Eq. 11) and what each option costs; no torch
:mod:`.layer`    :class:`GLoRALinear`, one adapted linear layer (Eq. 10; the fast and the reference forward)
:mod:`.model`    whole models: targets, choices, supernet hooks, merging (Eq. 12-14), :class:`SubnetMerger`
:mod:`.io`       supernet checkpoints (support tensors + head, ranks in the metadata)
==============  ===========================================================================================

The record below is torch-free; the implementation's names (``GLoRALinear``, ``apply_glora``, ``set_choices``,
``merge_glora``, ``SubnetMerger``, ``save_supernet``, ...) are importable from this package too and load torch
on first use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from glora.methods.record import Method, option


@dataclass(frozen=True)
class GloraOptions:
    """The ranks of each supernet come from ``glora.sizes`` (one supernet per size), not from here."""

    target_modules: str | list[str] | None = option(
        None, "the linears to adapt: a regex or full or leaf names (default: every block linear of a ViT, "
              "every linear of a Swin's blocks and its patch-merging reductions)")


GLORA = Method(
    name="glora", display="GLoRA",
    description="Generalized LoRA: W0 + W0⊙A + B, b0 + b0⊙D + E + W0·C, layer-wise searched (Eq. 10)",
    options=GloraOptions, apply_fn="glora.methods.glora.model:apply_glora",
    merge_fn="glora.methods.glora.model:merge_glora", search_based=True,
    save_fn="glora.methods.glora.io:save_supernet", load_fn="glora.methods.glora.io:load_supernet",
    hooks_fn="glora.methods.glora.model:supernet_hooks", space_fn="glora.methods.glora.model:glora_space",
    scorer_fn="glora.methods.glora.model:SubnetMerger",
    pipeline={"ranks": "GLoRA's ranks come from glora.sizes"})

_FACE = {
    **dict.fromkeys(["TENSORS", "layer_options", "option_params", "option_rank", "validate_ranks"], "options"),
    **dict.fromkeys(["GLoRALinear", "equation_10"], "layer"),
    **dict.fromkeys(["TARGETS", "SubnetMerger", "apply_glora", "glora_layers", "glora_space", "merge_glora",
                     "set_choices", "set_impl", "space_of", "supernet_hooks"], "model"),
    **dict.fromkeys(["SUPERNET_FORMAT", "load_supernet", "save_supernet", "supernet_state"], "io"),
}


def __getattr__(name: str):
    if name in _FACE:
        return getattr(importlib.import_module(f"{__name__}.{_FACE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
