"""Table 4: the inference cost of every method -- extra parameters, extra FLOPs and throughput.

Each method adapts a fresh backbone (random weights: speed does not depend on their values) with its
configured hyperparameters, and is deployed as it would be: merged into a plain model where the method can
be re-parameterised, else as the adapted model (searched methods: a random subnet within their budget).
FLOPs are counted by :class:`torch.utils.flop_counter.FlopCounterMode` on one image (a multiply-add counts
as 2). Throughput is images per second at each batch size: ``warmup`` untimed passes, then the median of
``passes`` timed passes (CUDA synchronised), under ``torch.inference_mode``; it is reported relative to the
untouched backbone measured the same way, which is what carries over between machines.
"""

from __future__ import annotations

import platform
import random
import statistics
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from glora.atomic import write_csv, write_json
from glora.errors import ConfigError

BACKBONE_ROW = "backbone"


def deployed(config: Mapping, method: str, backbone: str, num_classes: int, task: str | None) -> tuple[nn.Module, bool]:
    """``(model, merged)``: the backbone adapted by ``method`` as it runs at inference."""
    from glora.config import method_settings
    from glora.methods.registry import get_method
    from glora.models import create_backbone

    spec = get_method(method)
    model = create_backbone(backbone, num_classes=num_classes)
    kwargs = method_settings(config, method, task)
    if method == "glora":
        kwargs["ranks"] = list(config["glora"]["sizes"][0]["ranks"])
    spec.apply(model, **kwargs)
    context = {}
    if spec.search_based:
        budget = (config["glora"]["sizes"][0]["budget_m"] if method == "glora"
                  else config["methods"].get(method, {}).get("budget_m", float("inf"))) * 1e6
        space, rng = spec.search_space(model), random.Random(0)
        choices = next((c for c in (space.sample(rng) for _ in range(200)) if space.count_params(c) <= budget),
                       None)
        if choices is None:
            raise ConfigError(f"no random {method} subnet fits {budget / 1e6:g}M parameters in 200 draws; raise "
                              f"{'glora.sizes[0].budget_m' if method == 'glora' else f'methods.{method}.budget_m'}")
        context["choices"] = choices
        if spec.retrain:  # deployed as the retrained subnet, built at its own sizes
            model = create_backbone(backbone, num_classes=num_classes)
            spec.apply(model, **kwargs, subnet=choices)
    if not spec.mergeable:
        return model.eval(), False
    return spec.merge(model, **context).eval(), True


def count_flops(model: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one forward pass on ``x`` (torch's count: 2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops()


def throughputs(models: Sequence[nn.Module], x: torch.Tensor, warmup: int, passes: int) -> list[float]:
    """Images per second of each model on ``x``: ``warmup`` untimed passes each, then ``passes`` rounds that
    time one pass of every model in turn (so that drifts of the machine's speed hit all models alike); the
    median pass of each model."""
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    times: list[list[float]] = [[] for _ in models]
    with torch.inference_mode():
        for model in models:
            for _ in range(warmup):
                model(x)
        for _ in range(passes):
            for i, model in enumerate(models):
                sync()
                t0 = time.perf_counter()
                model(x)
                sync()
                times[i].append(time.perf_counter() - t0)
    return [len(x) / statistics.median(t) for t in times]


def run_efficiency(config: Mapping, out: str | Path, *, device: str = "auto", quiet: bool = True) -> list[dict]:
    """``python -m glora efficiency``: write ``out`` (CSV, one row per method, Table 4's columns) and
    ``out`` with ``.json`` (the settings and the machine, what the ratios were measured on)."""
    from tqdm import tqdm

    from glora.devices import resolve_device
    from glora.methods.registry import names
    from glora.models import create_backbone, get_backbone
    from glora.provenance import provenance

    eff = config["efficiency"]
    backbone = eff.get("backbone") or config["backbone"]
    methods = eff.get("methods") or names()
    device = resolve_device(device)
    torch.manual_seed(0)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"cpu {platform.machine()}, {torch.get_num_threads()} threads"
    inputs = {b: torch.randn(b, *get_backbone(backbone).input_size, device=device) for b in eff["batch_sizes"]}

    models = {BACKBONE_ROW: (create_backbone(backbone, num_classes=eff["num_classes"]).eval(), True)}
    for method in tqdm(methods, desc="build", disable=quiet):
        models[method] = deployed(config, method, backbone, eff["num_classes"], eff.get("task"))
    one = inputs[eff["batch_sizes"][0]][:1]
    rows = []
    for method, (model, merged) in models.items():
        model.to(device).requires_grad_(False)
        rows.append({"method": method, "merged": merged, "params": sum(p.numel() for p in model.parameters()),
                     "flops": count_flops(model, one)})
    for b, x in tqdm(inputs.items(), desc="throughput", disable=quiet):
        for row, speed in zip(rows, throughputs([m for m, _ in models.values()], x, eff["warmup"], eff["passes"])):
            row[f"throughput_bs{b}"] = round(speed, 2)
    base = rows[0]
    for row in rows:
        row["extra_params"] = row["params"] - base["params"]
        row["extra_params_m"] = round(row["extra_params"] / 1e6, 4)
        row["gflops"] = round(row["flops"] / 1e9, 4)
        row["extra_gflops"] = round((row["flops"] - base["flops"]) / 1e9, 4)
        for b in eff["batch_sizes"]:
            row[f"relative_bs{b}"] = round(row[f"throughput_bs{b}"] / base[f"throughput_bs{b}"], 3)
        row.update(backbone=backbone, device=where)
    fields = ["method", "merged", "params", "extra_params", "extra_params_m", "flops", "gflops", "extra_gflops",
              *[f"throughput_bs{b}" for b in eff["batch_sizes"]], *[f"relative_bs{b}" for b in eff["batch_sizes"]],
              "backbone", "device"]
    write_csv(out, rows, fields)
    write_json(Path(out).with_suffix(".json"), {
        "stage": "efficiency", "backbone": backbone, "input_size": list(get_backbone(backbone).input_size),
        "num_classes": eff["num_classes"], "batch_sizes": eff["batch_sizes"], "warmup": eff["warmup"],
        "passes": eff["passes"], "threads": torch.get_num_threads(), "machine": platform.processor() or
        platform.machine(), "note": "throughput in images/s on this machine; compare the relative_* ratios "
        "(to the untouched backbone) with Table 4, not the absolute values (an NVIDIA 3090 there)",
        "provenance": provenance(config, seed=0, device=device)})
    return rows
