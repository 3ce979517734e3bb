"""glora-repro: Generalized LoRA (arXiv 2306.07967) for timm models, and the paper's experiments.

Public API::

    import glora
    names = glora.apply_glora(model, ranks=(8, 4))   # wrap target linears, freeze the rest
    glora.set_choices(model, None)                   # supernet training: sample per forward
    space = glora.SearchSpace.from_model(model)
    choices = space.sample(0); space.count_params(choices)
    glora.set_choices(model, choices)                # one subnet
    plain = glora.merge_glora(model, choices)        # a plain timm model, same outputs
"""

from glora.methods.glora import (
    GLoRALinear,
    apply_glora,
    glora_layers,
    load_supernet,
    merge_glora,
    save_supernet,
    set_choices,
    set_impl,
)
from glora.search_space import LayerSpace, SearchSpace

__version__ = "0.1.0"

__all__ = [
    "GLoRALinear",
    "LayerSpace",
    "SearchSpace",
    "apply_glora",
    "glora_layers",
    "load_supernet",
    "merge_glora",
    "save_supernet",
    "set_choices",
    "set_impl",
]
