"""The built-in methods, registered in Table 1's order: one line each, naming the method's record.

A record (:class:`glora.methods.record.Method`) lives with its method (``glora/methods/<name>.py``, or
``glora/methods/<name>/__init__.py`` beside the method's torch layers) and imports no torch, so the registry,
the configuration check and the Snakemake plan never load torch. Adding a method: CONTRIBUTING.md.
"""

from __future__ import annotations

import importlib

from glora.methods.record import METHODS, Method, get_method, names, register_method

BUILT_IN = (
    "glora.methods.full:FULL",
    "glora.methods.linear:LINEAR",
    "glora.methods.bitfit:BITFIT",
    "glora.methods.vpt:VPT_SHALLOW",
    "glora.methods.vpt:VPT_DEEP",
    "glora.methods.adapter:ADAPTER",
    "glora.methods.adaptformer:ADAPTFORMER",
    "glora.methods.lora:LORA",
    "glora.methods.ssf:SSF",
    "glora.methods.fact:FACT_TT",
    "glora.methods.fact:FACT_TK",
    "glora.methods.repadapter:REPADAPTER",
    "glora.methods.noah:NOAH",
    "glora.methods.glora:GLORA",
)

for _ref in BUILT_IN:
    _module, _, _record = _ref.partition(":")
    register_method(getattr(importlib.import_module(_module), _record))

__all__ = ["METHODS", "Method", "get_method", "names", "register_method"]
