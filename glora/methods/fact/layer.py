"""FacT (Jie & Deng, 2023): the weight updates of all blocks as one factorised tensor, U and V shared by
every layer.

Every adapted linear of width ``a·D -> b·D`` (qkv: 1 -> 3, proj: 1 -> 1, fc1: 1 -> 4, fc2: 4 -> 1) is a grid of
``b × a`` D×D matrices; matrix (i, j) gets the update ``s · V Σ_ij Uᵀ`` with U, V (D, r) shared model-wide:

- FacT-TT (tensor-train): Σ_ij is a free r×r core per matrix -> ``2Dr + 12 r² · depth`` parameters;
- FacT-TK (Tucker): Σ_ij = C ×₃ P[m] for one core C (r, r, r) and a row P[m] (r) per matrix
  -> ``2Dr + r³ + 12 · depth · r``.

The forward never builds a D×D matrix: ``x_j U`` (rank space, dropout), the core, then ``V``. Merged:
``W0 + s · (I_b ⊗ V) Σ (I_a ⊗ U)ᵀ`` in every linear. Rank and scale are per task (``methods.fact_tk.per_task``).
Swin is not supported: its stages have different widths, which one shared U, V cannot serve.
"""

from __future__ import annotations

import torch
from torch import nn

from glora.methods.base import (
    Mergeable,
    block_linears,
    check_adaptable,
    family,
    freeze_backbone,
    merge_wrappers,
    merged_linear,
    replace_module,
    trained_names,
)


class FacTFactors(nn.Module):
    """The shared factors: U, V (dim, rank); for Tucker also C (rank, rank, rank) and P (matrices, rank)."""

    def __init__(self, dim: int, rank: int, kind: str, matrices: int, device=None, dtype=None):
        super().__init__()
        if kind not in ("tt", "tk"):
            raise ValueError(f"FacT kind must be 'tt' or 'tk', got {kind!r}")
        if rank < 1:
            raise ValueError(f"FacT rank must be >= 1, got {rank}")
        kw = {"device": device, "dtype": dtype}
        self.kind, self.rank, self.dim = kind, rank, dim
        self.U = nn.Parameter(torch.empty(dim, rank, **kw).uniform_(-dim ** -0.5, dim ** -0.5))
        self.V = nn.Parameter(torch.zeros(dim, rank, **kw))  # the update starts at zero
        if kind == "tk":
            self.C = nn.Parameter(nn.init.xavier_uniform_(torch.empty(rank, rank, rank, **kw)))
            self.P = nn.Parameter(nn.init.xavier_uniform_(torch.empty(matrices, rank, **kw)))


class FacTLinear(Mergeable):
    """``base`` (a·D -> b·D) plus the FacT update of its b × a matrices; ``rows``: their P rows (Tucker)."""

    def __init__(self, base: nn.Linear, factors: FacTFactors, rows: list[int] | None, scale: float, dropout: float):
        super().__init__()
        d, r = factors.dim, factors.rank
        if base.in_features % d or base.out_features % d:
            raise ValueError(f"FacT needs linears whose widths are multiples of {d}; got {base.in_features} -> "
                             f"{base.out_features}")
        self.base, self.scale, self.dropout = base, scale, nn.Dropout(dropout)
        self.a, self.b = base.in_features // d, base.out_features // d
        object.__setattr__(self, "factors", factors)  # shared, registered once on the model (``model.fact``)
        if factors.kind == "tt":
            w = base.weight
            self.core = nn.Parameter(torch.empty(self.b * r, self.a * r, device=w.device, dtype=w.dtype))
            nn.init.kaiming_uniform_(self.core, a=5 ** 0.5)
        else:
            if len(rows) != self.a * self.b:
                raise ValueError(f"FacT-TK needs {self.a * self.b} rows of P for a {self.a}x{self.b} linear")
            self.register_buffer("rows", torch.tensor(rows), persistent=False)

    def core_matrix(self) -> torch.Tensor:
        """Σ as a (b·r, a·r) matrix of r×r blocks."""
        if self.factors.kind == "tt":
            return self.core
        r = self.factors.rank
        blocks = torch.einsum("xyk,mk->mxy", self.factors.C, self.factors.P[self.rows])  # (b·a, r, r)
        return blocks.view(self.b, self.a, r, r).transpose(1, 2).reshape(self.b * r, self.a * r)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.factors
        u = self.dropout(x.unflatten(-1, (self.a, f.dim)) @ f.U).flatten(-2)  # (..., a·r)
        z = (u @ self.core_matrix().t()).unflatten(-1, (self.b, f.rank))       # (..., b, r)
        return self.base(x) + (z @ f.V.t()).flatten(-2) * self.scale

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        f, r = self.factors, self.factors.rank
        core = self.core_matrix().double().view(self.b, r, self.a, r)
        delta = torch.einsum("dr,brAs,es->bdAe", f.V.double(), core, f.U.double())
        delta = delta.reshape(self.base.out_features, self.base.in_features)
        return merged_linear(self.base, self.base.weight.double() + self.scale * delta, self.base.bias)


def apply_fact(model: nn.Module, kind: str, rank: int, scale: float, dropout: float) -> list[str]:
    """Adapt every block's qkv, proj, fc1 and fc2 with shared FacT factors (``model.fact``), in place."""
    family(model, "FacT", ("VisionTransformer",))
    check_adaptable(model, FacTLinear)
    names = block_linears(model, r".*\.(qkv|proj|fc1|fc2)")
    freeze_backbone(model)
    dim = model.embed_dim
    grids = [(model.get_submodule(n).in_features // dim) * (model.get_submodule(n).out_features // dim)
             for n in names]
    w = model.get_submodule(names[0]).weight
    model.fact = FacTFactors(dim, rank, kind, sum(grids), w.device, w.dtype)
    start = 0
    for name, grid in zip(names, grids):
        rows = list(range(start, start + grid)) if kind == "tk" else None
        start += grid
        replace_module(model, name, FacTLinear(model.get_submodule(name), model.fact, rows, scale, dropout))
    return trained_names(model)


def apply_fact_tt(model: nn.Module, *, rank: int, scale: float, dropout: float) -> list[str]:
    return apply_fact(model, "tt", rank, scale, dropout)


def apply_fact_tk(model: nn.Module, *, rank: int, scale: float, dropout: float) -> list[str]:
    return apply_fact(model, "tk", rank, scale, dropout)


def merge_fact(model: nn.Module, **_) -> nn.Module:
    """A plain timm model: every update folded into its linear, the shared factors dropped."""
    return merge_wrappers(model, drop=["fact"])
