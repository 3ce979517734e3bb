"""``make gpu-check``: what no GPU has run yet -- CUDA, bf16 autocast, pinned memory, data-loader workers -- in
one script of at most ~8 minutes on one GPU, printed as one summary.

CPU-side parts (always): the GLoRA layer's fast path against the plain formula, the merge against the adapted
model, and ``python -m glora plan``. Without a CUDA device the script says so and exits 0 after them.

GPU parts, in order (each is skipped with a note when the time left, ``--budget-s``, is too short for it):

1. CUDA vs CPU (float32, TF32 off): the GLoRA layer's output and every gradient for a sample of choices; the
   merged tensors; a ViT-B/16 supernet's subnet merged on CUDA vs on CPU;
2. a bf16-autocast supernet training step on ViT-B/16 at batch 64: loss and every gradient finite;
   the data path with pinned memory and 2 loader workers against 0 workers (same batches);
3. images/s at batch 64 in bf16: GLoRA supernet, LoRA, full fine-tuning; and Table 4 on the GPU (the
   ``efficiency`` stage on ViT-B/16: every merged method against the untouched backbone, with the spread);
4. the tiny LLaMA: llm-mini, llm-train (GLoRA), llm-search, llm-export on CUDA;
5. the calibration rows of ``python -m glora plan`` (float32, batch 64, ViT-B/16 and Swin-B), written to
   ``$OUT/calibration_gpu.csv`` (or ``--out``) to be merged into config/calibration.csv;
6. the CI overlay through Snakemake with ``--resources gpu=1`` and ``resources.gpu: 1`` (every GPU rule on
   CUDA), into results/ci_gpu; its comparison with the CPU golden tables is reported, not enforced.

    python benchmarks/gpu_check.py                   # make gpu-check
    python benchmarks/gpu_check.py --budget-s 600 --skip ci
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from supernet import trained_like  # noqa: E402

import glora  # noqa: E402
from glora.layout import Layout  # noqa: E402
from glora.models import create_backbone, get_backbone  # noqa: E402

VIT = "vit_base_patch16_224.orig_in21k"
SUMMARY: list[str] = []
#: rough seconds each part needs on one H100/H200-class GPU (a part starts only with this much time left)
NEEDS = {"equality": 40, "bf16": 30, "speed": 60, "table4": 90, "llm": 60, "calibration": 90, "ci": 150}


def note(part: str, status: str, text: str, seconds: float | None = None) -> None:
    took = f" ({seconds:.0f} s)" if seconds is not None else ""
    line = f"{status:4} {part:12} {text}{took}"
    SUMMARY.append(line)
    print(line, flush=True)


def run(cmd: list[str], timeout: float, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def random_support(model: torch.nn.Module, std: float = 0.02, seed: int = 0) -> None:
    trained_like(model, std, torch.Generator().manual_seed(seed))


# -- CPU-side parts ---------------------------------------------------------------------------------------------

def cpu_layer() -> str:
    from torch import nn

    torch.manual_seed(0)
    layer = glora.GLoRALinear(nn.Linear(64, 96), ranks=(8, 4))
    random_support(nn.Sequential(layer))
    x = torch.randn(4, 5, 64)
    worst = 0.0
    for k in range(60):
        choice = layer.sample_choice(torch.Generator().manual_seed(k))
        worst = max(worst, (layer.fast_forward(x, choice) - layer.reference_forward(x, choice)).abs().max().item())
    assert worst < 1e-5, worst
    return f"fast = plain formula on 60 choices, max |diff| {worst:.1e}"


def cpu_merge() -> str:
    torch.manual_seed(0)
    model = create_backbone("vit_mini", num_classes=10).eval()
    glora.apply_glora(model, ranks=(8, 4))
    random_support(model)
    space = glora.SearchSpace.from_model(model)
    choices = space.sample(0)
    glora.set_choices(model, choices)
    x = torch.randn(8, *get_backbone("vit_mini").input_size)
    with torch.no_grad():
        diff = (glora.merge_glora(model, choices).eval()(x) - model(x)).abs().max().item()
    assert diff < 1e-4, diff
    return f"merged vit_mini = adapted, max |logit diff| {diff:.1e}"


def cpu_plan() -> str:
    out = run([sys.executable, "-m", "glora", "plan", "--json"], timeout=120)
    if out.returncode:
        raise RuntimeError(out.stderr[-1500:])
    plan = json.loads(out.stdout)
    return (f"paper: {plan['total_jobs']} jobs, {plan['total_hours']} {plan['unit']} on {plan['device']} "
            f"(python -m glora plan)")


# -- GPU parts ----------------------------------------------------------------------------------------------------

def equality(dev: torch.device) -> str:
    from torch import nn

    from glora.methods.glora import SubnetMerger

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    cpu = glora.GLoRALinear(nn.Linear(768, 3072), ranks=(8, 4))
    random_support(nn.Sequential(cpu))
    gpu = glora.GLoRALinear(nn.Linear(768, 3072), ranks=(8, 4)).to(dev)
    gpu.load_state_dict(cpu.state_dict())
    x = torch.randn(2, 197, 768)
    g = torch.randn(2, 197, 3072)
    worst = {"out": 0.0, "grad": 0.0, "merge": 0.0}
    for k in range(40):
        choice = cpu.sample_choice(torch.Generator().manual_seed(k))
        res = []
        for layer, d in ((cpu, "cpu"), (gpu, dev)):
            layer.zero_grad(set_to_none=True)
            xx = x.to(d).requires_grad_(True)
            out = layer.fast_forward(xx, choice)
            out.backward(g.to(d))
            grads = [xx.grad] + [p.grad for p in layer.support_tensors().values()]
            res.append((out.detach().cpu(), [None if t is None else t.cpu() for t in grads],
                        [t.cpu() for t in layer.merged_tensors(choice, torch.float32) if t is not None]))
        (o1, g1, m1), (o2, g2, m2) = res
        scale = lambda t: max(t.abs().max().item(), 1e-12)  # noqa: E731
        worst["out"] = max(worst["out"], (o1 - o2).abs().max().item() / scale(o1))
        for a, b in zip(g1, g2):
            assert (a is None) == (b is None), choice
            if a is not None:
                worst["grad"] = max(worst["grad"], (a - b).abs().max().item() / scale(a))
        for a, b in zip(m1, m2):
            worst["merge"] = max(worst["merge"], (a - b).abs().max().item() / scale(a))
    assert max(worst.values()) < 1e-5, worst
    # a whole supernet's subnet merged on both devices (the search's SubnetMerger)
    torch.manual_seed(0)
    model = create_backbone(VIT, num_classes=100).eval()
    glora.apply_glora(model, ranks=(8, 4))
    random_support(model)
    choices = glora.SearchSpace.from_model(model).sample(3)
    merged_cpu = SubnetMerger(model)(choices)
    ref = {k: v.clone() for k, v in merged_cpu.state_dict().items()}
    merged_gpu = SubnetMerger(model.to(dev))(choices)
    vit = max((v.cpu() - ref[k]).abs().max().item() / max(ref[k].abs().max().item(), 1e-12)
              for k, v in merged_gpu.state_dict().items())
    x = torch.randn(4, *get_backbone(VIT).input_size, device=dev)
    glora.set_choices(model, choices)
    with torch.no_grad():
        logits = (merged_gpu(x) - model(x)).abs().max().item()
    assert vit < 1e-5 and logits < 1e-3, (vit, logits)
    return (f"layer 768->3072, 40 choices: max rel |CUDA-CPU| out {worst['out']:.1e}, grads {worst['grad']:.1e}, "
            f"merge {worst['merge']:.1e}; ViT-B/16 subnet merge {vit:.1e}, merged vs supernet on CUDA "
            f"{logits:.1e} (float32, TF32 off)")


def bf16_step(dev: torch.device) -> str:
    from calibrate import train_rate  # noqa: F401  (same step as the calibration)

    torch.manual_seed(0)
    model = create_backbone(VIT, num_classes=100).to(dev).train()
    glora.apply_glora(model, ranks=(8, 4))
    random_support(model)
    glora.set_choices(model, None)
    for layer in glora.glora_layers(model).values():
        layer.generator = torch.Generator().manual_seed(1)
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=5e-4)
    x = torch.randn(64, *get_backbone(VIT).input_size, device=dev)
    y = torch.randint(0, 100, (64,), device=dev)
    losses = []
    for _ in range(3):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x), y)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
        assert torch.isfinite(loss) and not bad, (loss.item(), bad[:5])
        optim.step()
        losses.append(round(loss.item(), 4))
    # pinned memory and loader workers: the same batches as without workers
    from glora.data.loading import Batches

    data = torch.utils.data.TensorDataset(torch.randn(300, 3, 32, 32), torch.randint(0, 10, (300,)))
    got = {}
    for workers in (0, 2):
        b = Batches(data, 64, shuffle=True, fixed_transform=False, device=dev, cache_gb=0.0, num_workers=workers)
        got[workers] = [(x.cpu(), y.cpu()) for x, y in b.epoch(torch.Generator().manual_seed(0))]
    same = all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(got[0], got[2]))
    assert same and len(got[0]) == len(got[2]), "batches differ between 0 and 2 workers"
    return (f"ViT-B/16 supernet, batch 64, bf16 autocast: losses {losses}, every gradient finite; streamed batches "
            f"with pinned memory and 2 workers = 0 workers")


def speed(dev: torch.device) -> str:
    from calibrate import train_rate

    from glora.config import load_config

    config = load_config([ROOT / "config.yaml"])
    rates = {k: train_rate(config, VIT, k, dev, 64, 5, torch.bfloat16) for k in ("glora", "lora", "full")}
    return ("ViT-B/16 training, batch 64, bf16, images/s: " + ", ".join(f"{k} {v:.0f}" for k, v in rates.items())
            + f"; supernet/LoRA {rates['glora'] / rates['lora']:.2f}x, "
            f"supernet/full {rates['glora'] / rates['full']:.2f}x")


def table4(dev: torch.device, out: Path) -> str:
    from glora.config import load_config
    from glora.efficiency import run_efficiency

    config = load_config([ROOT / "config.yaml"], ["efficiency.passes=30", "efficiency.warmup=5"])
    rows = run_efficiency(config, out / "table4_gpu.csv", device=str(dev))
    meta = json.loads((out / "table4_gpu.json").read_text())
    control = meta["spread"]["control (untouched copy)"]
    merged = {r["method"]: r for r in rows if r["merged"] and r["method"] != "backbone"}
    parts = []
    outside = []
    for b in config["efficiency"]["batch_sizes"]:
        lo, hi = control[f"bs{b}"]["min"], control[f"bs{b}"]["max"]
        parts.append(f"bs{b}: merged {min(r[f'relative_bs{b}'] for r in merged.values()):.3f}-"
                     f"{max(r[f'relative_bs{b}'] for r in merged.values()):.3f} (control {lo:.3f}-{hi:.3f})")
        outside += [f"{m}@bs{b}" for m, r in merged.items() if not lo - 0.02 <= r[f"relative_bs{b}"] <= hi + 0.02]
    unmerged = ", ".join(f"{r['method']} {r['relative_bs16']:.2f}" for r in rows if not r["merged"])
    return (f"Table 4 on {meta['provenance']['device'].get('name', dev)}: " + "; ".join(parts)
            + f"; unmerged at bs16: {unmerged}; load {meta['load']}"
            + (f"; outside the control's spread: {outside}" if outside else ""))


def llm(dev: torch.device, out: Path, timeout: float) -> str:
    base = ["--config", str(ROOT / "config.yaml"), "--config", str(ROOT / "config/mini.yaml"), "--config",
            str(ROOT / "config/ci.yaml"), "--quiet"]
    steps = [["llm-mini", "--out", str(out / "llm")],
             ["llm-train", *base, "--device", "cuda", "--method", "glora", "--model", str(out / "llm/tiny-llama"),
              "--data", str(out / "llm/instructions/alpaca.json"), "--out", str(out / "llm-train")],
             ["llm-search", *base, "--device", "cuda", "--model", str(out / "llm/tiny-llama"), "--weights",
              str(out / "llm-train/weights.safetensors"), "--eval-data", str(out / "llm/eval"), "--out",
              str(out / "llm-search")],
             ["llm-export", *base, "--device", "cuda", "--model", str(out / "llm/tiny-llama"), "--weights",
              str(out / "llm-train/weights.safetensors"), "--choices", str(out / "llm-search/best.json"), "--out",
              str(out / "llm-export")]]
    last = {}
    for argv in steps:
        r = run([sys.executable, "-m", "glora", *argv], timeout=timeout)
        if r.returncode:
            raise RuntimeError(f"python -m glora {argv[0]} exited {r.returncode}: {r.stderr[-1500:]}")
        last = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
    return f"tiny LLaMA glora: train, search, export on CUDA; export card {last}"


def calibration(dev: torch.device, out: Path) -> str:
    from calibrate import BACKBONES, calibrate, merge_into

    from glora.config import load_config

    config = load_config([ROOT / "config.yaml"])
    rows = calibrate(config, BACKBONES, dev, 64, 5, torch.float32, "measured by make gpu-check",
                     "python benchmarks/gpu_check.py (calibrate.py --device cuda --batch 64 --dtype float32)",
                     say=lambda *a: None)
    merge_into(out / "calibration_gpu.csv", rows)
    return (f"{len(rows)} rows written to {out / 'calibration_gpu.csv'}: "
            + ", ".join(f"{r['backbone'].split('_')[0]} {r['kind']} {r['images_per_s']}" for r in rows))


def ci(out: Path, timeout: float) -> str:
    overlay = out / "gpu.yaml"
    # the overlays' paths say {results}: renaming the run moves its data and backbones with it (glora.layout)
    overlay.write_text("name: ci_gpu\nresources: {gpu: 1}\n")
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    t0 = time.perf_counter()
    try:
        r = run([snakemake, "--cores", "all", "--resources", "gpu=1", "--configfile", "config/mini.yaml",
                 "config/ci.yaml", str(overlay), "--quiet", "rules"], timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"INCOMPLETE: the CI overlay ran out of its {timeout:.0f} s (rerun with a larger --budget-s)"
    if r.returncode:
        raise RuntimeError(f"snakemake exited {r.returncode}: {(r.stderr + r.stdout)[-2000:]}")
    deltas = ROOT / Layout.of({"name": "ci_gpu"}).compare / "deltas.csv"
    status = ""
    if deltas.is_file():
        import pandas as pd

        status = f"; against the CPU golden tables: {pd.read_csv(deltas)['status'].value_counts().to_dict()}"
    return f"snakemake --resources gpu=1 on the CI overlay finished in {time.perf_counter() - t0:.0f} s{status}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-s", type=float, default=480, help="stop starting parts after this (default 480)")
    parser.add_argument("--skip", nargs="*", default=[], choices=list(NEEDS), help="parts to leave out")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or ROOT / "results/gpu_check"))
    args = parser.parse_args()
    start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    left = lambda: args.budget_s - (time.perf_counter() - start)  # noqa: E731

    def part(name: str, fn, *a) -> None:
        if name in args.skip:
            note(name, "SKIP", "left out (--skip)")
            return
        if name in NEEDS and left() < NEEDS[name]:
            note(name, "SKIP", f"{left():.0f} s left of the budget, needs ~{NEEDS[name]} s")
            return
        t0 = time.perf_counter()
        try:
            text = fn(*a)
            note(name, "FAIL" if text.startswith("INCOMPLETE") else "ok", text, time.perf_counter() - t0)
        except Exception as err:  # noqa: BLE001 - every part reports, the next one runs
            traceback.print_exc()
            note(name, "FAIL", f"{type(err).__name__}: {str(err)[:400]}", time.perf_counter() - t0)

    print(f"torch {torch.__version__}, CUDA build {torch.version.cuda}, available {torch.cuda.is_available()}",
          flush=True)
    part("cpu-layer", cpu_layer)
    part("cpu-merge", cpu_merge)
    part("cpu-plan", cpu_plan)
    if not torch.cuda.is_available():
        note("gpu", "SKIP", "no CUDA device here (torch.cuda.is_available() is False): the GPU parts did not run")
    else:
        dev = torch.device("cuda")
        note("gpu", "ok", f"{torch.cuda.get_device_name(dev)}, {torch.cuda.device_count()} visible")
        part("equality", equality, dev)
        part("bf16", bf16_step, dev)
        part("speed", speed, dev)
        part("table4", table4, dev, args.out)
        part("llm", llm, dev, args.out, 120)
        part("calibration", calibration, dev, args.out)
        part("ci", lambda: ci(args.out, max(60.0, left() - 10)))
    print("\n## gpu-check summary" + f" ({time.perf_counter() - start:.0f} s)")
    print("\n".join(SUMMARY))
    return 1 if any(line.startswith("FAIL") for line in SUMMARY) else 0


if __name__ == "__main__":
    raise SystemExit(main())
