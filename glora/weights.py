"""The trainable weights of an adapted model as safetensors (what ``train`` writes for every method), and how
every safetensors file of the package is written.

The head size a train stage recorded is read here too. Only tensors with ``requires_grad`` are stored (for GLoRA:
the support tensors and the head, see :func:`glora.save_supernet`, which adds the ranks); the frozen backbone
comes from its own checkpoint.

safetensors writes its ``__metadata__`` map in the order of a Rust ``HashMap``, which changes from process to
process: the same tensors and metadata gave different bytes (and a different ``weights_sha256`` in the export's
card). :func:`safetensors_path` rewrites the header canonically (metadata keys sorted, tensors in file order),
so every file written through it is byte-identical for identical contents.
"""

from __future__ import annotations

import contextlib
import json
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from torch import nn

from glora.atomic import atomic_path
from glora.errors import WeightsError

FORMAT = "glora-trainable/1"


def canonical_header(path: str | Path) -> None:
    """Rewrite the header of the safetensors file ``path`` in place: ``__metadata__`` first with its keys sorted,
    then the tensors in the order of their data; compact JSON padded with spaces to 8 bytes, as safetensors
    writes it. The tensor data are not touched (their offsets are relative to the end of the header)."""
    with open(path, "r+b") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        meta = header.pop("__metadata__", None)
        ordered = {"__metadata__": dict(sorted(meta.items()))} if meta else {}
        ordered.update(sorted(header.items(), key=lambda item: (item[1]["data_offsets"][0], item[0])))
        text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode()
        text += b" " * (-len(text) % 8)
        if len(text) == size:
            f.seek(8)
            f.write(text)
            return
        data = f.read()
        f.seek(0)
        f.write(struct.pack("<Q", len(text)) + text + data)
        f.truncate()


@contextlib.contextmanager
def safetensors_path(path: str | Path) -> Iterator[Path]:
    """:func:`glora.atomic.atomic_path` for a safetensors file written by any library call; its header is made
    canonical (:func:`canonical_header`) before it replaces ``path``."""
    with atomic_path(path) as tmp:
        yield tmp
        canonical_header(tmp)


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every trainable parameter by full name."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def save_trainable(model: nn.Module, path: str | Path, metadata: Mapping[str, str] | None = None) -> None:
    """Write :func:`trainable_state` to ``path`` (safetensors, atomically, canonical header) with string
    ``metadata``."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().cpu() for k, v in trainable_state(model).items()}
    meta = {"format": FORMAT, **{str(k): str(v) for k, v in (metadata or {}).items()}}
    with safetensors_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file; a ``ValueError`` names a missing or unreadable file."""
    from safetensors import safe_open

    if not Path(path).is_file():
        raise WeightsError(f"weights file {path} does not exist; run the stage that writes it first")
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except Exception as err:  # safetensors raises its own types for corrupt headers
        raise WeightsError(f"{path} is not a readable safetensors file ({err}); re-run the stage that wrote "
                           "it") from None


def load_trainable(model: nn.Module, path: str | Path) -> dict[str, str]:
    """Load a :func:`save_trainable` file into ``model`` (adapted the same way); returns the metadata.

    Every trainable parameter must be in the file with its shape, and nothing else: a ``ValueError`` lists
    the differences.
    """
    tensors, meta = read_safetensors(path)
    copy_checked(trainable_state(model), tensors, path)
    return meta


def copy_checked(state: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor], path) -> None:
    """Copy ``tensors`` (read from ``path``) into the parameters ``state``: the same keys and shapes, or a
    ``ValueError`` listing every difference and nothing is copied."""
    missing, unexpected = sorted(set(state) - set(tensors)), sorted(set(tensors) - set(state))
    shapes = [f"{k}: file {tuple(tensors[k].shape)} vs model {tuple(state[k].shape)}"
              for k in sorted(set(state) & set(tensors)) if tensors[k].shape != state[k].shape]
    if missing or unexpected or shapes:
        raise WeightsError(f"{path} does not fit this model: missing {missing[:10]}, unexpected {unexpected[:10]}, "
                           f"shape mismatches {shapes[:10]} (same method, backbone and number of classes?)")
    with torch.no_grad():
        for k, p in state.items():
            p.copy_(tensors[k])


def num_classes_of(weights: str | Path) -> int:
    """The head size recorded in a train-stage weights file."""
    _, meta = read_safetensors(weights)
    if not meta.get("num_classes", "").isdigit():
        raise WeightsError(f"{weights} does not record num_classes; was it written by `python -m glora train`?")
    return int(meta["num_classes"])
