"""The GLoRA search space of a whole model (Eq. 11, appendix E) and its parameter accounting.

A model's choices are a dict ``layer name -> {"A": ..., "B": ..., "C": ..., "D": ..., "E": ...}``.
The number of subnets is the product over layers of each layer's option count: 432 per layer with one
rank (4·4·3·3·3), so 432^48 for ViT-B/16 -- not 432 × 48 as appendix E prints.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from collections.abc import Callable

from torch import nn

from glora.methods.glora import Choice, check_choices, glora_layers, option_params


@dataclass(frozen=True)
class LayerSpace:
    """One searched layer: its name, shape and the options of each searched key (GLoRA: the support tensors;
    NOAH: its modules). ``cost(key, option)`` gives the parameters an option uses (default: GLoRA's)."""

    name: str
    in_features: int
    out_features: int
    options: Mapping[str, tuple[str, ...]]
    cost: Callable[[str, str], int] | None = None

    def size(self) -> int:
        """Number of distinct choices of this layer."""
        return math.prod(len(opts) for opts in self.options.values())

    def option_cost(self, key: str, option: str) -> int:
        if self.cost is not None:
            return self.cost(key, option)
        return option_params(key, option, self.in_features, self.out_features)

    def params(self, choice: Mapping[str, str]) -> int:
        """Trainable scalars this choice uses (DESIGN §2)."""
        return sum(self.option_cost(t, choice[t]) for t in self.options)


class SearchSpace:
    """All layer-wise choices of an adapted model. Build it with :meth:`from_model`."""

    def __init__(self, layers: Sequence[LayerSpace]):
        if not layers:
            raise ValueError("a search space needs at least one GLoRA layer")
        self.layers = {layer.name: layer for layer in layers}

    @classmethod
    def from_model(cls, model: nn.Module) -> SearchSpace:
        """The space of a model adapted by :func:`glora.apply_glora` (layers in module order)."""
        layers = glora_layers(model)
        if not layers:
            raise ValueError("the model has no GLoRA layers: call glora.apply_glora(model) first")
        return cls([LayerSpace(n, m.in_features, m.out_features, dict(m.options)) for n, m in layers.items()])

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
        """A subnet drawn uniformly: each support tensor of each layer independently."""
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
        """The smallest subnet's parameter count (0: every tensor ``none``)."""
        return self._extreme(min)

    def max_params(self) -> int:
        """The largest subnet's parameter count."""
        return self._extreme(max)

    def to_json(self, choices: Mapping[str, Mapping[str, str]], indent: int | None = 1) -> str:
        """Serialise validated choices as a JSON object ``{layer: {tensor: option}}``."""
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
