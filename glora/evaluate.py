"""Test accuracy of an exported model: top-1, per-class accuracy, and the domain-generalisation targets.

The exported model is rebuilt as a plain timm model from its card (no adapter code involved when the method
was merged). ``--supernet`` also scores the adapted model under the card's choices on the same images, to
show that re-parameterisation changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from glora.atomic import write_json
from glora.errors import ConfigError, WeightsError

#: what evaluate reads from an export's card.json
CARD_KEYS = {"backbone": str, "num_classes": int, "run": dict, "merged": bool, "method_kwargs": dict}


def read_card(model_path: str | Path) -> dict:
    """The ``card.json`` beside an exported model; a :class:`WeightsError` names a missing, unreadable or
    incomplete card."""
    card_path = Path(model_path).with_name("card.json")
    if not Path(model_path).is_file() or not card_path.is_file():
        raise WeightsError(f"{model_path} or its card {card_path} does not exist; run `python -m glora export` "
                           "first")
    fix = "re-run `python -m glora export` for this run"
    try:
        card = json.loads(card_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise WeightsError(f"card {card_path} is not valid JSON ({err}); {fix}") from None
    if not isinstance(card, dict):
        raise WeightsError(f"card {card_path} must hold a JSON object, got {type(card).__name__}; {fix}")
    wrong = [f"{key} ({kind.__name__})" for key, kind in CARD_KEYS.items() if not isinstance(card.get(key), kind)]
    if wrong:
        raise WeightsError(f"card {card_path} lacks or mistypes {', '.join(wrong)}; {fix}")
    from glora.run import Run

    try:
        Run(**card["run"])
    except (TypeError, ValueError) as err:
        raise WeightsError(f"card {card_path}: 'run' is not a run of this version ({err}); {fix}") from None
    return card


def load_exported(model_path: str | Path, card: Mapping) -> nn.Module:
    """The exported model: a plain timm model, or for an unmergeable method the re-applied adapted model."""
    from safetensors.torch import load_model

    from glora.methods.registry import get_method
    from glora.models import create_backbone

    model = create_backbone(card["backbone"], num_classes=card["num_classes"])
    if not card["merged"]:
        get_method(card["run"]["method"]).apply(model, **card["method_kwargs"])
    for name in card.get("added_biases", []):  # merged C/E terms of linears built without a bias (Swin's reductions)
        layer = model.get_submodule(name)
        layer.bias = nn.Parameter(torch.zeros(layer.out_features))
    try:
        missing, unexpected = load_model(model, str(model_path), strict=False)
    except Exception as err:  # noqa: BLE001 - safetensors raises its own types: a truncated or corrupt file, other shapes
        raise WeightsError(f"{model_path} cannot be loaded as an exported {card['backbone']} model "
                           f"({type(err).__name__}: {err}); re-run `python -m glora export` for this run") from None
    if missing or unexpected:
        raise WeightsError(f"{model_path} does not fit {card['backbone']}: missing {sorted(missing)[:10]}, "
                           f"unexpected {sorted(unexpected)[:10]}")
    return model.eval()


def scores(preds: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict:
    """Top-1 (percent) and per-class accuracy (percent, None for classes without test images)."""
    per_class, counts = [], []
    for c in range(num_classes):
        mask = labels == c
        counts.append(int(mask.sum()))
        per_class.append(round(100 * (preds[mask] == c).double().mean().item(), 4) if counts[-1] else None)
    present = [a for a in per_class if a is not None]
    return {"top1": round(100 * (preds == labels).double().mean().item(), 4), "images": len(labels),
            "mean_per_class": round(sum(present) / len(present), 4) if present else None,
            "per_class": per_class, "per_class_images": counts}


def run_evaluate(config: Mapping, model_path: str | Path, out: str | Path, *, targets: Sequence[str] = (),
                 supernet: str | Path | None = None, device: str = "auto", quiet: bool = True) -> dict:
    """``python -m glora evaluate``: test accuracy of the exported ``model_path``; writes ``out`` (JSON)."""
    from glora.data.datasets import build
    from glora.data.loading import predict
    from glora.devices import resolve_device
    from glora.experiment import batches, build_model, open_split
    from glora.methods.glora.model import set_choices
    from glora.provenance import provenance
    from glora.run import Run

    card = read_card(model_path)
    run = Run(**card["run"])
    device = resolve_device(device)
    amp = config["train"]["amp"] and device.type == "cuda"
    model = load_exported(model_path, card).to(device)
    if card["backbone"] != config["backbone"]:  # the test images get the exported backbone's input transform
        raise ConfigError(f"{model_path} is a {card['backbone']} model but the configuration's backbone is "
                          f"{config['backbone']}; pass --set backbone={card['backbone']} (and its paths.checkpoint)")
    test_set = open_split(config, run, "test")
    test = batches(config, test_set, 256, device, shuffle=False, augmented=False, quiet=quiet)
    preds, labels = predict(model, test, amp=amp)
    result = {"stage": "evaluate", **run.to_dict(), "model": str(model_path), "backbone": card["backbone"],
              "merged": card["merged"], "adapter_params": card.get("adapter_params"), "test": scores(
                  preds, labels, card["num_classes"])}
    if supernet is not None:
        adapted = build_model(config, run, card["num_classes"], weights=supernet).to(device).eval()
        if "choices" in card:
            set_choices(adapted, card["choices"])
        sup_preds, _ = predict(adapted, test, amp=amp)
        result["supernet"] = {"weights": str(supernet),
                              "top1": round(100 * (sup_preds == labels).double().mean().item(), 4),
                              "same_predictions": round((sup_preds == preds).double().mean().item(), 6)}
    for target in targets:
        data = build("imagenet", target, "test", config["paths"]["imagenet"], backbone=card["backbone"])
        preds, labels = predict(model, batches(config, data, 256, device, shuffle=False, augmented=False,
                                               quiet=quiet), amp=amp)
        result.setdefault("targets", {})[target] = scores(preds, labels, data.num_classes)
    result.update(provenance=provenance(config, seed=run.seed, device=device))
    write_json(out, result)
    return result
