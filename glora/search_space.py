"""The search space of a searched model (GLoRA's Eq. 11 and appendix E; NOAH's module sizes) and its parameter
accounting -- for any search-based method, and without torch.

A model's choices are a dict ``layer name -> {key: option}``: GLoRA's keys are its support tensors A-E, NOAH's
its modules (prompt, lora, adapter). The number of subnets is the product over layers of each layer's option
count: 432 per GLoRA layer with one rank (4·4·3·3·3), so 432^48 for ViT-B/16 -- not 432 × 48 as appendix E
prints. A searchable module (:class:`glora.methods.glora.layer.GLoRALinear`) exposes ``options`` (key ->
options), ``option_cost(key, option)`` (the trainable scalars an option uses, the head excluded) and
``choice_kind`` (what its keys are called in messages); :meth:`SearchSpace.from_model` collects them.
:func:`read_choices` reads the choices a search wrote (its ``best.json``).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from glora.errors import WeightsError

Choice = dict[str, str]


def check_choice(choice: Mapping[str, str], options: Mapping[str, Sequence[str]], where: str = "",
                 kind: str = "key") -> Choice:
    """Validate one layer's choice against its options (``kind`` names the keys in messages: GLoRA's "support
    tensor", NOAH's "module"); returns a plain dict copy in the options' key order."""
    at = f" for layer {where!r}" if where else ""
    keys = list(options)
    if not isinstance(choice, Mapping):
        raise ValueError(f"a choice{at} must be a dict with keys {keys}, got {choice!r}")
    if set(choice) != set(keys):
        raise ValueError(f"a choice{at} needs exactly the keys {keys}, got {sorted(choice)}")
    for key in keys:
        if choice[key] not in options[key]:
            raise ValueError(f"unknown option {choice[key]!r} for {kind} {key}{at}; valid: {list(options[key])}")
    return {key: choice[key] for key in keys}


@dataclass(frozen=True)
class LayerSpace:
    """One searched layer: its name, the options of each searched key, what one option costs in trainable
    scalars (``cost(key, option)``), and what its keys are called (``choice_kind``)."""

    name: str
    options: Mapping[str, tuple[str, ...]]
    cost: Callable[[str, str], int]
    choice_kind: str = "key"

    def size(self) -> int:
        """Number of distinct choices of this layer."""
        return math.prod(len(opts) for opts in self.options.values())

    def option_cost(self, key: str, option: str) -> int:
        return self.cost(key, option)

    def params(self, choice: Mapping[str, str]) -> int:
        """Trainable scalars this choice uses (docs/architecture.md §2)."""
        return sum(self.cost(key, choice[key]) for key in self.options)


def check_choices(layers: Mapping, choices: Mapping[str, Mapping[str, str]]) -> dict[str, Choice]:
    """Validate a model-wide choice dict (layer name -> choice) against ``layers`` (by name: anything with
    ``options`` and ``choice_kind``, a :class:`LayerSpace` or a searchable module)."""
    missing = [n for n in layers if n not in choices]
    unknown = [n for n in choices if n not in layers]
    if missing or unknown:
        raise ValueError(f"choices must name every searched layer exactly once; missing: {missing[:5]}"
                         f"{' ...' if len(missing) > 5 else ''} ({len(missing)}), unknown: {unknown[:5]}")
    return {n: check_choice(choices[n], layer.options, n, layer.choice_kind) for n, layer in layers.items()}


class SearchSpace:
    """All layer-wise choices of an adapted model. Build it with :meth:`from_model` (or from layers)."""

    def __init__(self, layers: Sequence[LayerSpace]):
        if not layers:
            raise ValueError("a search space needs at least one searched layer")
        self.layers = {layer.name: layer for layer in layers}

    @classmethod
    def from_model(cls, model) -> SearchSpace:
        """The space of a model's searchable modules (GLoRA layers, after :func:`glora.apply_glora`), in module
        order."""
        layers = [LayerSpace(n, dict(m.options), m.option_cost, m.choice_kind) for n, m in model.named_modules()
                  if callable(getattr(m, "option_cost", None)) and isinstance(getattr(m, "options", None), Mapping)]
        if not layers:
            raise ValueError("the model has no searchable layers: adapt it with a search-based method first "
                             "(glora.apply_glora(model))")
        return cls(layers)

    @property
    def names(self) -> list[str]:
        return list(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def size(self) -> int:
        """The exact number of subnets (a Python int: 432**48 for ViT-B/16, one rank)."""
        return math.prod(layer.size() for layer in self.layers.values())

    def validate(self, choices: Mapping[str, Mapping[str, str]]) -> dict[str, Choice]:
        """Check that ``choices`` names every layer with valid options; returns a clean copy."""
        return check_choices(self.layers, choices)

    def sample(self, rng: random.Random | int | None = None) -> dict[str, Choice]:
        """A subnet drawn uniformly: each key of each layer independently."""
        rng = rng if isinstance(rng, random.Random) else random.Random(rng)
        return {n: {t: rng.choice(opts) for t, opts in layer.options.items()} for n, layer in self.layers.items()}

    def count_params(self, choices: Mapping[str, Mapping[str, str]]) -> int:
        """Trainable scalars of the subnet, head excluded (the quantity the search budget caps)."""
        choices = self.validate(choices)
        return sum(layer.params(choices[n]) for n, layer in self.layers.items())

    def _extreme(self, pick) -> int:
        return sum(pick(layer.option_cost(t, o) for o in opts)
                   for layer in self.layers.values() for t, opts in layer.options.items())

    def min_params(self) -> int:
        """The smallest subnet's parameter count (0: every key ``none``)."""
        return self._extreme(min)

    def max_params(self) -> int:
        """The largest subnet's parameter count."""
        return self._extreme(max)

    def to_json(self, choices: Mapping[str, Mapping[str, str]], indent: int | None = 1) -> str:
        """Serialise validated choices as a JSON object ``{layer: {key: option}}``."""
        return json.dumps(self.validate(choices), indent=indent)

    def from_json(self, text: str) -> dict[str, Choice]:
        """Parse and validate choices written by :meth:`to_json`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"choices are not valid JSON: {err}") from None
        if not isinstance(data, dict):
            raise ValueError(f"choices JSON must be an object {{layer: choice}}, got {type(data).__name__}")
        return self.validate(data)


def read_choices(path: str | Path) -> dict:
    """Choices from a search's ``best.json`` (its ``choices`` key) or a plain ``{layer: choice}`` JSON file."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"choices file {path} does not exist; run `python -m glora search` first")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise WeightsError(f"choices file {path} is not valid JSON ({err}); re-run `python -m glora search`") \
            from None
    choices = data["choices"] if isinstance(data, dict) and "choices" in data else data
    if not isinstance(choices, dict):
        raise WeightsError(f"choices file {path} holds no {{layer: choice}} mapping (a search's best.json has one "
                           "under 'choices'); re-run `python -m glora search`")
    return choices
