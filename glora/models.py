"""Backbones by name: a small declarative table over timm (architecture + overrides + input config).

==================================================  ==================================================
name                                                what it is
==================================================  ==================================================
``vit_base_patch16_224.orig_in21k``                 the paper's ViT-B/16 (Google's ImageNet-21k ``.npz``)
``swin_base_patch4_window7_224.ms_in22k``           the paper's Swin-B (appendix C, Table 6)
``vit_mini``                                        the mini suite's tiny ViT: 32x32, patch 8, width 128, depth 4
``swin_mini``                                       a tiny Swin with the same structure as Swin-B (tests)
==================================================  ==================================================

Pre-trained weights come from local files only (:func:`load_checkpoint`, or ``create_backbone(..., checkpoint=)``):
Google's JAX ``.npz`` through timm's own loader, or a PyTorch / safetensors state dict. A missing or
ill-fitting file is a :class:`CheckpointError` (a ``ValueError``), never a silent random init.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import timm
import torch
from torch import nn

from glora.atomic import sha256
from glora.errors import ConfigError, WeightsError


@dataclass(frozen=True)
class Backbone:
    """A backbone record: timm architecture, its overrides, and the input it expects.

    With a pretrained ``tag``, the input size, mean/std and interpolation are read from timm's pretrained
    config of ``arch.tag`` (what the checkpoint was trained with); without one they must be given.
    """

    arch: str
    tag: str | None = None
    overrides: dict = field(default_factory=dict)
    input_size: tuple[int, int, int] | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    interpolation: str | None = None

    def __post_init__(self):
        cfg = timm.models.get_pretrained_cfg(self.timm_name).to_dict() if self.tag else {}
        for key in ("input_size", "mean", "std", "interpolation"):
            if getattr(self, key) is None:
                if key not in cfg:
                    raise ValueError(f"backbone {self.arch!r} without a pretrained tag needs {key}")
                object.__setattr__(self, key, tuple(cfg[key]) if key != "interpolation" else cfg[key])

    @property
    def timm_name(self) -> str:
        return f"{self.arch}.{self.tag}" if self.tag else self.arch


BACKBONES: dict[str, Backbone] = {
    "vit_base_patch16_224.orig_in21k": Backbone("vit_base_patch16_224", "orig_in21k"),
    "swin_base_patch4_window7_224.ms_in22k": Backbone("swin_base_patch4_window7_224", "ms_in22k"),
    "vit_mini": Backbone(
        "vit_base_patch16_224",
        overrides={"img_size": 32, "patch_size": 8, "embed_dim": 128, "depth": 4, "num_heads": 4},
        input_size=(3, 32, 32), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation="bicubic"),
    "swin_mini": Backbone(
        "swin_base_patch4_window7_224",
        overrides={"img_size": 32, "patch_size": 2, "window_size": 4, "embed_dim": 32,
                   "depths": (2, 2, 2), "num_heads": (2, 4, 8)},
        input_size=(3, 32, 32), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), interpolation="bicubic"),
}


def get_backbone(name: str) -> Backbone:
    """The record for ``name``; a :class:`ConfigError` lists the known names."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise ConfigError(f"unknown backbone {name!r}; known: {sorted(BACKBONES)}") from None


def create_backbone(name: str, num_classes: int, checkpoint: str | Path | None = None, **kwargs) -> nn.Module:
    """The timm model for backbone ``name`` with a ``num_classes`` head, random init or from a local ``checkpoint``.

    ``kwargs`` go to ``timm.create_model`` (e.g. ``drop_path_rate=0.1``). Nothing is downloaded. With a
    ``checkpoint`` the weights are read by :func:`load_checkpoint` (the head only where its class count
    matches) and its report is ``model.checkpoint_report``; without one that attribute is ``None``.
    """
    spec = get_backbone(name)
    if checkpoint is not None:
        _checkpoint_file(checkpoint)  # before building the model: a missing file fails fast
    model = timm.create_model(spec.arch, pretrained=False, num_classes=num_classes, **{**spec.overrides, **kwargs})
    model.checkpoint_report = None if checkpoint is None else load_checkpoint(model, checkpoint, arch=name)
    return model


# ---------------------------------------------------------------------------------------------------------------
# local checkpoints

VIT_B16_IN21K_URL = "https://storage.googleapis.com/vit_models/imagenet21k/ViT-B_16.npz"
STATE_DICT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
CHECKPOINT_SUFFIXES = (".npz", *STATE_DICT_SUFFIXES)
NPZ_PREFIXES = ("", "opt/target/", "params/", "params/img/")  # where timm's _load_weights looks for embedding/kernel
_MAX_KEYS = 10


class CheckpointError(WeightsError):
    """A checkpoint file that cannot be loaded into a model (the CLI prints it as ``error: ...``)."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """A checkpoint path that is not a file; the message says how to obtain it."""


def load_checkpoint(model: nn.Module, path: str | Path, *, arch: str | None = None) -> dict:
    """Load the local checkpoint ``path`` into the timm ``model`` in place; returns a report.

    By suffix: ``.npz`` is a Google/big_vision JAX checkpoint, read by timm's ``model.load_pretrained``
    (the patch and position embeddings must fit exactly: no resampling); ``.pth``/``.pt``/``.bin``/
    ``.safetensors`` is a state dict read by ``timm.models.load_state_dict`` (``state_dict``/``model``
    wrappers, EMA). The classifier head is loaded only where its shape fits the model's, otherwise it keeps
    its fresh init; every other tensor must come from the file, or a :class:`CheckpointError` (``ValueError``)
    says what did not fit, leaving the model as it was. ``arch`` names the model in messages.

    The report: ``{"path", "format", "loaded": tensors loaded, "skipped_head": head tensors not loaded,
    "sha256"}``.
    """
    path, suffix = _checkpoint_file(path)
    name = _describe(model, arch)
    with torch.no_grad():
        if suffix == ".npz":
            loaded, skipped = _load_npz(model, path, name)
        else:
            loaded, skipped = _load_state_dict_file(model, path, name)
    return {"path": str(path), "format": suffix[1:], "loaded": loaded, "skipped_head": skipped,
            "sha256": sha256(path)}


def _checkpoint_file(path: str | Path) -> tuple[Path, str]:
    """``(path, lower-case suffix)`` of an existing checkpoint file of a supported kind, else a CheckpointError."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in CHECKPOINT_SUFFIXES:
        raise CheckpointError(f"checkpoint {path}: unsupported suffix {path.suffix!r}; supported: "
                              f"{', '.join(CHECKPOINT_SUFFIXES)}")
    if not path.is_file():
        raise CheckpointNotFoundError(_not_found_message(path, suffix))
    return path, suffix


def _not_found_message(path: Path, suffix: str) -> str:
    what = "is a directory, not a checkpoint file" if path.is_dir() else "not found"
    if suffix == ".npz":
        return (f"checkpoint {path} {what}. Google's ViT-B/16 ImageNet-21k checkpoint (timm's "
                f"vit_base_patch16_224.orig_in21k) is {VIT_B16_IN21K_URL}: `python -m glora prepare checkpoint "
                f"--backbone vit_base_patch16_224.orig_in21k` fetches it, or download it and set "
                f"paths.checkpoint in config.yaml to where it is")
    return (f"checkpoint {path} {what}. The mini suite's pre-trained tiny ViT is written by "
            f"`python -m glora pretrain` (the workflow does this); otherwise set paths.checkpoint in config.yaml "
            f"to an existing file")


def _describe(model: nn.Module, arch: str | None) -> str:
    """``arch`` (or timm's architecture name) with a ViT's width, depth, patch and grid."""
    name = arch or (getattr(model, "pretrained_cfg", None) or {}).get("architecture") or type(model).__name__
    proj = getattr(getattr(model, "patch_embed", None), "proj", None)
    blocks = getattr(model, "blocks", None)
    if isinstance(proj, nn.Conv2d) and blocks is not None:
        grid = getattr(model.patch_embed, "grid_size", None)
        grid = f", grid {grid[0]}x{grid[1]}" if grid else ""
        return (f"{name} (width {proj.out_channels}, depth {len(blocks)}, "
                f"patch {proj.kernel_size[0]}x{proj.kernel_size[1]}{grid})")
    return name


def _keys(label: str, keys: list[str]) -> str:
    more = ", ..." if len(keys) > _MAX_KEYS else ""
    return f"{len(keys)} {label} [{', '.join(keys[:_MAX_KEYS])}{more}]"


def _head_prefix(model: nn.Module) -> str | None:
    """The state-dict prefix of the classifier head (``"head."`` for a ViT), from ``model.get_classifier()``."""
    get_classifier = getattr(model, "get_classifier", None)
    if not callable(get_classifier):
        return None
    head = get_classifier()
    for module_name, module in model.named_modules():
        if module is head and module_name:
            return module_name + "."
    return None


def _is_head(key: str, head_prefix: str | None) -> bool:
    return head_prefix is not None and key.startswith(head_prefix)


def _load_state_dict_file(model: nn.Module, path: Path, name: str) -> tuple[int, list[str]]:
    """A PyTorch / safetensors state dict into ``model``; returns (tensors loaded, head keys skipped)."""
    try:
        state = timm.models.load_state_dict(str(path))
    except Exception as err:  # torch.load / safetensors raise many types on a damaged file
        raise CheckpointError(f"cannot read checkpoint {path} ({type(err).__name__}: {err}); is it a complete "
                              f"PyTorch or safetensors state dict?") from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"checkpoint {path} is not a state dict of tensors")
    own = model.state_dict()
    state = _from_swin_release(state, own)
    head_prefix = _head_prefix(model)
    state = {k: v for k, v in state.items()
             if not (_is_head(k, head_prefix) and (k not in own or v.shape != own[k].shape))}
    missing = [k for k in own if k not in state and not _is_head(k, head_prefix)]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
                  for k, v in state.items() if k in own and v.shape != own[k].shape]
    if missing or unexpected or mismatched:
        problems = [_keys(label, keys) for label, keys in
                    (("missing keys", missing), ("unexpected", unexpected), ("mismatched shapes", mismatched)) if keys]
        raise CheckpointError(f"checkpoint {path} does not fit {name}: {', '.join(problems)}; "
                              f"is it a checkpoint of this architecture?")
    model.load_state_dict(state, strict=False)
    return len(state), [k for k in own if k not in state]


def _from_swin_release(state: dict, own: dict) -> dict:
    """A state dict in the layout of Microsoft's Swin release (``swin_base_patch4_window7_224_22k.pth``) renamed
    to timm's: each stage's patch merging moves from the end of stage i to the start of stage i+1, the head is
    ``head.fc``, and the non-persistent ``relative_position_index``/``attn_mask`` buffers are dropped. Nothing
    is resampled; any other state dict is returned as it is."""
    release = "layers.0.downsample.reduction.weight" in state and "layers.0.downsample.reduction.weight" not in own
    if not release:
        return state
    out = {}
    for key, value in state.items():
        if key.endswith(("relative_position_index", "attn_mask")):
            continue
        key = re.sub(r"^layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) + 1}.downsample", key)
        if key.startswith("head.") and "head.fc.weight" in own:
            key = "head.fc." + key.removeprefix("head.")
        out[key] = value
    return out


def _load_npz(model: nn.Module, path: Path, name: str) -> tuple[int, list[str]]:
    """A Google JAX ``.npz`` into ``model`` by timm's loader; returns (tensors loaded, head keys skipped).

    Every float tensor is set to NaN first: one still NaN afterwards was not in the file. That is allowed
    for the head only (timm skips a head of another class count), which gets its fresh init back.
    """
    if not callable(getattr(model, "load_pretrained", None)):
        raise CheckpointError(f"{name} cannot load the .npz checkpoint {path} (it has no load_pretrained); "
                              f"use a .pth or .safetensors state dict")
    _check_npz(model, path, name)
    head_prefix = _head_prefix(model)
    own = model.state_dict()  # shares storage with the model
    before = {k: v.clone() for k, v in own.items()}

    def restore(keys):
        for k in keys:
            own[k].copy_(before[k])

    for t in own.values():
        if t.is_floating_point():
            t.fill_(float("nan"))
    try:
        model.load_pretrained(str(path))
    except KeyError as err:
        restore(own)
        key = err.args[0] if err.args else err
        raise CheckpointError(f"checkpoint {path} is not a ViT checkpoint of this architecture ({name}): "
                              f"{key}") from err
    except RuntimeError as err:  # copy_ of another shape
        restore(own)
        raise CheckpointError(f"checkpoint {path} does not fit {name}: a tensor shape differs ({err})") from err
    except ValueError as err:  # a damaged array, or a layout timm refuses
        restore(own)
        raise CheckpointError(f"cannot load checkpoint {path} into {name}: {err}") from err
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        restore(own)
        raise CheckpointError(f"cannot read checkpoint {path} ({type(err).__name__}: {err}); is it a complete "
                              f".npz file?") from err
    unset = [k for k, t in own.items() if t.is_floating_point() and t.numel() and bool(torch.isnan(t).any())]
    body = [k for k in unset if not _is_head(k, head_prefix)]
    if body:
        restore(own)
        raise CheckpointError(f"checkpoint {path} does not fit {name}: timm's .npz loader left "
                              f"{_keys('tensors unset (or NaN)', body)}; is it a checkpoint of this architecture?")
    restore(unset)
    return sum(1 for k, t in own.items() if t.is_floating_point() and k not in unset), unset


def _check_npz(model: nn.Module, path: Path, name: str) -> None:
    """Refuse an ``.npz`` whose patch embedding, position embedding or depth differ from a ViT ``model``'s.

    timm's loader would resample the first two silently and ignore extra blocks.
    """
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as err:  # BadZipFile, OSError, ValueError, EOFError, ...
        raise CheckpointError(f"cannot read checkpoint {path} ({type(err).__name__}: {err}); is it a complete "
                              f".npz file?") from err
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise CheckpointError(f"checkpoint {path} is a single .npy array, not an .npz archive of named weights")
    with npz:
        files = set(npz.files)
        prefix = next((p for p in NPZ_PREFIXES if f"{p}embedding/kernel" in files), None)
        if prefix is None:
            raise CheckpointError(f"checkpoint {path} is not a ViT checkpoint of this architecture ({name}): no "
                                  f"embedding/kernel under any of the prefixes {NPZ_PREFIXES}")

        def shape(key):
            try:
                return tuple(npz[key].shape)
            except Exception as err:  # a damaged member: BadZipFile, zlib.error, EOFError, ValueError, ...
                raise CheckpointError(f"cannot read {key} of checkpoint {path} ({type(err).__name__}: {err}); "
                                      f"is it a complete .npz file?") from err

        patch_embed = getattr(model, "patch_embed", None)
        proj = getattr(patch_embed, "proj", None)
        if not isinstance(proj, nn.Conv2d) or hasattr(patch_embed, "backbone"):
            return  # not a plain ViT: timm's loader and the NaN check do the rest
        kernel, want = shape(f"{prefix}embedding/kernel"), tuple(proj.weight.shape[i] for i in (2, 3, 1, 0))
        if kernel != want:
            raise CheckpointError(
                f"checkpoint {path} does not fit {name}: embedding/kernel shape {kernel} (patch height, width, "
                f"input channels, width) but the model needs {want}; not resampling a patch embedding")
        pos = getattr(model, "pos_embed", None)
        pos_key = next((k for k in (f"{prefix}Transformer/posembed_input/pos_embedding", f"{prefix}pos_embedding")
                        if k in files), None)
        pos_shape = shape(pos_key) if pos is not None and pos_key is not None else None
        if pos_shape is not None and pos_shape != tuple(pos.shape):
            raise CheckpointError(
                f"checkpoint {path} does not fit {name}: position embedding {pos_key} shape {pos_shape} but "
                f"the model's pos_embed is {tuple(pos.shape)} (another image size or patch grid); not resampling it")
        blocks = getattr(model, "blocks", None)
        if blocks is not None:
            scan_key = f"{prefix}Transformer/encoderblock/LayerNorm_0/scale"
            if scan_key in files:
                depth = shape(scan_key)[0]
            else:
                pattern = re.compile(re.escape(prefix) + r"Transformer/encoderblock_(\d+)/")
                depth = 1 + max((int(m.group(1)) for f in files if (m := pattern.match(f))), default=-1)
            if depth != len(blocks):
                raise CheckpointError(f"checkpoint {path} is not a ViT checkpoint of this architecture ({name}): "
                                      f"it has {depth} transformer blocks, the model {len(blocks)}")
