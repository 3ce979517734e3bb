"""GLoRA -- Generalized LoRA (arXiv 2306.07967, Sec. 2.2-2.3): one adapted linear layer.

Eq. 10, as the authors' code computes it (A and D act elementwise, C lives in the input space)::

    W' = W0 + W0 ⊙ A + B                   (out, in)
    b' = b0 + b0 ⊙ D + E + W0 @ C          (out,)

The support tensors are entangled (weight sharing across the options of Eq. 11): each layer owns
one set of tensors, R = max(ranks), and every option reads a slice of it.

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

The forward never materialises an (out, in) matrix unless the choice needs one (a LoRA-type A,
because W0 ⊙ (A_d A_u) has no low-rank shortcut; B is then folded into that matrix too):

- A vector/scalar scales the output of ``x @ W0ᵀ``;
- B LoRA is ``(x @ B_uᵀ) @ B_dᵀ``, B vector/scalar is ``sum(x) · b``;
- C, D, E only change the bias, a matrix-vector product.

``GLoRALinear.reference_forward`` keeps the plain formula (materialise W', b' every call, as the
authors' code does) for tests and benchmarks.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from glora.errors import WeightsError
from glora.methods.base import head_parameters, select_linears

TENSORS = ("A", "B", "C", "D", "E")
Choice = dict[str, str]

_LORA = re.compile(r"lora(\d+)")


def validate_ranks(ranks: Iterable[int]) -> tuple[int, ...]:
    """Return ``ranks`` as a tuple of distinct positive ints, or raise ``ValueError``."""
    try:
        ranks = tuple(ranks)
    except TypeError:
        raise ValueError(f"ranks must be a sequence of positive ints, e.g. (8, 4); got {ranks!r}") from None
    if not ranks:
        raise ValueError("ranks is empty: give at least one LoRA rank, e.g. ranks=(8, 4)")
    for r in ranks:
        if isinstance(r, bool) or not isinstance(r, int) or r <= 0:
            raise ValueError(f"ranks must be positive ints, got {r!r} in {ranks!r}")
    if len(set(ranks)) != len(ranks):
        raise ValueError(f"ranks must be distinct, got {ranks!r}")
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
    """Number of trainable scalars one option uses (DESIGN §2; the head is not counted)."""
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


def check_choice(choice: Mapping[str, str], options: Mapping[str, Sequence[str]], where: str = "") -> Choice:
    """Validate one layer's choice against its options (keys: GLoRA's support tensors, or another method's
    searched modules); returns a plain dict copy in the options' key order."""
    at = f" for layer {where!r}" if where else ""
    keys = list(options)
    if not isinstance(choice, Mapping):
        raise ValueError(f"a choice{at} must be a dict with keys {keys}, got {choice!r}")
    if set(choice) != set(keys):
        raise ValueError(f"a choice{at} needs exactly the keys {keys}, got {sorted(choice)}")
    what = "support tensor" if keys == list(TENSORS) else "module"
    for t in keys:
        if choice[t] not in options[t]:
            raise ValueError(f"unknown option {choice[t]!r} for {what} {t}{at}; valid: {list(options[t])}")
    return {t: choice[t] for t in keys}


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

    def support_tensors(self) -> dict[str, nn.Parameter]:
        """The trainable tensors, by name."""
        return {n: getattr(self, n) for n in self.SUPPORT_TENSORS}

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, ranks={self.ranks}, choice={self.choice}")

    # -- choices ---------------------------------------------------------------------------
    def set_choice(self, choice: Mapping[str, str] | None) -> None:
        """Fix the path (a dict ``{"A": ..., ..., "E": ...}``), or None to sample every forward."""
        self.choice = None if choice is None else check_choice(choice, self.options)

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
        place by one ``addmm_``.
        """
        bias = self._bias(choice)
        a = self._factor(choice["A"], self.A_d, self.A_u)
        if isinstance(a, tuple):  # W0 ⊙ (A_d A_u) has no low-rank shortcut: build W', B included
            b = self._factor(choice["B"], self.B_d, self.B_u)
            b_d, b_u = b if isinstance(b, tuple) else (b, None)
            return F.linear(x, _LoraWeight.apply(self.weight, *a, b_d, b_u), bias)
        y = F.linear(x, self.weight, bias)
        if a is not None:
            a = a.squeeze(-1)
            y = y * (1 + a) if bias is None else torch.addcmul(-(a * bias), y, 1 + a)
        b = self._factor(choice["B"], self.B_d, self.B_u)
        if b is None:
            return y
        flat_x = x.reshape(-1, self.in_features)
        if isinstance(b, tuple):  # (x B_uᵀ) B_dᵀ
            down, up = flat_x @ b[1].T, b[0].T
        else:  # B = b 1ᵀ: B x = b · sum(x)
            down, up = flat_x.sum(-1, keepdim=True), b.reshape(1, -1).expand(1, self.out_features)
        # y is fresh and saved by no one: add in place (in-place ops don't autocast, so match y's dtype)
        y.view(-1, self.out_features).addmm_(down.to(y.dtype), up.to(y.dtype))
        return y

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
        choice = self.choice if choice is None else check_choice(choice, self.options)
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
        out = nn.Linear(self.in_features, self.out_features, bias=bias is not None,
                        device=self.weight.device, dtype=self.weight.dtype)
        out.weight.copy_(weight)
        if bias is not None:
            out.bias.copy_(bias)
        return out


# ---------------------------------------------------------------------------------------------
# Whole models
# ---------------------------------------------------------------------------------------------

#: Default target linears per timm family (regex, full match on the module name): ViT-B/16 adapts
#: qkv, proj, fc1, fc2 of every block (48 layers); Swin adapts every linear in its blocks and the
#: patch-merging reductions (appendix C).
TARGETS = {
    "VisionTransformer": r"blocks\.\d+\.(attn\.(qkv|proj)|mlp\.(fc1|fc2))",
    "SwinTransformer": r"layers\.\d+\.(blocks\.\d+\..+|downsample\.reduction)",
}


def _target_names(model: nn.Module, target_modules: str | Sequence[str] | None) -> list[str]:
    if target_modules is None:
        family = type(model).__name__
        if family not in TARGETS:
            raise ValueError(f"no default GLoRA targets for a {family}; pass target_modules= (a regex or a "
                             f"list of nn.Linear names). Known families: {sorted(TARGETS)}")
        target_modules = TARGETS[family]
    return select_linears(model, target_modules)


def glora_layers(model: nn.Module) -> dict[str, GLoRALinear]:
    """The model's GLoRA layers, name -> layer, in module order."""
    return {n: m for n, m in model.named_modules() if isinstance(m, GLoRALinear)}


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


def apply_glora(model: nn.Module, ranks: Sequence[int] = (8, 4),
                target_modules: str | Sequence[str] | None = None) -> list[str]:
    """Wrap the target linears of ``model`` in place with :class:`GLoRALinear`.

    Freezes everything but the support tensors and the classifier head. ``target_modules``
    (a regex matched in full against module names, or a list of full or leaf names such as
    ``["q_proj", "k_proj", "v_proj", "o_proj"]`` for a Hugging Face LLaMA) defaults to
    :data:`TARGETS` for the model's family. Returns the adapted module names in module order.
    """
    ranks = validate_ranks(ranks)
    if glora_layers(model):
        raise ValueError("the model already has GLoRA layers; apply_glora works on a plain model")
    names = _target_names(model, target_modules)
    model.requires_grad_(False)
    for name in names:
        _replace(model, name, GLoRALinear(model.get_submodule(name), ranks))
    for p in head_parameters(model).values():
        p.requires_grad_(True)
    return names


def _layers_or_raise(model: nn.Module) -> dict[str, GLoRALinear]:
    layers = glora_layers(model)
    if not layers:
        raise ValueError("the model has no GLoRA layers: call glora.apply_glora(model) first")
    return layers


def check_choices(layers: Mapping[str, GLoRALinear], choices: Mapping[str, Mapping[str, str]]) -> dict[str, Choice]:
    """Validate a model-wide choice dict (layer name -> choice) against ``layers``."""
    missing = [n for n in layers if n not in choices]
    unknown = [n for n in choices if n not in layers]
    if missing or unknown:
        raise ValueError(f"choices must name every GLoRA layer exactly once; missing: {missing[:5]}"
                         f"{' ...' if len(missing) > 5 else ''} ({len(missing)}), unknown: {unknown[:5]}")
    return {n: check_choice(choices[n], layer.options, n) for n, layer in layers.items()}


def set_choices(model: nn.Module, choices: Mapping[str, Mapping[str, str]] | None) -> None:
    """Fix every GLoRA layer's path (``choices``: name -> choice), or None: sample per forward."""
    layers = _layers_or_raise(model)
    if choices is None:
        for layer in layers.values():
            layer.set_choice(None)
        return
    for name, choice in check_choices(layers, choices).items():
        layers[name].set_choice(choice)


def set_impl(model: nn.Module, impl: Literal["fast", "reference"]) -> None:
    """Switch every GLoRA layer between the fast forward and the plain formula (benchmarks)."""
    if impl not in ("fast", "reference"):
        raise ValueError(f"impl must be 'fast' or 'reference', got {impl!r}")
    for layer in _layers_or_raise(model).values():
        layer.impl = impl


def supernet_hooks(model: nn.Module):
    """``(before_train, before_eval)`` for :func:`glora.train.fit`: supernet training samples a path per layer
    per forward from the epoch's generator; validation fixes one random subnet drawn from its generator."""
    layers = _layers_or_raise(model)

    def before_train(generator: torch.Generator) -> None:
        for layer in layers.values():
            layer.set_choice(None)
            layer.generator = generator

    def before_eval(generator: torch.Generator) -> None:
        for layer in layers.values():
            layer.set_choice(layer.sample_choice(generator))

    return before_train, before_eval


@torch.no_grad()
def merge_glora(model: nn.Module, choices: Mapping[str, Mapping[str, str]]) -> nn.Module:
    """Structural re-parameterisation (Eq. 12-14): a new plain model equal to the subnet.

    Every GLoRA layer becomes an ``nn.Linear`` with W_uni, b_uni; the input model (its choices
    included) is left untouched. All parameters of the result are trainable, as in a fresh timm model.
    """
    import copy

    layers = _layers_or_raise(model)
    choices = check_choices(layers, choices)
    saved = {n: layer.choice for n, layer in layers.items()}
    try:
        merged = {}
        for name, layer in layers.items():
            layer.set_choice(choices[name])
            merged[name] = layer.merged()
    finally:
        for name, layer in layers.items():
            layer.choice = saved[name]
    memo = {id(layer): merged[name] for name, layer in layers.items()}  # don't copy support tensors
    plain = copy.deepcopy(model, memo)
    plain.requires_grad_(True)
    return plain


class SubnetMerger:
    """Merges subnets of one supernet into one re-used plain model: what the evolutionary search scores.

    ``merger(choices)`` writes W_uni, b_uni of every adapted layer into :attr:`plain` (built once, with a
    bias on every adapted linear) and returns it, so a candidate costs one merge plus one plain evaluation
    pass instead of a copy of the backbone. The merge is computed in the weights' dtype (float32 for
    half-precision weights): W0 + (W0 ⊙ A + B) then differs from the float64 merge of :func:`merge_glora`
    by at most about one rounding of W_uni, which cannot change a ranking of subnets.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.layers = _layers_or_raise(model)
        with_bias = {n: {"A": "none", "B": "none", "C": "none", "D": "none", "E": "vector"} for n in self.layers}
        self.plain = merge_glora(model, with_bias).eval().requires_grad_(False)
        self.targets = {n: self.plain.get_submodule(n) for n in self.layers}

    @torch.no_grad()
    def __call__(self, choices: Mapping[str, Mapping[str, str]]) -> nn.Module:
        choices = check_choices(self.layers, choices)
        for name, layer in self.layers.items():
            dtype = torch.float32 if layer.weight.dtype in (torch.float16, torch.bfloat16) else layer.weight.dtype
            weight, bias = layer.merged_tensors(choices[name], compute_dtype=dtype)
            target = self.targets[name]
            target.weight.copy_(weight)
            target.bias.copy_(bias) if bias is not None else target.bias.zero_()
        return self.plain


# ---------------------------------------------------------------------------------------------
# Supernet checkpoints: the trainable tensors only (support tensors + head), as safetensors
# ---------------------------------------------------------------------------------------------

SUPERNET_FORMAT = "glora-supernet/1"


def supernet_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Support tensors of every GLoRA layer and the head's parameters, by full parameter name."""
    state = {f"{n}.{t}": p for n, layer in _layers_or_raise(model).items()
             for t, p in layer.support_tensors().items()}
    state.update(head_parameters(model))
    return state


def save_supernet(model: nn.Module, path, metadata: Mapping[str, str] | None = None) -> None:
    """Write :func:`supernet_state` to ``path`` (safetensors), with the ranks in the metadata.

    Written to a temporary file first and renamed, so a killed job never leaves half a file; the header is
    canonical (:func:`glora.weights.safetensors_path`): the same tensors give the same bytes.
    """
    import json

    from safetensors.torch import save_file

    from glora.weights import safetensors_path

    layers = _layers_or_raise(model)
    meta = {"format": SUPERNET_FORMAT,
            "ranks": json.dumps({n: list(layer.ranks) for n, layer in layers.items()})}
    meta.update({str(k): str(v) for k, v in (metadata or {}).items()})
    tensors = {k: v.detach().contiguous().cpu() for k, v in supernet_state(model).items()}
    with safetensors_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_supernet(model: nn.Module, path) -> dict[str, str]:
    """Load a :func:`save_supernet` file into an adapted ``model`` (same layers, ranks, head).

    Raises :class:`glora.errors.WeightsError` (a ``ValueError``) naming the file and every mismatching key;
    returns the file's metadata.
    """
    import json

    from safetensors import safe_open

    from glora.weights import copy_checked

    layers = _layers_or_raise(model)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except FileNotFoundError:
        raise WeightsError(f"supernet checkpoint {path} does not exist") from None
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise WeightsError(f"{path} is not a readable safetensors file ({err}); re-run the stage that wrote it") \
            from None
    if meta.get("format") != SUPERNET_FORMAT:
        raise WeightsError(f"{path} is not a GLoRA supernet checkpoint (format {meta.get('format')!r}, "
                           f"expected {SUPERNET_FORMAT!r})")
    ranks = {n: list(layer.ranks) for n, layer in layers.items()}
    if json.loads(meta.get("ranks", "null")) != ranks:
        raise WeightsError(f"{path} was saved from a supernet with other GLoRA layers or ranks than this model; "
                           "apply_glora with the same ranks and target_modules as at training time")
    copy_checked(supernet_state(model), tensors, path)
    return meta
