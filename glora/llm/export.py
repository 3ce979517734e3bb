"""Structural re-parameterisation of a tuned LLM (Sec. 2.3, Eq. 12-14) into a plain Hugging Face model folder.

GLoRA: every adapted projection becomes ``nn.Linear(W_uni, b_uni)`` for the searched choices
(:func:`glora.merge_glora`); LoRA: ``W0 + (α/r) B A``. LLaMA's projections have no bias, but GLoRA's C and E
terms make one (b_uni = E + W0 C); the config switch that gives those projections a bias (LLaMA:
``attention_bias``, which covers q, k, v and o) is turned on, and projections without a merged bias get zeros, so
``AutoModelForCausalLM.from_pretrained(out)`` rebuilds exactly this model. The folder is verified before it
replaces ``out``: reloaded, no missing or unexpected tensors, and its logits against the adapted model's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from glora.errors import ConfigError

#: config switches that give a family of Hugging Face linears a bias -> the leaf names they govern
BIAS_SWITCHES = {"attention_bias": ("q_proj", "k_proj", "v_proj", "o_proj"),
                 "mlp_bias": ("gate_proj", "up_proj", "down_proj")}

#: the largest |exported - adapted| logit difference accepted in float32, relative to the largest |logit|
TOLERANCE = 1e-4

log = logging.getLogger(__name__)


def enable_merged_biases(model: nn.Module, adapted: list[str]) -> list[str]:
    """Turn on the config switches for adapted linears that gained a bias in the merge, and give every linear
    governed by a switch turned on a zero bias where it has none; returns the switches turned on."""
    config = model.config
    switched = []
    for name in adapted:
        layer = model.get_submodule(name)
        if layer.bias is None:
            continue
        leaf = name.rpartition(".")[2]
        switch = next((s for s, leaves in BIAS_SWITCHES.items() if leaf in leaves and hasattr(config, s)), None)
        if switch is None:
            raise ConfigError(f"the merged {name} has a bias (GLoRA's C or E terms) but a {type(model).__name__} "
                              f"config has no switch that gives {leaf!r} one, so from_pretrained would drop it")
        if not getattr(config, switch) and switch not in switched:
            switched.append(switch)
    for switch in switched:
        setattr(config, switch, True)
        for name, module in model.named_modules():
            if isinstance(module, nn.Linear) and name.rpartition(".")[2] in BIAS_SWITCHES[switch] \
                    and module.bias is None:
                module.bias = nn.Parameter(torch.zeros(module.out_features, dtype=module.weight.dtype,
                                                       device=module.weight.device))
    return switched


def probe_ids(vocab_size: int, tokens: int, seed: int = 0) -> torch.Tensor:
    """(1, tokens) token ids, fixed by ``seed``: the input on which the export is compared with the adapted model."""
    return torch.randint(0, vocab_size, (1, tokens), generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def run_llm_export(config: Mapping, model_dir: str | Path, weights: str | Path, out: str | Path, *,
                   choices: str | Path | None = None, device: str = "cpu", quiet: bool = True) -> dict:
    """``python -m glora llm-export``: merge the llm-train ``weights`` (GLoRA: under the llm-search ``choices``,
    its best.json) into the base model of ``model_dir`` and save a plain model folder ``out`` (config.json,
    model.safetensors, the tokenizer, card.json); returns the card."""
    from transformers import AutoModelForCausalLM

    from glora.atomic import atomic_dir, sha256, write_json
    from glora.devices import resolve_device
    from glora.llm.config import from_config
    from glora.llm.model import checkpoint_dtype, dtype_kwarg, load_adapted, load_tokenizer, torch_dtype
    from glora.methods.glora.model import glora_layers, set_choices
    from glora.methods.registry import get_method
    from glora.provenance import provenance
    from glora.search_space import SearchSpace, read_choices
    from glora.weights import canonical_header

    began = time.perf_counter()
    settings = from_config(config)
    device = resolve_device(device)
    model, method, _ = load_adapted(model_dir, weights, "float32", device)
    card: dict = {"stage": "llm-export", "method": method, "model_dir": str(model_dir), "weights": str(weights),
                  "weights_sha256": sha256(Path(weights))}
    if method == "glora":
        if choices is None:
            raise ConfigError("a GLoRA supernet is exported under searched choices: pass the llm-search best.json")
        picked = SearchSpace.from_model(model).validate(read_choices(choices))
        set_choices(model, picked)
        adapted = list(glora_layers(model))
        card.update(choices_file=str(choices), choices=picked,
                    adapter_params=SearchSpace.from_model(model).count_params(picked))
    else:
        if choices is not None:
            raise ConfigError(f"{method} has no choices to apply; drop --choices")
        from glora.methods.base import Mergeable

        adapted = [n for n, m in model.named_modules() if isinstance(m, Mergeable)]
        card["adapter_params"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    verify = int(settings["export"]["verify_tokens"])
    probe = probe_ids(model.config.vocab_size, verify).to(device) if verify else None
    reference = model(input_ids=probe).logits.float().cpu() if verify else None
    plain = get_method(method).merge(model, choices=picked) if method == "glora" else get_method(method).merge(model)
    del model
    switched = enable_merged_biases(plain, adapted)
    dtype = settings["export"]["dtype"] or checkpoint_dtype(model_dir)
    plain = plain.to(torch_dtype(dtype)).eval()
    card.update(adapted_layers=len(adapted), bias_switches=switched, dtype=dtype)
    with atomic_dir(out) as tmp:
        plain.save_pretrained(tmp, safe_serialization=True)
        load_tokenizer(model_dir).save_pretrained(tmp)
        del plain
        if verify:
            reloaded, info = AutoModelForCausalLM.from_pretrained(str(tmp), **dtype_kwarg(torch.float32),
                                                                  local_files_only=True, output_loading_info=True)
            problems = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys")
                        and v}
            if problems:
                raise ValueError(f"the saved model does not reload as it was merged: {problems}")
            logits = reloaded.to(device).eval()(input_ids=probe).logits.float().cpu()
            diff = (logits - reference).abs().max().item()
            scale = max(reference.abs().max().item(), 1.0)
            card.update(verify_tokens=verify, max_abs_logit_diff=diff, relative_logit_diff=diff / scale)
            if dtype == "float32" and not diff <= TOLERANCE * scale:
                raise ValueError(f"the exported model's logits differ from the adapted model's by {diff:.3g} "
                                 f"(> {TOLERANCE:g} x {scale:.3g}); the merge is wrong")
        card.update(provenance=provenance(config, device=device))
        write_json(tmp / "card.json", card)
        for weights_file in tmp.glob("*.safetensors"):  # the same tensors, the same bytes
            canonical_header(weights_file)
    log.info("llm-export %s: %.1f s", method, time.perf_counter() - began)
    return card
