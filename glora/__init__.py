"""glora-repro: Generalized LoRA (arXiv 2306.07967) for timm models, and the paper's experiments.

Public API::

    import glora
    names = glora.apply_glora(model, ranks=(8, 4))   # wrap target linears, freeze the rest
    glora.set_choices(model, None)                   # supernet training: sample per forward
    space = glora.SearchSpace.from_model(model)
    choices = space.sample(0); space.count_params(choices)
    glora.set_choices(model, choices)                # one subnet
    plain = glora.merge_glora(model, choices)        # a plain timm model, same outputs

The names are loaded on first use (``import glora.workflow``, the Snakemake plan, imports no torch); the layers
of the package: docs/architecture.md §1.
"""

import importlib

__version__ = "0.1.0"

_FACE = {
    **dict.fromkeys(["GLoRALinear", "apply_glora", "glora_layers", "load_supernet", "merge_glora", "save_supernet",
                     "set_choices", "set_impl"], "glora.methods.glora"),
    **dict.fromkeys(["LayerSpace", "SearchSpace"], "glora.search_space"),
}

__all__ = sorted(_FACE)


def __getattr__(name: str):
    if name in _FACE:
        value = getattr(importlib.import_module(_FACE[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    try:  # a subpackage used as an attribute after a plain `import glora` (glora.methods.names())
        return importlib.import_module(f"glora.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"glora.{name}":
            raise
    raise AttributeError(f"module 'glora' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_FACE])
