"""PEFT methods, one module each, behind one registry (public API)::

    import glora.methods
    glora.methods.names()                          # full linear bitfit ... glora
    model = glora.methods.apply("lora", model, rank=8)
    glora.methods.count_trainable(model)           # 294,912 on ViT-B/16 (head excluded)

:mod:`glora.methods.registry` holds the records (apply, merge, save/load, training hooks).
"""

from glora.methods.registry import METHODS, Method, apply, count_trainable, get_method, names, register_method

__all__ = ["METHODS", "Method", "apply", "count_trainable", "get_method", "names", "register_method"]
