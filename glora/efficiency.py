"""Table 4: the inference cost of every method -- extra parameters, extra FLOPs and throughput.

Each method adapts a fresh backbone (random weights: speed does not depend on their values) with its
configured hyperparameters, and is deployed as it would be: merged into a plain model where the method can
be re-parameterised, else as the adapted model (searched methods: a random subnet within their budget).
FLOPs are counted by :class:`torch.utils.flop_counter.FlopCounterMode` on one image (a multiply-add counts
as 2). Throughput is images per second at each batch size: ``warmup`` untimed passes, then the median of
``passes`` timed rounds, each timing every model in turn (the order rotated from round to round), CUDA
synchronised, under ``torch.inference_mode``; a timed sample runs as many passes back to back as make the
untouched backbone's sample last ``MIN_SAMPLE_S`` (a 1-image pass of a tiny model is about a millisecond, where
the timer and the scheduler would dominate). Throughput is reported relative to the untouched backbone measured
the same way, which is what carries over between machines.

Noise: an untouched copy of the backbone is timed beside the methods as a control. Its per-round ratio to the
backbone, and every method's, give the spread that a merged model (the same module graph as the backbone) must
fall within; the JSON beside the table records them with the load of the machine while the timings ran (the
workflow's ``efficiency`` rule holds every core, so that no other job runs at the same time).
"""

from __future__ import annotations

import copy
import math
import os
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
#: the shortest timed sample, seconds: shorter passes are repeated back to back within one sample
MIN_SAMPLE_S = {"cpu": 0.02, "cuda": 0.005}
#: other processes' mean CPU use (in cores) above which the measurement is not recorded as alone
ALONE_BELOW_CORES = 0.25


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
    """Images per second of each model on ``x`` (:func:`measure`)."""
    return measure(models, x, warmup, passes)["images_per_s"]


def measure(models: Sequence[nn.Module], x: torch.Tensor, warmup: int, passes: int,
            min_sample_s: float | None = None) -> dict:
    """Time every model on ``x``: ``warmup`` untimed passes each, then ``passes`` rounds that time one sample of
    every model in turn, the order rotated from round to round (so that drifts of the machine's speed and the
    position in a round hit all models alike). A sample is ``reps`` passes back to back, ``reps`` chosen so that
    the first model's sample lasts ``min_sample_s``.

    Returns ``images_per_s`` (per model, from its median sample), ``ratios`` (per model and round: the first
    model's sample time over this model's in the same round, i.e. its relative throughput) and ``reps``."""
    cuda = x.device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    min_sample_s = MIN_SAMPLE_S["cuda" if cuda else "cpu"] if min_sample_s is None else min_sample_s

    def sample(model: nn.Module, reps: int) -> float:
        sync()
        t0 = time.perf_counter()
        for _ in range(reps):
            model(x)
        sync()
        return (time.perf_counter() - t0) / reps

    times: list[list[float]] = [[] for _ in models]
    with torch.inference_mode():
        for model in models:
            for _ in range(warmup):
                model(x)
        reps = max(1, math.ceil(min_sample_s / max(sample(models[0], 1), 1e-9)))
        for p in range(passes):
            for i in [*range(p % len(models), len(models)), *range(p % len(models))]:
                times[i].append(sample(models[i], reps))
    return {"images_per_s": [len(x) / statistics.median(t) for t in times], "reps": reps,
            "ratios": [[t0 / t for t0, t in zip(times[0], ts)] for ts in times]}


def spread(ratios: Sequence[float]) -> dict:
    """Quartiles and extremes of one model's per-round ratios."""
    q = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else [ratios[0]] * 3
    return {"min": round(min(ratios), 4), "q1": round(q[0], 4), "median": round(q[1], 4), "q3": round(q[2], 4),
            "max": round(max(ratios), 4)}


class LoadMeter:
    """The machine's load while a block runs: the 1-minute load average before and after, and the mean number
    of cores that other processes kept busy (Linux: /proc/stat minus this process's own CPU time)."""

    def __init__(self):
        self.record: dict = {}

    @staticmethod
    def _ticks() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as f:
                cpu = [int(v) for v in f.readline().split()[1:]]
            with open("/proc/self/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            # busy ticks (all but idle, iowait, steal), this process's own (utime + stime)
            return sum(cpu[:3]) + sum(cpu[5:7]), int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            return None

    def __enter__(self):
        self.start, self.t0, self.load0 = self._ticks(), time.monotonic(), os.getloadavg()[0]
        return self

    def __exit__(self, *exc):
        end, seconds = self._ticks(), time.monotonic() - self.t0
        self.record = {"seconds": round(seconds, 2), "cpus": os.cpu_count(), "loadavg_1m_start": round(self.load0, 2),
                       "loadavg_1m_end": round(os.getloadavg()[0], 2)}
        if self.start and end and seconds > 0:
            hz = os.sysconf("SC_CLK_TCK")
            others = ((end[0] - self.start[0]) - (end[1] - self.start[1])) / hz / seconds
            self.record.update(other_processes_cores=round(max(others, 0.0), 3),
                               alone=others < ALONE_BELOW_CORES, alone_below_cores=ALONE_BELOW_CORES)
        return False


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
    control = copy.deepcopy(models[BACKBONE_ROW][0]).to(device)  # the noise floor: the backbone against itself
    timed = [*(m for m, _ in models.values()), control]
    noise = {}
    with LoadMeter() as load:
        for b, x in tqdm(inputs.items(), desc="throughput", disable=quiet):
            result = measure(timed, x, eff["warmup"], eff["passes"])
            for row, speed, ratios in zip(rows, result["images_per_s"], result["ratios"]):
                row[f"throughput_bs{b}"] = round(speed, 2)
                noise.setdefault(row["method"], {})[f"bs{b}"] = spread(ratios)
            noise.setdefault("control (untouched copy)", {})[f"bs{b}"] = spread(result["ratios"][-1])
            noise.setdefault("reps_per_sample", {})[f"bs{b}"] = result["reps"]
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
        "load": load.record,
        "spread": {"what": "per timed round, the backbone's sample time over the model's (its relative throughput "
                           "in that round): quartiles and extremes over the rounds; 'control (untouched copy)' is "
                           "the backbone timed against itself, the noise floor",
                   "min_sample_s": MIN_SAMPLE_S["cuda" if device.type == "cuda" else "cpu"], **noise},
        "provenance": provenance(config, seed=0, device=device)})
    return rows
