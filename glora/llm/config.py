"""Settings of the LLM experiment (Table 2; appendix A and B): defaults that config.yaml's ``llm:`` overlays.

:func:`llm_settings` merges a mapping (config.yaml's ``llm:`` section, possibly partial) over :data:`DEFAULTS`
and rejects unknown keys, so code reads complete, checked settings. What the paper states: lr 2e-5 with
cosine annealing, an effective batch of 32 by gradient accumulation, LoRA 3 epochs, the GLoRA supernet 15
epochs (appendix A), and 5 evolution iterations of 50 subnets, mutation/crossover probability 0.2, on 5% of
the four evaluation sets (Sec. 3.2, appendix B); only the attention projections are adapted. The rest (ranks,
LoRA's alpha/dropout, sequence length, search shots) the paper does not give; the defaults say what we use.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from glora.errors import ConfigError
from glora.llm.tasks import BENCHMARKS, DEFAULT_SHOTS

DEFAULTS: dict = {
    # the linears adapted in every decoder layer (names as in Hugging Face's LLaMA; matched as name suffixes)
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "dtype": "float32",        # the frozen weights and the adapters while training and searching
    "max_length": 512,         # tokens per training example (longer ones are cut from the right)
    "methods": {
        "glora": {"ranks": [8, 4]},                         # LoRA ranks of A, B, C (docs/architecture.md §2)
        "lora": {"rank": 8, "alpha": 16, "dropout": 0.05},  # Hu et al.; alpaca-lora's alpha and dropout
    },
    "train": {
        "lr": 2.0e-5,
        "schedule": "cosine",  # annealed to 0 over all optimizer steps, after warmup_ratio of them
        "warmup_ratio": 0.0,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "batch_size": 32,      # effective batch: micro_batch_size x gradient-accumulation steps
        "micro_batch_size": 4,
        "epochs": {"lora": 3, "glora": 15},
        "amp": True,           # bf16 autocast on CUDA (float32 on CPU)
        "gradient_checkpointing": False,
        "checkpoint_every": 200,  # optimizer steps between resume checkpoints
        "log_every": 10,          # optimizer steps between log lines
        "seed": 0,
    },
    "search": {
        "fraction": 0.05,      # of each benchmark's evaluation split, drawn once with `seed`
        "shots": {name: 0 for name in BENCHMARKS},  # few-shot examples in the search's prompts
        "population": 50, "parents": 10, "mutations": 25, "mutation_prob": 0.2, "crossovers": 25,
        "iterations": 5,
        "budget_m": None,      # cap on adapter parameters in millions (None: the whole space)
        "batch_size": 8,       # sequences per forward while scoring
        "max_length": 2048,    # context + continuation tokens (longer contexts are cut from the left)
        "seed": 0,
    },
    "export": {
        "dtype": None,         # the saved model's dtype (None: the base checkpoint's torch_dtype)
        "verify_tokens": 64,   # reload the saved model and compare logits on this many tokens (0: skip)
    },
    "evaluate": {
        "shots": dict(DEFAULT_SHOTS),  # the leaderboard's: ARC 25, HellaSwag 10, MMLU 5, TruthfulQA 0
        "batch_size": 8,
        "dtype": "auto",       # passed to lm-eval's HFLM
        "limit": None,         # documents per task (tests and smoke runs only)
        "seed": 1234,          # lm-eval's few-shot sampling seed
    },
}


def _merge(base: dict, overlay: Mapping, where: str) -> dict:
    for key, value in overlay.items():
        if key not in base:
            raise ConfigError(f"unknown setting {where}{key}; known: {sorted(base)}")
        if isinstance(base[key], dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"setting {where}{key} must be a mapping, got {value!r}")
            _merge(base[key], value, f"{where}{key}.")
        else:
            base[key] = copy.deepcopy(value)
    return base


def llm_settings(overlay: Mapping | None = None) -> dict:
    """:data:`DEFAULTS` updated by ``overlay`` (config.yaml's ``llm:``); a ``ValueError`` names a bad key."""
    settings = _merge(copy.deepcopy(DEFAULTS), overlay or {}, "llm.")
    train = settings["train"]
    if train["batch_size"] % train["micro_batch_size"]:
        raise ConfigError(f"llm.train.batch_size ({train['batch_size']}) must be a multiple of micro_batch_size "
                          f"({train['micro_batch_size']}): the effective batch is reached by gradient accumulation")
    if train["schedule"] != "cosine":
        raise ConfigError(f"llm.train.schedule: only 'cosine' (the paper's) is implemented, got {train['schedule']!r}")
    return settings


def from_config(config: Mapping | None) -> dict:
    """The LLM settings of a whole run configuration (its ``llm:`` section, if any)."""
    return llm_settings((config or {}).get("llm"))
