"""What weight sharing costs: GLoRA's searched subnet with the supernet's weights, and the same subnet trained
alone (the diagnostic that readers of a one-shot search paper ask for; not in the paper).

The subnet (the search's ``best.json``) is scored twice on val200 and test: *inherited*, the supernet's
support tensors under the searched choices (what the paper exports and reports), and *alone*, fresh support
tensors and head initialised as the supernet's were, trained with the choices fixed on the same split
(train800) at the supernet's learning rate for ``train.baseline_epochs``, the budget every fixed-model method
gets. Only weight sharing (and the epoch budget that comes with it) differs between the two.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)


def run_standalone(config: Mapping, run, supernet: str | Path, choices: str | Path, out: str | Path, *,
                   device: str = "auto", quiet: bool = True) -> dict:
    """``python -m glora standalone``: write ``out`` (JSON) with the val200 and test top-1 of the searched subnet
    inherited from ``supernet`` (train's weights) and trained alone; ``<out>.resume.pt`` while training."""
    from glora.atomic import write_json
    from glora.config import train_settings
    from glora.data.loading import predict
    from glora.devices import resolve_device
    from glora.errors import ConfigError, WeightsError
    from glora.experiment import batches, build_model, open_split
    from glora.fit import fit
    from glora.methods.glora.model import set_choices
    from glora.provenance import provenance
    from glora.search_space import SearchSpace, read_choices
    from glora.seeding import derive_seed, fingerprint_of, seed_everything
    from glora.weights import num_classes_of

    if run.method != "glora":
        raise ConfigError(f"standalone compares GLoRA subnets with their supernet; {run.method!r} is not GLoRA")
    began = time.perf_counter()
    out, supernet = Path(out), Path(supernet)
    metrics_path = supernet.with_name("metrics.json")
    if not metrics_path.is_file():
        raise WeightsError(f"{metrics_path} does not exist: --supernet must be train's weights.safetensors, with "
                         "its metrics.json beside it")
    supernet_settings = json.loads(metrics_path.read_text())["settings"]
    settings = {**train_settings(config, run.method, run.task, supernet=False), "lr": supernet_settings["lr"]}
    device = resolve_device(device)
    num_classes = num_classes_of(supernet)

    def split(role: str, train: bool = False):
        data = open_split(config, run, role, train=train)
        return batches(config, data, settings["batch_size"] if train else 256, device, shuffle=train,
                       augmented=train and run.family == "fewshot", quiet=quiet)

    val, test = split("val"), split("test")

    def top1(model) -> dict:
        model.eval()
        result = {}
        for name, data in (("val200", val), ("test", test)):
            preds, labels = predict(model, data)
            result[name] = round(100 * (preds == labels).double().mean().item(), 4)
        return result

    inherited = build_model(config, run, num_classes, weights=supernet).to(device)
    chosen = SearchSpace.from_model(inherited).validate(read_choices(choices))
    set_choices(inherited, chosen)
    scores = {"inherited": top1(inherited)}
    del inherited

    seed_everything(derive_seed(run.seed, -1))  # the same initial support tensors and head as the supernet's
    model = build_model(config, run, num_classes, drop_path=settings["drop_path"]).to(device)
    set_choices(model, chosen)
    fingerprint = fingerprint_of(run.to_dict(), settings, chosen, config["backbone"], config["paths"]["checkpoint"])
    result = fit(model, split("search_train", train=True), val, settings, seed=run.seed,
                 checkpoint=Path(f"{out}.resume.pt"), fingerprint=fingerprint, quiet=quiet,
                 desc=f"standalone {run.size} {run.task}")
    scores["alone"] = top1(model)
    record = {"stage": "standalone", **run.to_dict(), "supernet": str(supernet), "choices_file": str(choices),
              "params": SearchSpace.from_model(model).count_params(chosen), "train_split": "train800",
              "settings": settings, "supernet_epochs": supernet_settings["epochs"], **scores,
              "test_delta": round(scores["alone"]["test"] - scores["inherited"]["test"], 4),
              "epochs": result.rows, "provenance": provenance(config, seed=run.seed, device=device)}
    log.info("standalone %s %s: %.1f s", run.size, run.task, time.perf_counter() - began)
    write_json(out, record)
    Path(f"{out}.resume.pt").unlink(missing_ok=True)
    return record
