"""GLoRA supernet checkpoints: the trainable tensors only (every layer's support tensors and the head) as
safetensors, with the layers' ranks in the metadata, written and read through :mod:`glora.weights`."""

from __future__ import annotations

import json
from collections.abc import Mapping

import torch
from torch import nn

from glora.errors import WeightsError
from glora.methods.base import head_parameters
from glora.methods.glora.model import layers_or_raise
from glora.weights import copy_checked, read_safetensors, safetensors_path

SUPERNET_FORMAT = "glora-supernet/1"


def supernet_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Support tensors of every GLoRA layer and the head's parameters, by full parameter name."""
    state = {f"{n}.{t}": p for n, layer in layers_or_raise(model).items()
             for t, p in layer.support_tensors().items()}
    state.update(head_parameters(model))
    return state


def save_supernet(model: nn.Module, path, metadata: Mapping[str, str] | None = None) -> None:
    """Write :func:`supernet_state` to ``path`` (safetensors), with the ranks in the metadata.

    Written to a temporary file first and renamed, so a killed job never leaves half a file; the header is
    canonical (:func:`glora.weights.safetensors_path`): the same tensors give the same bytes.
    """
    from safetensors.torch import save_file

    layers = layers_or_raise(model)
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
    layers = layers_or_raise(model)
    tensors, meta = read_safetensors(path)
    if meta.get("format") != SUPERNET_FORMAT:
        raise WeightsError(f"{path} is not a GLoRA supernet checkpoint (format {meta.get('format')!r}, "
                           f"expected {SUPERNET_FORMAT!r})")
    ranks = {n: list(layer.ranks) for n, layer in layers.items()}
    if json.loads(meta.get("ranks", "null")) != ranks:
        raise WeightsError(f"{path} was saved from a supernet with other GLoRA layers or ranks than this model; "
                           "apply_glora with the same ranks and target_modules as at training time")
    copy_checked(supernet_state(model), tensors, path)
    return meta
