"""Hugging Face causal LMs from local folders, adapted by GLoRA or LoRA on the attention projections (Sec. 3.2).

"We apply GLoRA for LLMs by solely tuning the attention layers": every decoder layer's q_proj, k_proj, v_proj
and o_proj (LLaMA: bias-free ``nn.Linear`` of shape (out, in) = (H, H), (H_kv, H), (H_kv, H), (H, H)) becomes a
:class:`glora.GLoRALinear` (Eq. 10) or a LoRA layer of the same rank budget; embeddings, norms, MLPs and the
LM head stay frozen. Nothing is downloaded: ``from_pretrained`` reads the folder only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from glora.errors import ConfigError, WeightsError

METHODS = ("glora", "lora")

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def torch_dtype(name: str | None) -> torch.dtype | None:
    if name is None:
        return None
    if name not in DTYPES:
        raise ConfigError(f"unknown dtype {name!r}; expected one of {sorted(DTYPES)}")
    return DTYPES[name]


def dtype_kwarg(dtype: torch.dtype | None) -> dict:
    """``from_pretrained``'s dtype argument: ``dtype`` since transformers 4.56, ``torch_dtype`` before."""
    from transformers import __version__

    major, minor = (int(x) for x in __version__.split(".")[:2])
    return {"dtype" if (major, minor) >= (4, 56) else "torch_dtype": dtype}


def check_model_dir(path: str | Path) -> Path:
    """A local Hugging Face model folder (config.json, weights, tokenizer); a ``ValueError`` names what is missing."""
    path = Path(path)
    if not path.is_dir():
        raise WeightsError(f"model folder {path} does not exist (a local Hugging Face checkpoint: config.json, "
                           "*.safetensors or *.bin, tokenizer files)")
    if not (path / "config.json").is_file():
        raise WeightsError(f"{path} has no config.json: not a Hugging Face model folder")
    weights = [p for pattern in ("*.safetensors", "*.bin", "*.safetensors.index.json") for p in path.glob(pattern)]
    if not weights:
        raise WeightsError(f"{path} holds no weights (*.safetensors or pytorch_model*.bin)")
    return path


def checkpoint_dtype(path: str | Path) -> str:
    """The ``torch_dtype`` recorded in the folder's config.json (float32 when absent)."""
    config = json.loads((Path(path) / "config.json").read_text())
    name = config.get("torch_dtype") or config.get("dtype") or "float32"
    return name if name in DTYPES else "float32"


def load_tokenizer(path: str | Path):
    """The folder's tokenizer, with a pad token (LLaMA has none: padding reuses EOS; pads are masked anyway)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(check_model_dir(path)), local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(path: str | Path, dtype: str | None = "float32", device: torch.device | str = "cpu") -> nn.Module:
    """``AutoModelForCausalLM.from_pretrained(path)`` in ``dtype`` (None: the checkpoint's), eval mode."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(check_model_dir(path)), **dtype_kwarg(torch_dtype(dtype)),
                                                 local_files_only=True)
    return model.to(device).eval()


def adapt(model: nn.Module, method: str, settings: Mapping) -> list[str]:
    """Adapt ``model`` in place with ``method`` (glora or lora) on ``settings["target_modules"]``, with the method's
    settings from ``settings["methods"][method]``; returns the adapted module names. Only the adapters train."""
    from glora.methods.base import select_linears
    from glora.methods.registry import get_method

    if method not in METHODS:
        raise ConfigError(f"unknown LLM method {method!r}; expected one of {METHODS}")
    kwargs = dict(settings["methods"][method])
    if method == "glora":
        kwargs["ranks"] = tuple(kwargs["ranks"])
    targets = list(settings["target_modules"])
    names = select_linears(model, targets)
    get_method(method).apply(model, target_modules=targets, **kwargs)
    return names


def adapter_params(model: nn.Module) -> int:
    """Trainable parameters (the adapters: an HF causal LM has no classifier head to exclude)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def method_of(meta: Mapping[str, str]) -> str:
    """The method recorded in a train-stage weights file's metadata."""
    if "llm_method" not in meta:
        raise WeightsError("the weights file does not record its method: was it written by `python -m glora "
                           "llm-train`?")
    return meta["llm_method"]


def load_adapted(model_dir: str | Path, weights: str | Path, dtype: str | None = "float32",
                 device: torch.device | str = "cpu") -> tuple[nn.Module, str, dict[str, str]]:
    """The base model of ``model_dir`` adapted as recorded in an llm-train ``weights`` file (its method, settings
    and targets, not today's config) with the trained adapters loaded; returns (model, method, metadata)."""
    from glora.methods.registry import get_method
    from glora.weights import read_safetensors

    _, meta = read_safetensors(weights)
    method = method_of(meta)
    settings = {"methods": {method: json.loads(meta["method_kwargs"])},
                "target_modules": json.loads(meta["target_modules"])}
    model = load_causal_lm(model_dir, dtype, device)
    adapt(model, method, settings)
    get_method(method).load(model, weights)
    return model.eval(), method, meta
