"""NOAH (Zhang et al., 2022): a supernet of prompts, LoRA and adapters, searched per layer, then retrained.

Every ViT block gets three modules, each of a searched size (``none`` or one of ``dims``):

- ``prompt``: VPT-Deep prompt tokens inserted after the class token (they replace the previous block's);
- ``lora``: a LoRA update of the fused qkv (A (k, D), B (3D, k), no α/r scaling, dropout 0.1);
- ``adapter``: a sequential bottleneck after the MLP (D -> k -> D with biases, GELU, dropout 0.1).

The supernet holds the largest size of each module; a smaller size uses the leading slice of its tensors
(AutoFormer's weight sharing), and every training batch samples one size per module per layer. The
evolutionary search (:mod:`glora.search`, the one GLoRA uses) scores subnets with inherited weights on the
validation split under ``budget_m`` million parameters; the subnet found is then *retrained* from the
pre-trained backbone (``apply_noah(model, subnet=choices)`` builds exactly its sizes). Prompts lengthen the
sequence and the adapter is non-linear, so NOAH is not merged (Table 4 lists its overhead).

Differences from the NOAH code, all for one protocol with GLoRA: candidates are scored on val200 (NOAH scores
on its training split); sizes are per layer with ``none`` among the options (NOAH also searches a depth per
module, which only restricts where ``none`` may occur); prompts carry no extra position embedding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from glora.methods.base import family, freeze_backbone, trained_names
from glora.search_space import LayerSpace, SearchSpace

MODULES = ("prompt", "lora", "adapter")


def module_params(module: str, size: int, dim: int) -> int:
    """Parameters of one module of ``size`` (prompt length, LoRA rank or adapter width) in a width-``dim`` block."""
    if size == 0:
        return 0
    return {"prompt": size * dim, "lora": size * (dim + 3 * dim), "adapter": 2 * size * dim + size + dim}[module]


def _size(option: str) -> int:
    return 0 if option == "none" else int(option)


class SlicedLoRA(nn.Module):
    """``base`` (the qkv linear) plus the leading ``active`` ranks of a LoRA update (0: none)."""

    def __init__(self, base: nn.Linear, rank: int, dropout: float):
        super().__init__()
        kw = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.base, self.dropout, self.active = base, dropout, rank
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, **kw))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, **kw))
        if rank:
            nn.init.kaiming_uniform_(self.lora_A, a=5 ** 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, r = self.base(x), self.active
        if r == 0:
            return y
        return y + (F.dropout(x, self.dropout, self.training) @ self.lora_A[:r].t()) @ self.lora_B[:, :r].t()


class SlicedAdapter(nn.Module):
    """``mlp`` followed by the leading ``active`` units of a residual bottleneck (0: none)."""

    def __init__(self, mlp: nn.Module, width: int, dropout: float):
        super().__init__()
        dim = mlp.fc2.out_features
        kw = {"device": mlp.fc2.weight.device, "dtype": mlp.fc2.weight.dtype}
        self.mlp, self.dropout, self.active = mlp, dropout, width
        self.down_weight = nn.Parameter(nn.init.xavier_uniform_(torch.empty(width, dim, **kw)))
        self.down_bias = nn.Parameter(torch.zeros(width, **kw))
        self.up_weight = nn.Parameter(torch.zeros(dim, width, **kw))
        self.up_bias = nn.Parameter(torch.zeros(dim if width else 0, **kw))  # no module, no bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, k = self.mlp(x), self.active
        if k == 0:
            return h
        z = F.gelu(h @ self.down_weight[:k].t() + self.down_bias[:k])
        return h + F.dropout(z, self.dropout, self.training) @ self.up_weight[:, :k].t() + self.up_bias


class NOAHBlocks(nn.Module):
    """Replaces ``model.blocks``: runs the blocks (their qkv a :class:`SlicedLoRA`, their MLP a
    :class:`SlicedAdapter`) and swaps each block's prompts in.
    x: (B, N, D) -> (B, N, D); prompt tokens sit after the ``prefix`` tokens and are removed at the end."""

    def __init__(self, blocks: Sequence[nn.Module], prompt_sizes: Sequence[int], prefix: int, dim: int,
                 patch: tuple[int, int], dropout: float = 0.1):
        super().__init__()
        self.blocks, self.prefix, self.dropout = nn.ModuleList(blocks), prefix, dropout
        self.dim = dim
        bound = (6.0 / (3 * patch[0] * patch[1] + dim)) ** 0.5
        w = next(blocks[0].parameters())
        self.prompts = nn.ParameterList(
            [nn.Parameter(torch.empty(n, dim, device=w.device, dtype=w.dtype).uniform_(-bound, bound))
             for n in prompt_sizes])
        self.prompt_choice = list(prompt_sizes)
        self.generator: torch.Generator | None = None  # set: sample a subnet per forward (supernet training)
        self.options: list[dict[str, tuple[str, ...]]] | None = None

    def __len__(self) -> int:
        return len(self.blocks)

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if self.generator is not None:
            set_noah_choices(self, sample_noah_choices(self, self.generator))
        p, previous = self.prefix, 0
        for block, prompt, n in zip(self.blocks, self.prompts, self.prompt_choice):
            tokens = F.dropout(prompt[:n], self.dropout, self.training).unsqueeze(0).expand(x.shape[0], -1, -1)
            x = torch.cat([x[:, :p], tokens.to(x.dtype), x[:, p + previous:]], dim=1)
            x = block(x, *args, **kwargs)
            previous = n
        return torch.cat([x[:, :p], x[:, p + previous:]], dim=1)


def _noah_blocks(model: nn.Module) -> NOAHBlocks:
    if not isinstance(getattr(model, "blocks", None), NOAHBlocks):
        raise ValueError("the model has no NOAH modules: apply the 'noah' method first")
    return model.blocks


def noah_space(model: nn.Module) -> SearchSpace:
    """The per-layer search space of a NOAH supernet: ``blocks.i`` -> {prompt, lora, adapter} sizes."""
    container = model if isinstance(model, NOAHBlocks) else _noah_blocks(model)
    if container.options is None:
        raise ValueError("this NOAH model is a retrained subnet, not a supernet: there is nothing to search")
    dim = container.dim

    def cost(module: str, option: str) -> int:
        return module_params(module, _size(option), dim)

    return SearchSpace([LayerSpace(f"blocks.{i}", options, cost, "module")
                        for i, options in enumerate(container.options)])


def sample_noah_choices(container: NOAHBlocks, generator: torch.Generator) -> dict[str, dict[str, str]]:
    """One random size per module per layer, drawn from ``generator``."""
    out = {}
    for i, options in enumerate(container.options):
        out[f"blocks.{i}"] = {m: opts[int(torch.randint(len(opts), (1,), generator=generator))]
                              for m, opts in options.items()}
    return out


def set_noah_choices(model: nn.Module, choices: Mapping[str, Mapping[str, str]]) -> None:
    """Activate one subnet of the supernet (``blocks.i`` -> {module: size option})."""
    container = model if isinstance(model, NOAHBlocks) else _noah_blocks(model)
    for i, block in enumerate(container.blocks):
        choice = choices[f"blocks.{i}"]
        sizes = {m: _size(choice[m]) for m in MODULES}
        container.prompt_choice[i] = sizes["prompt"]
        block.attn.qkv.active, block.mlp.active = sizes["lora"], sizes["adapter"]


def apply_noah(model: nn.Module, *, dims: Sequence[int], dropout: float,
               subnet: Mapping[str, Mapping[str, str]] | None = None) -> list[str]:
    """Make ``model`` a NOAH supernet (sizes ``none`` or ``dims`` per module per layer), or with ``subnet``
    (``blocks.i`` -> {prompt, lora, adapter}: options) the fixed subnet to retrain; in place."""
    family(model, "NOAH", ("VisionTransformer",))
    if isinstance(model.blocks, NOAHBlocks):
        raise ValueError("the model is already a NOAH supernet; apply NOAH to a plain model")
    dims = sorted({int(d) for d in dims})
    if not dims or dims[0] < 1:
        raise ValueError(f"NOAH dims must be positive sizes, got {dims}")
    options = {m: ("none", *map(str, dims)) for m in MODULES}
    depth = len(model.blocks)
    if subnet is not None:
        space = SearchSpace([LayerSpace(f"blocks.{i}", options, lambda m, o: 0, "module") for i in range(depth)])
        subnet = space.validate(subnet)
        sizes = [{m: _size(subnet[f"blocks.{i}"][m]) for m in MODULES} for i in range(depth)]
    else:
        sizes = [{m: dims[-1] for m in MODULES} for _ in range(depth)]
    freeze_backbone(model)
    blocks = list(model.blocks)
    for block, size in zip(blocks, sizes):
        block.attn.qkv = SlicedLoRA(block.attn.qkv, size["lora"], dropout)
        block.mlp = SlicedAdapter(block.mlp, size["adapter"], dropout)
    model.blocks = NOAHBlocks(blocks, [s["prompt"] for s in sizes], model.num_prefix_tokens, model.embed_dim,
                              model.patch_embed.patch_size, dropout)
    if subnet is None:
        model.blocks.options = [dict(options) for _ in range(depth)]
    return trained_names(model)


def noah_hooks(model: nn.Module):
    """``(before_train, before_eval)``: a supernet samples a subnet per batch while training and validates one
    random subnet per epoch; a retrained subnet has nothing to sample."""
    container = _noah_blocks(model)

    def before_train(generator: torch.Generator) -> None:
        if container.options is not None:
            container.generator = generator

    def before_eval(generator: torch.Generator) -> None:
        if container.options is not None:
            container.generator = None
            set_noah_choices(container, sample_noah_choices(container, generator))

    return before_train, before_eval


def noah_scorer(model: nn.Module):
    """``choices -> model``: the supernet with that subnet active (what the search evaluates)."""
    container = _noah_blocks(model)
    container.generator = None

    def subnet(choices: Mapping[str, Mapping[str, str]]) -> nn.Module:
        set_noah_choices(container, choices)
        return model

    return subnet
