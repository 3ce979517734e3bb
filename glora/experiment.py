"""What the stages share: which model a run (:class:`glora.run.Run`) adapts, and which data a (family, task)
split reads.

A run is identified by (method, size, task, seed[, shot]): ``size`` names an entry of ``glora.sizes`` (ranks
and search budget) and is only meaningful for GLoRA. Every stage rebuilds the same adapted model from the
configuration, loads the backbone from the local checkpoint (``paths.checkpoint``), and the trainable weights
from the train stage's output.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from glora.data.datasets import build
from glora.data.loading import Batches
from glora.errors import ConfigError, WeightsError
from glora.models import create_backbone
from glora.run import SPLITS, Run


def data_root(config: Mapping, family: str) -> Path:
    return Path(config["paths"][family])


def open_split(config: Mapping, run: Run, role: str, *, train: bool = False):
    """The Dataset of ``role`` (search_train, final_train, val or test) for ``run``."""
    split = SPLITS[run.family][role]
    shot_seed = {"shot": run.shot, "seed": run.seed} if role.endswith("train") and run.family == "fewshot" else {}
    return build(run.family, run.task, split, data_root(config, run.family), backbone=config["backbone"],
                 train=train, **shot_seed)


def batches(config: Mapping, dataset, batch_size: int, device: torch.device, *, shuffle: bool, augmented: bool,
            quiet: bool, translate: int = 0) -> Batches:
    """:class:`Batches` with the caching and workers of ``config['train']``."""
    return Batches(dataset, batch_size, shuffle=shuffle, fixed_transform=not augmented, device=device,
                   cache_gb=config["train"]["cache_gb"], num_workers=config["train"]["num_workers"],
                   translate=translate, quiet=quiet)


def build_model(config: Mapping, run: Run, num_classes: int, *, drop_path: float = 0.0,
                weights: str | Path | None = None) -> nn.Module:
    """The backbone from ``paths.checkpoint`` with a ``num_classes`` head, adapted by the run's method.

    With ``weights`` (a train-stage output), its trainable tensors are loaded and checked against the run.
    """
    model = create_backbone(config["backbone"], num_classes=num_classes, checkpoint=config["paths"]["checkpoint"],
                            drop_path_rate=drop_path)
    kwargs = run.method_kwargs(config)
    try:
        run.spec.apply(model, **kwargs)
    except ValueError as err:  # a method's checks of its option values (rank 0, a backbone it cannot adapt...)
        where = f"methods.{run.method}" + (f" or glora.sizes ({run.size})" if run.size else "")
        raise ConfigError(f"{run.method} with {kwargs} on {config['backbone']}: {err}; fix {where}") from err
    if weights is not None:
        meta = run.spec.load(model, weights)
        saved = json.loads(meta.get("run", "{}"))
        mismatch = {k: (saved.get(k), v) for k, v in run.to_dict().items()
                    if k in saved and k != "seed" and saved[k] != v}
        if mismatch:
            raise WeightsError(f"{weights} was trained for another run: {mismatch} (file, requested)")
    return model


def count_params(model: nn.Module) -> dict[str, int]:
    """Trainable parameters, head excluded (:func:`glora.methods.count_trainable`) and the head alone."""
    from glora.methods import count_trainable
    from glora.methods.base import head_parameters

    return {"trainable_params": count_trainable(model),
            "head_params": sum(p.numel() for p in head_parameters(model).values() if p.requires_grad)}
