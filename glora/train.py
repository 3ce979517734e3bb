"""``python -m glora train``: one run (a method, GLoRA size, task and seed) trained with :func:`glora.fit.fit` on
the split its protocol prescribes, and its outputs written: weights, metrics and the per-epoch rows."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from glora.fit import ROW_FIELDS, Hooks, fit
from glora.seeding import derive_seed, fingerprint_of, seed_everything


def run_train(config: Mapping, run, out: str | Path, *, device: str = "auto", quiet: bool = True) -> dict:
    """``python -m glora train``: train ``run`` (a :class:`glora.run.Run`) and write ``out``/

    ``weights.safetensors`` (the trainable tensors), ``metrics.json`` (summary + provenance) and
    ``epochs.csv`` (epoch, lr, train loss/acc, val acc); ``resume.pt`` lives beside them while the run is under
    way. Times, speeds and whether the run resumed go to the log: the files are the same bytes for the same
    command (docs/troubleshooting.md). Search-based methods train on train800 and are validated on val200; the
    others train on train800val200 (VTAB-1K).
    """
    from glora.atomic import write_csv, write_json
    from glora.config import train_settings
    from glora.devices import resolve_device
    from glora.experiment import batches, build_model, count_params, open_split
    from glora.provenance import provenance

    out = Path(out)
    spec = run.spec
    settings = train_settings(config, run.method, run.task, supernet=spec.search_based and run.choices is None)
    method_kwargs = run.method_kwargs(config)
    role = "search_train" if spec.search_based and run.choices is None else "final_train"
    train_set = open_split(config, run, role, train=True)
    val_set = open_split(config, run, "val") if role == "search_train" or run.family == "fewshot" else None
    device = resolve_device(device)
    train_batches = batches(config, train_set, settings["batch_size"], device, shuffle=True,
                            augmented=run.family == "fewshot", quiet=quiet)
    val_batches = None if val_set is None else batches(config, val_set, 256, device, shuffle=False,
                                                        augmented=False, quiet=quiet)
    seed_everything(derive_seed(run.seed, -1))  # the new head and the adapters' random init
    model = build_model(config, run, train_set.num_classes, drop_path=settings["drop_path"]).to(device)
    hooks = Hooks(*spec.train_hooks(model)) if spec.train_hooks else Hooks()
    fingerprint = fingerprint_of(run.to_dict(), method_kwargs, settings, config["backbone"],
                                 config["paths"]["checkpoint"])
    mixup = None
    if run.family == "fewshot":  # the few-shot recipe mixes batches (NOAH's, which the paper follows)
        from timm.data import Mixup

        from glora.data.transforms import FewShotRecipe

        mixup = Mixup(**FewShotRecipe().mixup_kwargs(train_set.num_classes))
    result = fit(model, train_batches, val_batches, settings, seed=run.seed, checkpoint=out / "resume.pt",
                 fingerprint=fingerprint, hooks=hooks, amp=settings["amp"] and device.type == "cuda", quiet=quiet,
                 mixup=mixup,
                 desc=f"train {run.method}{'/' + run.size if run.size else ''} {run.task}")
    out.mkdir(parents=True, exist_ok=True)
    spec.save(model, out / "weights.safetensors",
              metadata={"run": json.dumps(run.to_dict()), "method_kwargs": json.dumps(method_kwargs),
                        "backbone": config["backbone"], "num_classes": str(train_set.num_classes)})
    write_csv(out / "epochs.csv", result.rows, ROW_FIELDS)
    last = result.rows[-1]
    metrics = {
        "stage": "train", **run.to_dict(), "method_kwargs": method_kwargs, "backbone": config["backbone"],
        "checkpoint": config["paths"]["checkpoint"], "train_split": SPLIT_NAMES.get((run.family, role), role),
        "train_images": len(train_set), "num_classes": train_set.num_classes, "settings": settings,
        **count_params(model), "final_train_loss": last["train_loss"], "final_train_acc": last["train_acc"],
        "final_val_acc": last["val_acc"] if last["val_acc"] != "" else None,
        "provenance": provenance(config, seed=run.seed, device=device),
    }
    write_json(out / "metrics.json", metrics)
    (out / "resume.pt").unlink(missing_ok=True)
    return metrics


SPLIT_NAMES = {("vtab", "search_train"): "train800", ("vtab", "final_train"): "train800val200"}
