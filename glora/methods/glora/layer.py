"""GLoRA -- Generalized LoRA (arXiv 2306.07967, Sec. 2.2-2.3): one adapted linear layer.

Eq. 10, as the authors' code computes it (A and D act elementwise, C lives in the input space)::

    W' = W0 + W0 ⊙ A + B                   (out, in)
    b' = b0 + b0 ⊙ D + E + W0 @ C          (out,)

The options of each support tensor and their parameter costs: :mod:`glora.methods.glora.options`.
``none`` (every tensor) is zero and costs nothing. A layer whose base has no bias has D = ``none``
only (b0 ⊙ D would be zero whatever D holds). Initialisation: the ``_d`` factors, D and E are
zero, the ``_u`` factors xavier-uniform, so a fresh supernet computes exactly the base layer.

The forward never materialises an (out, in) matrix unless the choice needs one (a LoRA-type A,
because W0 ⊙ (A_d A_u) has no low-rank shortcut; B is then folded into that matrix too, by
:class:`_LoraLinear` -- or :class:`_LoraWeight` and ``F.linear`` under autocast -- bit-identical to autograd
through the plain operations, with less memory traffic):

- A vector/scalar scales the output of ``x @ W0ᵀ`` (:class:`_ScaleShift`);
- B LoRA is ``(x @ B_uᵀ) @ B_dᵀ``, B vector/scalar is ``sum(x) · b``;
- C, D, E only change the bias, a matrix-vector product.

``GLoRALinear.reference_forward`` keeps the plain formula (materialise W', b' every call, as the
authors' code does) for tests and benchmarks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from glora.methods.base import merged_linear
from glora.methods.glora.options import TENSORS, layer_options, option_params, option_rank, validate_ranks
from glora.search_space import Choice, check_choice


def equation_10(w0, b0, a, b, c, d, e):
    """Eq. 10/13/14: ``W' = W0 + W0⊙A + B``, ``b' = b0 + b0⊙D + E + W0 @ C``.

    ``w0`` (out, in); ``b0`` (out,) or None; ``a``, ``b`` broadcastable to (out, in) or None;
    ``c`` (in, 1) or None; ``d``, ``e`` broadcastable to (out,) or None. None means the term is absent.
    Returns ``(W', b')`` with ``b'`` None only when no term produces a bias.
    """
    weight = w0
    if a is not None:
        weight = torch.addcmul(w0, w0, a)  # one pass: W0 + W0 ⊙ A
    if b is not None:
        weight = weight + b if weight is w0 else weight.add_(b)  # never modifies w0
    bias = b0
    if d is not None and b0 is not None:
        bias = bias + b0 * d
    for term in (e, None if c is None else (w0 @ c).squeeze(-1)):
        if term is not None:
            bias = term.expand(w0.shape[0]) if bias is None else bias + term
    return weight, bias


class _LoraWeight(torch.autograd.Function):
    """W' = W0 + W0 ⊙ (a_d a_u) + B for a LoRA-type A (Eq. 10), with B = b_d b_u (LoRA), ``b_d`` broadcast
    (vector (out, 1), scalar (1, 1)) or absent (``b_d`` None).

    The same float operations, in the same order, as autograd through ``addcmul(W0, W0, a_d @ a_u) + B``, so
    forward values and gradients are bit-identical to it; what it saves is memory traffic over (out, in)
    matrices, which is what this path pays beside its matmuls: B is added in place into the fresh W' instead
    of into a third matrix, and the backward multiplies the incoming gradient by W0 directly (autograd's
    addcmul backward first builds ``W0 * value``, a copy of W0). Nothing (out, in) is saved but W0, a
    parameter."""

    @staticmethod
    def forward(ctx, w0, a_d, a_u, b_d, b_u):
        weight = torch.addcmul(w0, w0, a_d @ a_u)
        if b_d is not None:
            weight.add_(b_d @ b_u if b_u is not None else b_d)
        ctx.save_for_backward(w0, a_d, a_u, b_d, b_u)
        return weight

    @staticmethod
    def backward(ctx, grad):
        w0, a_d, a_u, b_d, b_u = ctx.saved_tensors
        grads = [None] * 5
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            grad_a = grad * w0
            grads[1] = grad_a.mm(a_u.t()) if ctx.needs_input_grad[1] else None  # as autograd's mm backward
            grads[2] = a_d.t().mm(grad_a) if ctx.needs_input_grad[2] else None
        if b_d is not None and b_u is not None:
            grads[3] = grad.mm(b_u.t()) if ctx.needs_input_grad[3] else None
            grads[4] = b_d.t().mm(grad) if ctx.needs_input_grad[4] else None
        elif b_d is not None and ctx.needs_input_grad[3]:
            grads[3] = grad.sum_to_size(b_d.shape)  # as autograd's broadcasting add
        return tuple(grads)


class _LoraLinear(torch.autograd.Function):
    """``F.linear(x, W', bias)`` with W' = W0 + W0 ⊙ (a_d a_u) + B built as :class:`_LoraWeight` builds it,
    for float32 outside autocast (under autocast the layer composes ``_LoraWeight`` and ``F.linear``).

    Owning the product lets it reuse its buffers: W' is written over ``a_d @ a_u`` and W0 ⊙ (W's gradient)
    over that gradient, two (out, in) allocations fewer per layer and step. The operations and their
    operands are those of autograd through ``F.linear`` and ``_LoraWeight`` (the input gradient ``g W'``,
    the weight gradient ``gᵀ x``, the bias gradient summed over rows), so values and gradients are
    bit-identical to that composition (``tests/test_performance.py``)."""

    @staticmethod
    def forward(ctx, x, bias, w0, a_d, a_u, b_d, b_u):
        product = a_d @ a_u
        weight = torch.addcmul(w0, w0, product, out=product)
        if b_d is not None:
            weight.add_(b_d @ b_u if b_u is not None else b_d)
        ctx.save_for_backward(x, weight, w0, a_d, a_u, b_d, b_u)
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        x, weight, w0, a_d, a_u, b_d, b_u = ctx.saved_tensors
        need = ctx.needs_input_grad
        grads = [None] * 7
        grads[0] = grad.mm(weight) if need[0] else None
        grads[1] = grad.sum(0) if need[1] else None
        if not any(need[3:]):
            return tuple(grads)
        grad_w = grad.t().mm(x)  # W's gradient as autograd's addmm backward computes it for W'ᵀ
        if b_d is not None and b_u is not None:
            grads[5] = grad_w.mm(b_u.t()) if need[5] else None
            grads[6] = b_d.t().mm(grad_w) if need[6] else None
        elif b_d is not None and need[5]:
            grads[5] = grad_w.sum_to_size(b_d.shape)
        if need[3] or need[4]:
            grad_a = grad_w.mul_(w0)  # W0 ⊙ gradient, over the gradient (B's are taken already)
            grads[3] = grad_a.mm(a_u.t()) if need[3] else None
            grads[4] = a_d.t().mm(grad_a) if need[4] else None
        return tuple(grads)


class _ScaleShift(torch.autograd.Function):
    """``addcmul(shift, y, scale)`` = shift + y ⊙ scale, the rescaling of a vector/scalar A.

    Autograd's ``addcmul`` backward multiplies ``y`` by its ``value`` (1) before multiplying by the gradient, a
    copy of an activation-sized tensor per layer and step; this backward multiplies by ``y`` itself, so the
    gradients are bit-identical (x * 1 == x) with one pass fewer. The engine sums the broadcast inputs'
    gradients to their shapes, as it does for ``addcmul``."""

    @staticmethod
    def forward(ctx, shift, y, scale):
        ctx.save_for_backward(y if ctx.needs_input_grad[2] else None, scale)
        return torch.addcmul(shift, y, scale)

    @staticmethod
    def backward(ctx, grad):
        y, scale = ctx.saved_tensors
        return (grad if ctx.needs_input_grad[0] else None, grad * scale if ctx.needs_input_grad[1] else None,
                grad * y if ctx.needs_input_grad[2] else None)


class GLoRALinear(nn.Module):
    """A frozen ``nn.Linear`` (W0 (out, in), b0 (out,)) adapted with GLoRA support tensors.

    Holds the base's own ``weight``/``bias`` Parameters (so state-dict keys match the plain model)
    and the support tensors ``A_d, A_u, B_d, B_u, C_d, C_u, D, E``. ``set_choice(choice)`` fixes
    the subnet path; ``set_choice(None)`` samples a choice per forward (supernet training).
    """

    def __init__(self, base: nn.Linear, ranks: Sequence[int] = (8, 4)):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise ValueError(f"GLoRALinear wraps an nn.Linear, got {type(base).__name__}")
        self.ranks = validate_ranks(ranks)
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight = base.weight
        self.bias = base.bias
        self.weight.requires_grad_(False)
        if self.bias is not None:
            self.bias.requires_grad_(False)
        self.options = layer_options(self.ranks, has_bias=self.bias is not None)
        rmax, out_f, in_f = max(self.ranks), self.out_features, self.in_features
        kw = {"device": self.weight.device, "dtype": self.weight.dtype}
        self.A_d = nn.Parameter(torch.zeros(out_f, rmax, **kw))
        self.A_u = nn.Parameter(torch.empty(rmax, in_f, **kw))
        self.B_d = nn.Parameter(torch.zeros(out_f, rmax, **kw))
        self.B_u = nn.Parameter(torch.empty(rmax, in_f, **kw))
        self.C_d = nn.Parameter(torch.zeros(in_f, rmax, **kw))
        self.C_u = nn.Parameter(torch.empty(rmax, 1, **kw))
        self.D = nn.Parameter(torch.zeros(out_f, **kw))
        self.E = nn.Parameter(torch.zeros(out_f, **kw))
        for u in (self.A_u, self.B_u, self.C_u):
            nn.init.xavier_uniform_(u)
        if self.bias is None:  # b0 ⊙ D is zero without a bias: D is never used, so it is not trained
            self.D.requires_grad_(False)
        self.choice: Choice | None = None
        self.impl: Literal["fast", "reference"] = "fast"
        self.generator: torch.Generator | None = None

    SUPPORT_TENSORS = ("A_d", "A_u", "B_d", "B_u", "C_d", "C_u", "D", "E")

    #: what the keys of a choice are called in messages (the protocol of :mod:`glora.search_space`)
    choice_kind = "support tensor"

    def option_cost(self, tensor: str, option: str) -> int:
        """Trainable scalars ``option`` of ``tensor`` uses in this layer (:func:`.options.option_params`)."""
        return option_params(tensor, option, self.in_features, self.out_features)

    def support_tensors(self) -> dict[str, nn.Parameter]:
        """The trainable tensors, by name."""
        return {n: getattr(self, n) for n in self.SUPPORT_TENSORS}

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, ranks={self.ranks}, choice={self.choice}")

    # -- choices ---------------------------------------------------------------------------
    def set_choice(self, choice: Mapping[str, str] | None) -> None:
        """Fix the path (a dict ``{"A": ..., ..., "E": ...}``), or None to sample every forward."""
        self.choice = None if choice is None else check_choice(choice, self.options, kind="support tensor")

    def sample_choice(self, generator: torch.Generator | None = None) -> Choice:
        """A choice drawn uniformly and independently per support tensor (torch RNG)."""
        gen = generator if generator is not None else self.generator
        sizes = [len(self.options[t]) for t in TENSORS]
        k = int(torch.randint(0, math.prod(sizes), (1,), generator=gen))  # one draw, decoded mixed-radix
        choice = {}
        for t, n in zip(TENSORS, sizes):
            k, i = divmod(k, n)
            choice[t] = self.options[t][i]
        return choice

    def _current_choice(self) -> Choice:
        return self.choice if self.choice is not None else self.sample_choice()

    # -- the support tensors of a choice ---------------------------------------------------
    def _factor(self, option: str, d: torch.Tensor, u: torch.Tensor | None):
        """The slice of an entangled (d, u) pair that ``option`` reads; None for ``none``.

        LoRA returns the pair ``(d[:, :r], u[:r])``; vector ``d[:, :1]``; scalar ``d[:1, :1]``.
        """
        rank = option_rank(option)
        if rank is not None:
            return d[:, :rank], u[:rank]
        if option == "vector":
            return d[:, :1]
        if option == "scalar":
            return d[:1, :1]
        return None

    def _dense(self, option: str, d: torch.Tensor, u: torch.Tensor):
        """A or B or C as a (broadcastable) dense tensor; materialises LoRA products."""
        f = self._factor(option, d, u)
        return f[0] @ f[1] if isinstance(f, tuple) else f

    def _vector(self, option: str, v: torch.Tensor):
        """D or E: the full vector, its first element, or None."""
        return {"vector": v, "scalar": v[:1], "none": None}[option]

    def dense_support(self, choice: Mapping[str, str]):
        """(A, B, C, D, E) for ``choice`` as dense tensors of Eq. 10 (None where ``none``)."""
        return (self._dense(choice["A"], self.A_d, self.A_u), self._dense(choice["B"], self.B_d, self.B_u),
                self._dense(choice["C"], self.C_d, self.C_u), self._vector(choice["D"], self.D),
                self._vector(choice["E"], self.E))

    def _bias(self, choice: Choice) -> torch.Tensor | None:
        """b' = b0 + b0⊙D + E + W0 @ C (Eq. 14) without materialising anything (out, in)."""
        c = self._dense(choice["C"], self.C_d, self.C_u)
        d, e = self._vector(choice["D"], self.D), self._vector(choice["E"], self.E)
        return equation_10(self.weight, self.bias, None, None, c, d, e)[1]

    # -- forward -----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., in) -> (..., out) under the current (or a freshly sampled) choice."""
        choice = self._current_choice()
        if self.impl == "reference":
            return self.reference_forward(x, choice)
        return self.fast_forward(x, choice)

    def fast_forward(self, x: torch.Tensor, choice: Choice) -> torch.Tensor:
        """Eq. 10 term by term, with as few passes over the activations as possible.

        Only a LoRA-type A builds an (out, in) matrix; B then joins it, since the weight gradient is
        paid for anyway. Otherwise a vector/scalar ``a`` rescales the output:
        ``(W0 ⊙ a) x + b' = (1 + a) ⊙ y - a ⊙ b'`` with ``y = W0 x + b'``, one fused pass that is
        exact when ``a = 0``. B is always low rank (vector and scalar are ``b 1ᵀ``) and is added in
        place by one ``addmm_``. The work is done on the input flattened to 2-D (what ``F.linear``
        does for a 3-D input anyway), so the in-place add is not on a view and autograd copies nothing.
        """
        bias = self._bias(choice)
        flat_x = x.reshape(-1, self.in_features)
        shape = (*x.shape[:-1], self.out_features)
        a = self._factor(choice["A"], self.A_d, self.A_u)
        b = self._factor(choice["B"], self.B_d, self.B_u)
        if isinstance(a, tuple):  # W0 ⊙ (A_d A_u) has no low-rank shortcut: build W', B included
            b_d, b_u = b if isinstance(b, tuple) else (b, None)
            if torch.is_autocast_enabled(x.device.type):
                return F.linear(flat_x, _LoraWeight.apply(self.weight, *a, b_d, b_u), bias).view(shape)
            return _LoraLinear.apply(flat_x, bias, self.weight, *a, b_d, b_u).view(shape)
        y = F.linear(flat_x, self.weight, bias)
        if a is not None:
            a = a.squeeze(-1)
            y = y * (1 + a) if bias is None else _ScaleShift.apply(-(a * bias), y, 1 + a)
        if b is None:
            return y.view(shape)
        if isinstance(b, tuple):  # (x B_uᵀ) B_dᵀ
            down, up = flat_x @ b[1].T, b[0].T
        else:  # B = b 1ᵀ: B x = b · sum(x)
            down, up = flat_x.sum(-1, keepdim=True), b.reshape(1, -1).expand(1, self.out_features)
        # y is fresh and saved by no one: add in place (in-place ops don't autocast, so match y's dtype)
        y.addmm_(down.to(y.dtype), up.to(y.dtype))
        return y.view(shape)

    def reference_forward(self, x: torch.Tensor, choice: Mapping[str, str] | None = None) -> torch.Tensor:
        """The plain formula: materialise W' and b' (Eq. 10), then one ``F.linear``."""
        weight, bias = equation_10(self.weight, self.bias, *self.dense_support(choice or self._current_choice()))
        return F.linear(x, weight, bias)

    # -- structural re-parameterisation ----------------------------------------------------
    @torch.no_grad()
    def merged_tensors(self, choice: Mapping[str, str] | None = None, compute_dtype: torch.dtype = torch.float64
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """W_uni (out, in) and b_uni (out,) or None (Eq. 13-14) for ``choice`` (default: the fixed choice).

        Computed in ``compute_dtype`` (float64 by default) from the original W0, b0 in every term, then cast to
        the weight's dtype.
        """
        choice = self.choice if choice is None else check_choice(choice, self.options, kind="support tensor")
        if choice is None:
            raise ValueError("merging needs a fixed choice: call set_choice(choice) first")
        cast = (lambda t: t) if compute_dtype == self.weight.dtype else (lambda t: t.to(compute_dtype))
        w0 = cast(self.weight)
        b0 = None if self.bias is None else cast(self.bias)
        support = [None if t is None else cast(t) for t in self.dense_support(choice)]
        weight, bias = equation_10(w0, b0, *support)
        return weight.to(self.weight.dtype), None if bias is None else bias.to(self.weight.dtype)

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` with W_uni, b_uni (Eq. 13-14) for the fixed choice.

        A bias is created when the base has none but the choice produces one (C or E not ``none``).
        """
        weight, bias = self.merged_tensors()
        return merged_linear(self, weight, bias)


