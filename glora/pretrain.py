"""Pre-training the mini suite's tiny ViT on its procedural upstream set (the analogue of ImageNet-21k).

The result is an ordinary timm state dict in ``.safetensors`` (head included, 142 upstream classes) that
every downstream stage loads through the same local-checkpoint path as Google's ``ViT-B_16.npz``.
Same loop as downstream training (:func:`glora.fit.fit`): resumable, seeded per epoch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from glora.atomic import write_csv, write_json
from glora.data.lists import ImageList
from glora.data.loading import Batches
from glora.data.transforms import vtab_transform
from glora.errors import ConfigError, DataError
from glora.fit import ROW_FIELDS, fit
from glora.models import create_backbone, get_backbone
from glora.seeding import derive_seed, fingerprint_of, seed_everything
from glora.weights import safetensors_path


def upstream_split(root: Path, split: str, backbone: str) -> ImageList:
    """``<root>/upstream/<split>.txt`` of a generated mini suite, at the backbone's input size."""
    upstream = Path(root) / "upstream"
    classes_file = upstream / "classes.json"
    if not classes_file.is_file():
        raise DataError(f"{classes_file} does not exist: {root} is not a generated mini suite; "
                        f"run `python -m glora data mini --out {root}`")
    classes = json.loads(classes_file.read_text())
    return ImageList.from_list(upstream / f"{split}.txt", upstream, vtab_transform(get_backbone(backbone)),
                               num_classes=len(classes), classes=[str(c) for c in classes])


def run_pretrain(config: Mapping, data: str | Path, out: str | Path, *, device: str = "auto",
                 quiet: bool = True) -> dict:
    """Train ``config['backbone']`` from scratch on ``data``/upstream; write ``out`` (.safetensors) and beside
    it ``<stem>.metrics.json`` and ``<stem>.epochs.csv``; ``<stem>.resume.pt`` while under way."""
    from safetensors.torch import save_model

    from glora.devices import resolve_device
    from glora.methods.full import apply_full
    from glora.provenance import provenance

    out = Path(out)
    if out.suffix != ".safetensors":
        raise ConfigError(f"--out must end in .safetensors (the format downstream stages load), got {out}")
    settings = dict(config["pretrain"])
    device = resolve_device(device)
    train_set, val_set = upstream_split(data, "train", config["backbone"]), upstream_split(data, "val",
                                                                                          config["backbone"])
    cache_gb = max(config["train"]["cache_gb"], 1.0)
    train = Batches(train_set, settings["batch_size"], shuffle=True, fixed_transform=True, device=device,
                    cache_gb=cache_gb, translate=settings["translate"], quiet=quiet, desc="decoding upstream")
    val = Batches(val_set, 512, shuffle=False, fixed_transform=True, device=device, cache_gb=cache_gb, quiet=quiet)
    seed_everything(derive_seed(settings["seed"], -1))
    model = create_backbone(config["backbone"], num_classes=train_set.num_classes,
                            drop_path_rate=settings["drop_path"]).to(device)
    apply_full(model)
    stem = out.with_suffix("")
    result = fit(model, train, val, {**settings, "eval_every": 1}, seed=settings["seed"],
                 checkpoint=Path(f"{stem}.resume.pt"), fingerprint=fingerprint_of(settings, config["backbone"]),
                 quiet=quiet, desc=f"pretrain {config['backbone']}")
    with safetensors_path(out) as tmp:
        save_model(model.cpu(), str(tmp), metadata={"backbone": config["backbone"],
                                                    "num_classes": str(train_set.num_classes)})
    write_csv(f"{stem}.epochs.csv", result.rows, ROW_FIELDS)
    metrics = {"stage": "pretrain", "backbone": config["backbone"], "upstream_classes": train_set.num_classes,
               "train_images": len(train_set), "val_images": len(val_set), "settings": settings,
               "final_val_acc": result.rows[-1]["val_acc"],
               "provenance": provenance(config, seed=settings["seed"], device=device)}
    write_json(f"{stem}.metrics.json", metrics)
    Path(f"{stem}.resume.pt").unlink(missing_ok=True)
    return metrics
