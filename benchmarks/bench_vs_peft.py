"""GLoRA training step, ours against the peer implementation (Hugging Face PEFT's GLoRA tuner); prints ratios.

PEFT ships a GLoRA tuner with one fixed configuration per model (every adapted layer the same; no supernet, no
search, no entangled ranks). A user who wants GLoRA picks it or us, so this compares the two at what PEFT can
do: ViT-B/16 with all 48 linears adapted (qkv, proj, fc1, fc2 of every block), one training step (forward,
backward and AdamW on the trainable tensors, the classifier head included on both sides), at the same fixed
configurations, and our supernet step (a random path per layer and step, ranks 8 and 4) against PEFT's step
at its LoRA configuration.

Configurations (ours: the choice of every layer; PEFT: ``config_A_B``, ``config_C``, ``config_D_E``, r=8):

- ``lora``      A, B lora8; C lora8; D, E vector     (PEFT: lora, lora, vector)
- ``vector``    A, B vector; C vector; D, E scalar   (PEFT: vector, vector, constant)
- ``scalar``    A, B scalar; C none; D, E scalar     (PEFT: constant, none, constant)

Before timing, PEFT's tensors are copied into ours and the logits compared (the same function is computed).
Step times are medians over steps interleaved across all implementations (the order rotated every round,
so the machine's drift and order effects hit all alike); peak memory is measured for each in a process of
its own (max RSS on CPU, peak allocated on CUDA).

    python benchmarks/bench_vs_peft.py                       # batch 4, 5 rounds, the machine's threads
    python benchmarks/bench_vs_peft.py --ratios              # only the ratio lines (make bench)
    python benchmarks/bench_vs_peft.py --profile lora        # where one step's time goes (ours and PEFT)

Targets (issue 20): every fixed configuration <= 0.6x PEFT, the supernet <= 0.45x PEFT's lora step, peak
memory <= PEFT's. Needs ``pip install -e '.[bench]'`` (peft).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import threading
import time

import torch
import torch.nn.functional as F
from supernet import trained_like

import glora
from glora.models import create_backbone, get_backbone

BACKBONE = "vit_base_patch16_224.orig_in21k"
TARGETS = r"blocks\.\d+\.(attn\.(qkv|proj)|mlp\.(fc1|fc2))"
#: configuration -> (our choice for every layer, PEFT's (config_A_B, config_C, config_D_E))
CONFIGS = {
    "lora": ({"A": "lora8", "B": "lora8", "C": "lora8", "D": "vector", "E": "vector"}, ("lora", "lora", "vector")),
    "vector": ({"A": "vector", "B": "vector", "C": "vector", "D": "scalar", "E": "scalar"},
               ("vector", "vector", "constant")),
    "scalar": ({"A": "scalar", "B": "scalar", "C": "none", "D": "scalar", "E": "scalar"},
               ("constant", "none", "constant")),
}
SUPERNET = "supernet"


def load() -> str:
    """The 1-minute load average and the cores, for the line beside every number."""
    return f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def backbone(device: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_backbone(BACKBONE, num_classes=100).to(device)


def peft_model(config: str, device: str) -> torch.nn.Module:
    from peft import GloraConfig, get_peft_model

    ab, c, de = CONFIGS[config][1]
    cfg = GloraConfig(r=8, target_modules=TARGETS, config_A_B=ab, config_C=c, config_D_E=de,
                      modules_to_save=["head"])
    model = get_peft_model(backbone(device), cfg)
    with torch.no_grad():  # a trained adapter: non-zero tensors (PEFT initialises the down factors to zero)
        gen = torch.Generator().manual_seed(1)
        for name, p in model.named_parameters():
            if p.requires_grad and "glora_" in name:
                p.copy_(torch.randn(p.shape, generator=gen).to(p) * 0.01)
    layers = [m for m in model.modules() if type(m).__name__ == "GloraLinear"]
    assert len(layers) == 48, len(layers)
    return model


def our_model(config: str, device: str) -> torch.nn.Module:
    model = backbone(device)
    if config == SUPERNET:
        glora.apply_glora(model, ranks=(8, 4))
        glora.set_choices(model, None)
        for layer in glora.glora_layers(model).values():
            layer.generator = torch.Generator().manual_seed(1)
    else:
        names = glora.apply_glora(model, ranks=(8,))
        glora.set_choices(model, dict.fromkeys(names, CONFIGS[config][0]))
    trained_like(model)
    return model


@torch.no_grad()
def copy_peft_into_ours(peft: torch.nn.Module, ours: torch.nn.Module) -> None:
    """PEFT's adapter tensors (and head) into our entangled tensors, so that both compute the same function."""
    pl = {n.removeprefix("base_model.model."): m for n, m in peft.named_modules() if type(m).__name__ == "GloraLinear"}
    for name, layer in glora.glora_layers(ours).items():
        src = pl[name]
        for t in "ABCDE":
            path = getattr(src, f"glora_{t}")["default"]
            kind = type(path).__name__
            d = layer.D if t == "D" else layer.E if t == "E" else getattr(layer, f"{t}_d")
            if kind == "GloraLoraPath":
                r = path.Xd.shape[1]
                d[:, :r].copy_(path.Xd)
                getattr(layer, f"{t}_u")[:r].copy_(path.Xu)
            elif kind == "GloraVectorPath":
                (d[:, :1] if d.dim() == 2 else d).copy_(path.X.reshape(d[:, :1].shape if d.dim() == 2 else d.shape))
            elif kind == "GloraScalarPath":
                (d[:1, :1] if d.dim() == 2 else d[:1]).copy_(path.X.reshape(-1)[:1].reshape(
                    (1, 1) if d.dim() == 2 else (1,)))
    head = {n.split("modules_to_save.default.")[-1]: p for n, p in peft.named_parameters()
            if "modules_to_save.default" in n}
    ours.head.weight.copy_(head["weight"])
    ours.head.bias.copy_(head["bias"])


class Trainer:
    """One implementation's model, AdamW on its trainable tensors and a fixed batch; ``step()`` -> seconds."""

    def __init__(self, impl: str, config: str, batch: int, device: str, x=None, y=None):
        self.model = (peft_model(config, device) if impl == "peft" else our_model(config, device)).train()
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optim = torch.optim.AdamW(self.params, lr=1e-4, weight_decay=1e-4)
        gen = torch.Generator().manual_seed(2)
        if x is None:
            x = torch.randn(batch, *get_backbone(BACKBONE).input_size, generator=gen).to(device)
        self.x = x
        self.y = y if y is not None else torch.randint(0, 100, (batch,), generator=gen).to(device)
        self.device = device

    def step(self) -> float:
        sync(self.device)
        start = time.perf_counter()
        loss = F.cross_entropy(self.model(self.x), self.y)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        self.optim.step()
        sync(self.device)
        return time.perf_counter() - start


def rss_mb() -> float:
    """The process's resident memory now (VmRSS), MiB."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


class RssPeak(threading.Thread):
    """The largest resident memory seen while it runs (sampled every 2 ms): ru_maxrss cannot be reset, so on a CPU
    it would report the model's construction, the same for both implementations, rather than the steps."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.done = rss_mb(), threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.002):
            self.peak = max(self.peak, rss_mb())

    def stop(self) -> float:
        self.done.set()
        self.join()
        return max(self.peak, rss_mb())


def child(impl: str, config: str, batch: int, device: str) -> dict:
    """Memory of one implementation alone in its process over two steps (AdamW's state included): the peak
    during the steps and what they add to the memory held before them (model, data)."""
    trainer = Trainer(impl, config, batch, device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated() / 2**20
    else:
        gc.collect()
        before, sampler = rss_mb(), RssPeak()
        sampler.start()
    trainer.step()
    trainer.step()
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else sampler.stop()
    return {"peak_mb": peak, "step_mb": peak - before, "trainable": sum(p.numel() for p in trainer.params)}


def run_child(impl: str, config: str, batch: int, device: str, threads: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", impl, config, "--batch", str(batch), "--device",
                          device, "--threads", str(threads)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def same_function(config: str, device: str) -> float:
    """max |logits ours - logits PEFT| with PEFT's tensors copied into ours (eval mode, one batch)."""
    peft, ours = peft_model(config, device).eval(), our_model(config, device).eval()
    copy_peft_into_ours(peft, ours)
    x = torch.randn(2, *get_backbone(BACKBONE).input_size, generator=torch.Generator().manual_seed(3)).to(device)
    with torch.no_grad():
        return (peft(x) - ours(x)).abs().max().item()


def timings(pairs: list[tuple[str, str]], batch: int, rounds: int, device: str) -> dict[tuple[str, str], float]:
    """Median step seconds of every (impl, config), all stepping in turn each round (the order rotated)."""
    trainers = {}
    x = y = None
    for impl, config in pairs:
        trainers[impl, config] = t = Trainer(impl, config, batch, device, x, y)
        x, y = t.x, t.y
    for t in trainers.values():  # warm-up: allocator, AdamW state
        t.step()
        t.step()
    times = {k: [] for k in trainers}
    keys = list(trainers)
    for r in range(rounds):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            times[k].append(trainers[k].step())
    return {k: statistics.median(v) for k, v in times.items()}


def profile(config: str, batch: int, device: str) -> None:
    """The ops where one step's time goes, ours and PEFT's (torch.profiler, self time, 3 steps after warm-up)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    for impl in ("ours", "peft"):
        trainer = Trainer(impl, config, batch, device)
        trainer.step()
        trainer.step()
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
        with torch_profile(activities=activities) as prof:
            for _ in range(3):
                trainer.step()
        key = "self_cuda_time_total" if device.startswith("cuda") else "self_cpu_time_total"
        print(f"\n## {impl}, {config}, batch {batch}: top ops by self time over 3 steps ({load()})")
        print(prof.key_averages(group_by_input_shape=True).table(sort_by=key, row_limit=25, max_name_column_width=40))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved steps per implementation")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--configs", nargs="+", default=[*CONFIGS, SUPERNET], choices=[*CONFIGS, SUPERNET])
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    parser.add_argument("--ratios", action="store_true", help="print only the ratio lines")
    parser.add_argument("--profile", choices=list(CONFIGS), help="profile one configuration instead")
    parser.add_argument("--child", nargs=2, metavar=("IMPL", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(child(*args.child, args.batch, args.device)))
        return
    if args.profile:
        profile(args.profile, args.batch, args.device)
        return
    say = (lambda *a: None) if args.ratios else print
    fixed = [c for c in args.configs if c != SUPERNET]
    peers = sorted(set(fixed) | ({"lora"} if SUPERNET in args.configs else set()), key=list(CONFIGS).index)
    pairs = [("peft", c) for c in peers] + [("ours", c) for c in args.configs]
    say(f"torch {torch.__version__}, {args.threads} threads, {args.device}, {BACKBONE}, batch {args.batch}, "
        f"{args.rounds} interleaved rounds; {load()} at start")
    for c in fixed:
        say(f"same function at {c}: max |logits ours - PEFT| = {same_function(c, args.device):.2e}")
    seconds = timings(pairs, args.batch, args.rounds, args.device)
    memory = {} if args.no_memory else {k: run_child(*k, args.batch, args.device, args.threads) for k in pairs}
    end = load()
    say(f"\n{'impl':5} {'config':9} {'s/step':>8} {'peak MB':>9} {'step MB':>9} {'trainable':>10}")
    for (impl, c), s in seconds.items():
        m = memory.get((impl, c), {})
        say(f"{impl:5} {c:9} {s:8.3f} {m.get('peak_mb', float('nan')):9.0f} {m.get('step_mb', float('nan')):9.0f} "
            f"{m.get('trainable', 0):10d}")
    for c in args.configs:
        peer = "lora" if c == SUPERNET else c
        line = f"ours/PEFT {c:8} (PEFT at {peer:6}): time {seconds['ours', c] / seconds['peft', peer]:.3f}x"
        if memory:
            ours, theirs = memory["ours", c], memory["peft", peer]
            line += (f", peak memory {ours['peak_mb'] / theirs['peak_mb']:.3f}x"
                     f" (the steps' own {ours['step_mb'] / theirs['step_mb']:.3f}x)")
        print(f"{line}  [{end}, batch {args.batch}, {args.threads} threads, {args.device}]")


if __name__ == "__main__":
    main()
