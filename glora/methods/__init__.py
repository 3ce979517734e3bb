"""PEFT methods, one record each, behind one registry (public API)::

    import glora.methods
    glora.methods.names()                          # full linear bitfit ... glora
    model = glora.methods.apply("lora", model, rank=8)
    glora.methods.count_trainable(model)           # 294,912 on ViT-B/16 (head excluded)

:mod:`glora.methods.record` defines a record (name, Table 1 row, backbones, merge/search flags, typed options);
:mod:`glora.methods.registry` registers the built-in ones. Importing this package loads no torch: a method's
implementation is imported when a model is adapted.
"""

from glora.methods.registry import METHODS, Method, get_method, names, register_method


def apply(name: str, model, **overrides):
    """Adapt ``model`` in place with method ``name`` (its options' defaults, updated by ``overrides``) and return
    it: only the method's parameters and the classifier head are left trainable."""
    get_method(name).apply(model, **overrides)
    return model


def count_trainable(model) -> int:
    """Trainable parameters of ``model``, the classifier head excluded (Table 1's "# param")."""
    from glora.methods.base import head_parameters

    head = {id(p) for p in head_parameters(model).values()}
    return sum(p.numel() for p in model.parameters() if p.requires_grad and id(p) not in head)


__all__ = ["METHODS", "Method", "apply", "count_trainable", "get_method", "names", "register_method"]
