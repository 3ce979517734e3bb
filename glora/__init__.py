"""glora-repro: Generalized LoRA (arXiv 2306.07967) for timm models, and the paper's experiments.

Public API::

    import glora
    names = glora.apply_glora(model, ranks=(8, 4))   # wrap target linears, freeze the rest
    glora.set_choices(model, None)                   # supernet training: sample per forward
    space = glora.SearchSpace.from_model(model)
    choices = space.sample(0); space.count_params(choices)
    glora.set_choices(model, choices)                # one subnet
    plain = glora.merge_glora(model, choices)        # a plain timm model, same outputs

The names are loaded on first use (PEP 562), so that ``python -m glora <stage> --help`` and the torch-free
modules (the configuration, the workflow plan) start without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    "GLoRALinear": "glora.methods.glora",
    "apply_glora": "glora.methods.glora",
    "glora_layers": "glora.methods.glora",
    "load_supernet": "glora.methods.glora",
    "merge_glora": "glora.methods.glora",
    "save_supernet": "glora.methods.glora",
    "set_choices": "glora.methods.glora",
    "set_impl": "glora.methods.glora",
    "LayerSpace": "glora.search_space",
    "SearchSpace": "glora.search_space",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    try:  # a subpackage used as an attribute after a plain `import glora` (glora.methods.apply(...))
        return importlib.import_module(f"glora.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"glora.{name}":
            raise
    raise AttributeError(f"module 'glora' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:
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
