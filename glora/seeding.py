"""Seeds and fingerprints: every random stream of a run is derived from (seed, epoch, stream), and a resume
checkpoint belongs to the settings whose fingerprint it carries (training, the search, the LLM stages)."""

from __future__ import annotations

import hashlib
import json
import random

import numpy as np
import torch


def derive_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed for one random stream of one epoch, e.g. ``derive_seed(seed, epoch, stream)``."""
    digest = hashlib.sha256(json.dumps([seed, *keys]).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and Python's ``random`` (timm's mixup and augmentations use them)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def fingerprint_of(*parts) -> str:
    """A fingerprint of the settings that determine a run (the resume checkpoint must match it)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
