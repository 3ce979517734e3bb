"""One record per PEFT method, and the registry of them -- importable without torch.

A :class:`Method` says everything the pipeline knows about a method before a model exists: its name and Table 1
row, which timm families it adapts, whether it merges, whether it is searched (and retrained), and its options
as a typed dataclass whose fields carry the defaults and a help text (PEFT's ``LoraConfig``; timm's registered
records). The implementation -- torch code -- is named by ``"module:function"`` references and imported only
when a model is adapted, so the configuration check and the Snakemake plan read every record without torch.

An implementation's ``apply(model, **options)`` adapts in place and returns the trained parameter names;
``merge(model, **context)`` returns a plain model with the same outputs; ``save(model, path, metadata)`` /
``load(model, path)`` write and read the trainable weights; ``train_hooks(model)`` gives the
``(before_train, before_eval)`` steps of :class:`glora.fit.Hooks`; a search-based method also gives
``search_space(model)`` (a :class:`glora.search_space.SearchSpace`) and ``scorer(model)`` (``choices -> module``
to evaluate). docs/architecture.md §7; how to add a method: CONTRIBUTING.md.
"""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from glora.errors import ConfigError

#: the timm families a method adapts unless its record says otherwise
VIT = "VisionTransformer"
SWIN = "SwinTransformer"


def option(default: Any, help: str) -> Any:  # noqa: A002 - the dataclass field's help text
    """A field of an options dataclass: its default and what it means (``help``)."""
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class NoOptions:
    """A method without options (full fine-tuning, the linear probe, BitFit)."""


def _accepts(hint: Any, value: Any) -> bool:
    """Whether ``value`` (as YAML gives it) fits the type ``hint`` of an options field."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(h, value) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is Any:
        return True
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return isinstance(value, list | tuple) and all(_accepts(args[0], v) for v in value) if args else \
            isinstance(value, list | tuple)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    return str(hint).replace("typing.", "") if not isinstance(hint, type) else hint.__name__


@dataclass(frozen=True)
class Method:
    """One PEFT method (see the module's docstring). ``*_fn`` fields are ``"module:function"`` references to the
    implementation; ``pipeline`` names the keywords of ``apply`` that the pipeline sets itself (never
    ``methods.<name>``), with the reason; ``param_note`` says why Table 1's "# param" differs from ours."""

    name: str
    display: str
    description: str
    apply_fn: str
    options: type = NoOptions
    merge_fn: str | None = None
    backbones: tuple[str, ...] = (VIT, SWIN)
    search_based: bool = False
    retrain: bool = False
    save_fn: str = "glora.weights:save_trainable"
    load_fn: str = "glora.weights:load_trainable"
    hooks_fn: str | None = None
    space_fn: str | None = None
    scorer_fn: str | None = None
    pipeline: Mapping[str, str] = field(default_factory=dict)
    param_note: str = ""

    # -- options ---------------------------------------------------------------------------------------------
    def option_names(self) -> list[str]:
        """The keys ``methods.<name>`` (and its ``per_task`` entries) may set."""
        return [f.name for f in dataclasses.fields(self.options)]

    def option_help(self) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(self.options)}

    def option_problem(self, values: Mapping, also: Sequence[str] = ()) -> tuple[str, str] | None:
        """The first key of ``values`` that is not an option (nor one of ``also``) or whose value has the wrong
        type, with what is wrong (to follow the mapping's name in a message); None when all is well."""
        valid = self.option_names()
        unknown = sorted(set(values) - set(valid) - set(also))
        if unknown:
            reserved = [self.pipeline[k] for k in unknown if k in self.pipeline]
            return unknown[0], (f" has unknown key(s) {unknown}; {self.name} takes {valid}"
                                f"{' and ' + ', '.join(also) if also else ''}"
                                f"{'; ' + '; '.join(reserved) if reserved else ''}")
        hints = typing.get_type_hints(self.options)
        for key, value in values.items():
            if key in hints and not _accepts(hints[key], value):
                return key, f".{key}: {value!r} is not of type {_type_name(hints[key])} ({self.option_help()[key]})"
        return None

    def check_options(self, values: Mapping, where: str) -> None:
        """A :class:`ConfigError` for :meth:`option_problem`, ``where`` naming the mapping (``methods.lora``)."""
        problem = self.option_problem(values)
        if problem:
            raise ConfigError(where + problem[1])

    def parse_options(self, values: Mapping) -> dict:
        """The full keyword options of ``apply``: the dataclass's defaults updated by ``values`` (checked), plus
        the pipeline's own keywords passed through as given."""
        own = {k: v for k, v in values.items() if k not in self.pipeline}
        self.check_options(own, f"{self.name} options")
        parsed = dataclasses.asdict(self.options(**own))
        return {**parsed, **{k: v for k, v in values.items() if k in self.pipeline}}

    # -- the implementation, imported when first used ---------------------------------------------------------
    @property
    def mergeable(self) -> bool:
        return self.merge_fn is not None

    def apply(self, model, **options) -> list[str]:
        """Adapt ``model`` in place with ``options`` over the defaults; returns the trained parameter names."""
        return _resolve(self.apply_fn)(model, **self.parse_options(options))

    @property
    def merge(self) -> Callable | None:
        return _resolve(self.merge_fn)

    @property
    def save(self) -> Callable:
        return _resolve(self.save_fn)

    @property
    def load(self) -> Callable:
        return _resolve(self.load_fn)

    @property
    def train_hooks(self) -> Callable | None:
        return _resolve(self.hooks_fn)

    @property
    def search_space(self) -> Callable | None:
        return _resolve(self.space_fn)

    @property
    def scorer(self) -> Callable | None:
        return _resolve(self.scorer_fn)


def _resolve(ref: str | None) -> Callable | None:
    if ref is None:
        return None
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    """Add ``method`` to :data:`METHODS` (the registry's order is Table 1's); names are unique."""
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


def names() -> list[str]:
    """The registered method names, in Table 1's order."""
    return list(METHODS)
