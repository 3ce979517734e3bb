"""Training-step and inference benchmarks for GLoRA; prints ratios (not a test).

Training step = forward + backward + AdamW on the trainable parameters, for:

- ``glora``     the GLoRA supernet (ranks 8, 4), a random path per layer per step, fast forward;
- ``plain``     the same supernet and the same random paths, computed by the plain formula that
                materialises W' = W0 + W0⊙A + B every step (what the authors' code does);
- ``lora``      LoRA r=8 on qkv (GLoRA's degenerate path B = B_d B_u, which is LoRA's computation);
- ``full``      full fine-tuning.

Each configuration runs in its own process so that its peak memory (max RSS on CPU, peak allocated
on CUDA) is its own. Inference: the merged model vs the untouched timm model at batch 1, 4, 16.

    python benchmarks/bench_glora_step.py                 # ViT-B/16 at batch 8 and the tiny ViT at 64
    python benchmarks/bench_glora_step.py --quick         # tiny ViT only
    python benchmarks/bench_glora_step.py --device cuda

Targets (issue 2): glora step ≤ 0.85× plain and ≤ 1.0× full; merged inference ≥ 0.98× untouched.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

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
            with torch.no_grad():  # a trained supernet has non-zero factors
                for p in layer.support_tensors().values():
                    p.normal_(0, 0.01)
    elif config == "lora":
        names = glora.apply_glora(model, ranks=(8,), target_modules=r"blocks\.\d+\.attn\.qkv")
        glora.set_choices(model, dict.fromkeys(names, {"A": "none", "B": "lora8", "C": "none", "D": "none",
                                                        "E": "none"}))
    return model


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(config: str, backbone: str, batch: int, steps: int, device: str) -> dict:
    """One configuration's training step: median seconds and memory."""
    model = build(config, backbone, device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-4)
    x = torch.randn(batch, *get_backbone(backbone).input_size, device=device)
    y = torch.randint(0, 100, (batch,), device=device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    before = peak_memory_mb(device)
    times = []
    for step in range(steps + 1):
        sync(device)
        start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        sync(device)
        if step:  # the first step warms up allocators and AdamW state
            times.append(time.perf_counter() - start)
    peak = peak_memory_mb(device)
    return {"config": config, "seconds": statistics.median(times), "peak_mb": peak,
            "step_mb": peak - before, "trainable": sum(p.numel() for p in params)}


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
        sync(device)
        start = time.perf_counter()
        untouched(x)
        sync(device)
        rounds = min(200, max(5, int(seconds / (time.perf_counter() - start))))  # ~2x seconds per batch size
        for _ in range(rounds):
            for name, m in (("untouched", untouched), ("merged", merged)):
                sync(device)
                start = time.perf_counter()
                m(x)
                sync(device)
                timings[name].append(time.perf_counter() - start)
        ips = {k: batch / statistics.median(v) for k, v in timings.items()}
        rows.append({"batch": batch, **ips, "ratio": ips["merged"] / ips["untouched"]})
    return rows


def run_child(config: str, backbone: str, batch: int, steps: int, device: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", config, "--backbone", backbone, "--batch",
                          str(batch), "--steps", str(steps), "--device", device],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(backbone: str, batch: int, steps: int, device: str) -> None:
    rows = {c: run_child(c, backbone, batch, steps, device) for c in CONFIGS}
    print(f"\n## training step: {backbone}, batch {batch}, {device}, median of {steps} steps")
    print(f"{'config':8} {'s/step':>8} {'peak MB':>9} {'step MB':>9} {'trainable':>11}")
    for c, r in rows.items():
        print(f"{c:8} {r['seconds']:8.3f} {r['peak_mb']:9.0f} {r['step_mb']:9.0f} {r['trainable']:11d}")
    g = rows["glora"]
    for ref in ("plain", "full", "lora"):
        print(f"glora / {ref:5}: time {g['seconds'] / rows[ref]['seconds']:.3f}x, "
              f"peak memory {g['peak_mb'] / rows[ref]['peak_mb']:.3f}x, "
              f"step memory {g['step_mb'] / max(rows[ref]['step_mb'], 1e-9):.3f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="tiny ViT only")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--child", choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--backbone", default="vit_mini", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=64, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.backbone, args.batch, args.steps, args.device)))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    setups = [("vit_mini", 64, max(args.steps, 10))]
    if not args.quick:
        setups.append(("vit_base_patch16_224.orig_in21k", 8, args.steps))
    for backbone, batch, steps in setups:
        report(backbone, batch, steps, args.device)
    for backbone, _, _ in setups:
        print(f"\n## inference: merged GLoRA vs untouched {backbone}, images/s")
        for r in inference(backbone, args.device):
            print(f"batch {r['batch']:3d}: merged {r['merged']:9.1f}  untouched {r['untouched']:9.1f}  "
                  f"ratio {r['ratio']:.3f}")


if __name__ == "__main__":
    main()
