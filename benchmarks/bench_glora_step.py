"""Training-step and inference benchmarks for GLoRA; prints ratios (not a test).

Training step = forward + backward + AdamW on the trainable parameters, for:

- ``glora``     the GLoRA supernet (ranks 8, 4), a random path per layer per step, fast forward;
- ``plain``     the same supernet and the same random paths, computed by the plain formula that
                materialises W' = W0 + W0⊙A + B every step (what the authors' code does);
- ``lora``      LoRA r=8 on qkv (GLoRA's degenerate path B = B_d B_u, which is LoRA's computation);
- ``full``      full fine-tuning.

Step times are medians over steps interleaved across the four configurations (so that the machine's
drift hits all alike); peak memory (max RSS on CPU, peak allocated on CUDA) is measured with each
configuration alone in its own process. Inference: the merged model vs the untouched timm model at batch 1, 4, 16.

    python benchmarks/bench_glora_step.py                 # ViT-B/16 at batch 8 and the tiny ViT at 64
    python benchmarks/bench_glora_step.py --quick         # tiny ViT only
    python benchmarks/bench_glora_step.py --device cuda

Targets (issue 2): glora step ≤ 0.85× plain and ≤ 1.0× full; merged inference ≥ 0.98× untouched.

On CPU, glibc hands every large freed block back to the kernel, so each new activation tensor pays
page faults on first touch; GLoRA's extra (small) activation terms suffer from that more than one big
matmul does. To measure the arithmetic rather than the allocator, keep freed memory in the heap:

    MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296 python benchmarks/bench_glora_step.py
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from supernet import trained_like

import glora
from glora.models import create_backbone, get_backbone

CONFIGS = ("glora", "plain", "lora", "full")


def build(config: str, backbone: str, device: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_backbone(backbone, num_classes=100).to(device)
    if config in ("glora", "plain"):
        glora.apply_glora(model, ranks=(8, 4))
        glora.set_choices(model, None)
        glora.set_impl(model, "fast" if config == "glora" else "reference")
        for layer in glora.glora_layers(model).values():  # same paths in both configurations
            layer.generator = torch.Generator().manual_seed(1)
        trained_like(model)
    elif config == "lora":
        names = glora.apply_glora(model, ranks=(8,), target_modules=r"blocks\.\d+\.attn\.qkv")
        glora.set_choices(model, dict.fromkeys(names, {"A": "none", "B": "lora8", "C": "none", "D": "none",
                                                        "E": "none"}))
    return model


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device: str) -> float:
    """Seconds ``fn()`` takes, with the device synchronised before and after."""
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Trainer:
    """One configuration's model, optimiser and a fixed batch; ``step()`` returns its seconds."""

    def __init__(self, config: str, backbone: str, batch: int, device: str):
        self.model = build(config, backbone, device).train()
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optim = torch.optim.AdamW(self.params, lr=1e-4, weight_decay=1e-4)
        self.x = torch.randn(batch, *get_backbone(backbone).input_size, device=device)
        self.y = torch.randint(0, 100, (batch,), device=device)
        self.device = device

    def step(self) -> float:
        return timed(self._step, self.device)

    def _step(self) -> None:
        loss = F.cross_entropy(self.model(self.x), self.y)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        self.optim.step()


def child(config: str, backbone: str, batch: int, device: str) -> dict:
    """Peak memory of one configuration, alone in its process (two steps: AdamW state included)."""
    trainer = Trainer(config, backbone, batch, device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    before = peak_memory_mb(device)
    trainer.step()
    trainer.step()
    peak = peak_memory_mb(device)
    return {"peak_mb": peak, "step_mb": peak - before, "trainable": sum(p.numel() for p in trainer.params)}


def step_times(backbone: str, batch: int, steps: int, device: str) -> dict[str, float]:
    """Median step seconds per configuration, the configurations interleaved step by step so
    that the machine's drift hits them all alike."""
    trainers = {c: Trainer(c, backbone, batch, device) for c in CONFIGS}
    for t in trainers.values():
        t.step()  # warm-up: allocators, AdamW state
    times = {c: [] for c in CONFIGS}
    for _ in range(steps):
        for c, t in trainers.items():
            times[c].append(t.step())
    return {c: statistics.median(v) for c, v in times.items()}


@torch.no_grad()
def inference(backbone: str, device: str, batches=(1, 4, 16), seconds: float = 4.0) -> list[dict]:
    """Images/s of the merged GLoRA model vs the untouched model, measured interleaved."""
    model = build("glora", backbone, device).eval()
    space = glora.SearchSpace.from_model(model)
    merged = glora.merge_glora(model, space.sample(0)).eval()
    torch.manual_seed(0)
    untouched = create_backbone(backbone, num_classes=100).to(device).eval()
    rows = []
    for batch in batches:
        x = torch.randn(batch, *get_backbone(backbone).input_size, device=device)
        timings = {"merged": [], "untouched": []}
        for m in (merged, untouched):
            m(x)  # warm-up
        once = timed(lambda x=x: untouched(x), device)
        rounds = min(200, max(5, int(seconds / once)))  # ~2x seconds per batch size
        for _ in range(rounds):
            for name, m in (("untouched", untouched), ("merged", merged)):
                timings[name].append(timed(lambda m=m, x=x: m(x), device))
        ips = {k: batch / statistics.median(v) for k, v in timings.items()}
        rows.append({"batch": batch, **ips, "ratio": ips["merged"] / ips["untouched"]})
    return rows


def run_child(config: str, backbone: str, batch: int, device: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", config, "--backbone", backbone, "--batch",
                          str(batch), "--device", device], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(backbone: str, batch: int, steps: int, device: str, say=print) -> None:
    rows = {c: run_child(c, backbone, batch, device) for c in CONFIGS}
    for c, seconds in step_times(backbone, batch, steps, device).items():
        rows[c]["seconds"] = seconds
    load = f"[load {os.getloadavg()[0]:.2f}, {backbone}, batch {batch}, {device}]"
    say(f"\n## training step: {backbone}, batch {batch}, {device}, median of {steps} interleaved steps")
    say(f"{'config':8} {'s/step':>8} {'peak MB':>9} {'step MB':>9} {'trainable':>11}")
    for c, r in rows.items():
        say(f"{c:8} {r['seconds']:8.3f} {r['peak_mb']:9.0f} {r['step_mb']:9.0f} {r['trainable']:11d}")
    g = rows["glora"]
    for ref in ("plain", "full", "lora"):
        print(f"glora / {ref:5}: time {g['seconds'] / rows[ref]['seconds']:.3f}x, "
              f"peak memory {g['peak_mb'] / rows[ref]['peak_mb']:.3f}x, "
              f"step memory {g['step_mb'] / max(rows[ref]['step_mb'], 1e-9):.3f}x  {load}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="tiny ViT only")
    parser.add_argument("--steps", type=int, default=5, help="ViT-B/16 steps per configuration")
    parser.add_argument("--ratios", action="store_true", help="print only the ratio lines (make bench)")
    parser.add_argument("--child", choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--backbone", default="vit_mini", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=64, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.backbone, args.batch, args.device)))
        return
    say = (lambda *a: None) if args.ratios else print
    say(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    setups = [("vit_mini", 64, max(args.steps, 30))]
    if not args.quick:
        setups.append(("vit_base_patch16_224.orig_in21k", 8, args.steps))
    for backbone, batch, steps in setups:
        report(backbone, batch, steps, args.device, say)
    for backbone, _, _ in setups:
        say(f"\n## inference: merged GLoRA vs untouched {backbone}, images/s")
        for r in inference(backbone, args.device):
            say(f"batch {r['batch']:3d}: merged {r['merged']:9.1f}  untouched {r['untouched']:9.1f}  "
                f"ratio {r['ratio']:.3f}")
            if args.ratios:
                print(f"merged / untouched inference, {backbone}, batch {r['batch']}: {r['ratio']:.3f}x  "
                      f"[load {os.getloadavg()[0]:.2f}, {args.device}]")


if __name__ == "__main__":
    main()
