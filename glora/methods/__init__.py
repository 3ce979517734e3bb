"""PEFT methods, one module each, behind one registry (public API)::

    import glora.methods
    glora.methods.names()                          # full linear bitfit ... glora
    model = glora.methods.apply("lora", model, rank=8)
    glora.methods.count_trainable(model)           # 294,912 on ViT-B/16 (head excluded)

:mod:`glora.methods.registry` holds the records (apply, merge, save/load, training hooks). Its names load on
first use (PEP 562): importing one method's module (``glora.methods.glora``) does not import every other.
"""

from __future__ import annotations

import importlib

__all__ = ["METHODS", "Method", "apply", "count_trainable", "get_method", "names", "register_method"]


def __getattr__(name: str):
    if name in __all__:
        value = getattr(importlib.import_module("glora.methods.registry"), name)
        globals()[name] = value
        return value
    try:  # a method's module used as an attribute (glora.methods.lora)
        return importlib.import_module(f"glora.methods.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"glora.methods.{name}":
            raise
    raise AttributeError(f"module 'glora.methods' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
