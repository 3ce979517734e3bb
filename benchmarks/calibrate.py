"""Measure the calibration rows of ``python -m glora plan``: images/s per (backbone, kind) on this device.

Kinds (each a step of what the pipeline runs, on a random-weight backbone: speed does not depend on values):

- ``glora``: a GLoRA supernet training step (forward, backward, AdamW), a random path per layer per step, the
  first GLoRA size of the configuration (the paper's: ranks 8 and 4);
- ``lora``, ``full``, ``linear``, ``noah``: the training step of that method with the configuration's settings
  (NOAH: its supernet, a random subnet per forward);
- ``inference``: a forward pass of the plain backbone under ``torch.inference_mode``;
- ``search``: one search candidate per val200 (appendix B): a subnet merged into the re-used plain model
  (measured) plus 200 images at the ``inference`` rate, as images/s.

Step times are medians of ``--steps`` steps after two warm-up steps. The rows are printed as CSV (the columns
of ``config/calibration.csv``); ``--write`` merges them into that file (a row of the same backbone, kind and
device is replaced). Every row records where it was measured and the load of the machine.

    python benchmarks/calibrate.py                                   # ViT-B/16 and Swin-B, CPU, batch 8
    python benchmarks/calibrate.py --device cuda --batch 64 --write config/calibration.csv
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from glora.plan_cost import FIELDS  # noqa: E402

BACKBONES = {"vit_base_patch16_224.orig_in21k": ("glora", "lora", "full", "linear", "noah", "inference", "search"),
             "swin_base_patch4_window7_224.ms_in22k": ("glora", "inference", "search")}
VAL_IMAGES = 200


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"cpu ({cpu}, {torch.get_num_threads()} threads)"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(config: dict, backbone: str, kind: str, device: torch.device) -> tuple[torch.nn.Module, callable]:
    """The model of ``kind`` and its ``before_train`` hook (path sampling) or None."""
    from glora.config import method_settings
    from glora.methods.registry import get_method
    from glora.models import create_backbone

    torch.manual_seed(0)
    model = create_backbone(backbone, num_classes=100)
    hook = None
    if kind not in ("inference", "search"):
        spec = get_method(kind)
        kwargs = method_settings(config, kind)
        if kind == "glora":
            kwargs["ranks"] = list(config["glora"]["sizes"][0]["ranks"])
        spec.apply(model, **kwargs)
        if spec.train_hooks is not None:
            hook = spec.train_hooks(model)[0]
        if kind == "glora":
            from supernet import trained_like

            trained_like(model)
    return model.to(device), hook


def train_rate(config: dict, backbone: str, kind: str, device: torch.device, batch: int, steps: int,
               dtype: torch.dtype) -> float:
    from glora.models import get_backbone

    model, hook = build(config, backbone, kind, device)
    model.train()
    if hook is not None:
        hook(torch.Generator().manual_seed(0))
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-4)
    x = torch.randn(batch, *get_backbone(backbone).input_size, device=device)
    y = torch.randint(0, 100, (batch,), device=device)
    amp = dtype != torch.float32

    def step() -> float:
        sync(device)
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            loss = F.cross_entropy(model(x), y)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        sync(device)
        return time.perf_counter() - t0

    step(), step()
    return batch / statistics.median(step() for _ in range(steps))


@torch.no_grad()
def inference_rate(backbone: str, device: torch.device, batch: int, steps: int, dtype: torch.dtype) -> float:
    from glora.models import create_backbone, get_backbone

    torch.manual_seed(0)
    model = create_backbone(backbone, num_classes=100).to(device).eval()
    x = torch.randn(batch, *get_backbone(backbone).input_size, device=device)
    amp = dtype != torch.float32

    def once() -> float:
        sync(device)
        t0 = time.perf_counter()
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=amp):
            model(x)
        sync(device)
        return time.perf_counter() - t0

    once(), once()
    return batch / statistics.median(once() for _ in range(steps))


def merge_seconds(config: dict, backbone: str, device: torch.device, repeats: int = 3) -> float:
    """Median seconds of writing one random subnet into the re-used plain model (what a candidate adds)."""
    import glora
    from glora.methods.glora import SubnetMerger

    model, _ = build(config, backbone, "glora", device)
    space, merge = glora.SearchSpace.from_model(model), SubnetMerger(model.eval())
    times = []
    for k in range(repeats + 1):
        choices = space.sample(k)
        sync(device)
        t0 = time.perf_counter()
        merge(choices)
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def calibrate(config: dict, backbones: dict[str, tuple[str, ...]], device: torch.device, batch: int, steps: int,
              dtype: torch.dtype, where: str, command: str, say=print) -> list[dict]:
    rows = []
    name = device_name(device)
    for backbone, kinds in backbones.items():
        infer = None
        for kind in kinds:
            t0 = time.perf_counter()
            if kind == "inference":
                rate = infer = inference_rate(backbone, device, batch, steps, dtype)
            elif kind == "search":
                if infer is None:
                    infer = inference_rate(backbone, device, batch, steps, dtype)
                rate = VAL_IMAGES / (merge_seconds(config, backbone, device) + VAL_IMAGES / infer)
            else:
                rate = train_rate(config, backbone, kind, device, batch, steps, dtype)
            row = {"backbone": backbone, "kind": kind, "device": name, "dtype": str(dtype).removeprefix("torch."),
                   "batch": batch, "images_per_s": f"{rate:.4g}", "threads": torch.get_num_threads(),
                   "where": f"{where}, load {os.getloadavg()[0]:.2f}", "command": command}
            rows.append(row)
            say(f"{backbone} {kind}: {rate:.4g} images/s ({time.perf_counter() - t0:.0f} s; load "
                f"{os.getloadavg()[0]:.2f})")
    return rows


def merge_into(path: Path, rows: list[dict]) -> None:
    """Write ``rows`` into the calibration CSV, replacing rows of the same (backbone, kind, device)."""
    keep, header = [], []
    if path.is_file():
        lines = path.read_text().splitlines(keepends=True)
        header = [line for line in lines if line.startswith("#")]
        new = {(r["backbone"], r["kind"], r["device"]) for r in rows}
        keep = [r for r in csv.DictReader(line for line in lines if not line.startswith("#"))
                if (r["backbone"], r["kind"], r["device"]) not in new]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows([*keep, *rows])
    path.write_text("".join(header) + out.getvalue())


def main() -> None:
    from glora.config import load_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=None, help="default: 64 on a GPU (the paper's), 8 on a CPU")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per kind (after 2 warm-up steps)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=list(BACKBONES))
    parser.add_argument("--where", default="", help="where this was measured (default: the device's name)")
    parser.add_argument("--write", type=Path, help="merge the rows into this CSV (config/calibration.csv)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    batch = args.batch or (64 if device.type == "cuda" else 8)
    config = load_config([ROOT / "config.yaml"])
    command = f"python benchmarks/calibrate.py --device {args.device} --batch {batch} --dtype {args.dtype}"
    where = args.where or f"measured on {device_name(device)}"
    rows = calibrate(config, {b: BACKBONES[b] for b in args.backbones}, device, batch, args.steps,
                     getattr(torch, args.dtype), where, command)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    print(out.getvalue(), end="")
    if args.write:
        merge_into(args.write, rows)
        print(f"merged into {args.write}")


if __name__ == "__main__":
    main()
