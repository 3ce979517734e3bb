"""GLoRA's search space of one layer (Eq. 11) and what each option costs -- without torch.

Eq. 10 adapts a linear layer with five support tensors, ``W' = W0 + W0 ⊙ A + B`` and
``b' = b0 + b0 ⊙ D + E + W0 @ C`` (:mod:`glora.methods.glora.layer`). The support tensors are entangled
(weight sharing across the options of Eq. 11): each layer owns one set of tensors, R = max(ranks), and every
option reads a slice of it.

======  ===========  ======================================  =================  ===========
tensor  parameters   option -> the slice it reads            shape of the term  scalars
======  ===========  ======================================  =================  ===========
A       A_d (out,R)  ``lora{r}``: A_d[:, :r] @ A_u[:r, :]     (out, in)          r·(out+in)
        A_u (R,in)   ``vector``: A_d[:, 0]                   (out, 1)           out
                     ``scalar``: A_d[0, 0]                   (1, 1)             1
B       B_d, B_u     as A                                    as A               as A
C       C_d (in,R)   ``lora{r}``: C_d[:, :r] @ C_u[:r, :]     (in, 1)            r·in + r
        C_u (R,1)    ``vector``: C_d[:, 0]                   (in, 1)            in
D       D (out,)     ``vector``: D; ``scalar``: D[0]         (out,) / (1,)      out / 1
E       E (out,)     as D                                    as D               as D
======  ===========  ======================================  =================  ===========

``none`` (every tensor) is zero and costs nothing. A layer whose base has no bias has D = ``none``
only (b0 ⊙ D would be zero whatever D holds). Initialisation: the ``_d`` factors, D and E are
zero, the ``_u`` factors xavier-uniform, so a fresh supernet computes exactly the base layer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from glora.errors import ConfigError

#: the support tensors of Eq. 10, the keys of a layer's choice
TENSORS = ("A", "B", "C", "D", "E")
Choice = dict[str, str]

_LORA = re.compile(r"lora(\d+)")


def validate_ranks(ranks: Iterable[int]) -> tuple[int, ...]:
    """Return ``ranks`` as a tuple of distinct positive ints, or raise :class:`ConfigError` (a ``ValueError``)."""
    try:
        ranks = tuple(ranks)
    except TypeError:
        raise ConfigError(f"ranks must be a sequence of positive ints, e.g. (8, 4); got {ranks!r}") from None
    if not ranks:
        raise ConfigError("ranks is empty: give at least one LoRA rank, e.g. ranks=(8, 4)")
    for r in ranks:
        if isinstance(r, bool) or not isinstance(r, int) or r <= 0:
            raise ConfigError(f"ranks must be positive ints, got {r!r} in {ranks!r}")
    if len(set(ranks)) != len(ranks):
        raise ConfigError(f"ranks must be distinct, got {ranks!r}")
    return ranks


def layer_options(ranks: Sequence[int], has_bias: bool = True) -> dict[str, tuple[str, ...]]:
    """The search space of one layer (Eq. 11): tensor name -> its options, LoRA ranks first."""
    lora = tuple(f"lora{r}" for r in validate_ranks(ranks))
    return {
        "A": (*lora, "vector", "scalar", "none"),
        "B": (*lora, "vector", "scalar", "none"),
        "C": (*lora, "vector", "none"),
        "D": ("vector", "scalar", "none") if has_bias else ("none",),
        "E": ("vector", "scalar", "none"),
    }


def option_rank(option: str) -> int | None:
    """``"lora8"`` -> 8; any other option -> None."""
    m = _LORA.fullmatch(option)
    return int(m.group(1)) if m else None


def option_params(tensor: str, option: str, in_features: int, out_features: int) -> int:
    """Number of trainable scalars one option uses (the head is not counted; docs/architecture.md §2)."""
    rank = option_rank(option)
    if option == "none":
        return 0
    if option == "scalar":
        return 1
    if tensor == "C":
        return in_features * rank + rank if rank else in_features
    if rank:
        return rank * (out_features + in_features)
    return out_features  # vector of A, B, D, E
