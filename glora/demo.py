"""A one-minute tour of the library on a synthetic task (`python -m glora demo`).

Trains a GLoRA supernet on a tiny randomly initialised ViT, samples subnets under a parameter
budget, scores them on a validation split through their merged (plain) models, and checks that the
best merged model reproduces the supernet. The backbone is *not* pre-trained here, so the accuracy
shows the mechanics, not the paper's numbers.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

import glora
from glora.errors import ConfigError
from glora.models import create_backbone


def synthetic_squares(n: int, num_classes: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (n, 3, 32, 32): noise plus a bright 10x10 square whose position encodes the label."""
    labels = torch.randint(0, num_classes, (n,), generator=generator)
    images = 0.3 * torch.randn(n, 3, 32, 32, generator=generator)
    for i, y in enumerate(labels.tolist()):
        r, c = divmod(y, 2)
        images[i, y % 3, 16 * r + 3:16 * r + 13, 16 * c + 3:16 * c + 13] += 2.0
    return images, labels


@torch.no_grad()
def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    return (model(images).argmax(-1) == labels).float().mean().item()


def run_demo(out: Path, epochs: int = 15, candidates: int = 16, budget_m: float = 0.05, seed: int = 0,
             quiet: bool = False) -> dict:
    """Train, sample, merge and verify; writes summary.json, choices.json, candidates.csv, merged.safetensors."""
    from safetensors.torch import save_model

    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    train_x, train_y = synthetic_squares(256, 4, gen)
    val_x, val_y = synthetic_squares(128, 4, gen)

    model = create_backbone("vit_mini", num_classes=4)
    names = glora.apply_glora(model, ranks=(4, 2))
    space = glora.SearchSpace.from_model(model)
    glora.set_choices(model, None)  # supernet: every forward samples a path per layer
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4, weight_decay=1e-4)
    for _ in tqdm(range(epochs), desc="supernet epochs", disable=quiet):
        model.train()
        for idx in torch.randperm(len(train_x), generator=gen).split(32):
            loss = F.cross_entropy(model(train_x[idx]), train_y[idx])
            optim.zero_grad()
            loss.backward()
            optim.step()

    rows, best = [], None
    for k in tqdm(range(candidates), desc="subnets", disable=quiet):
        choices = space.sample(seed * 1000 + k)
        params = space.count_params(choices)
        if params > budget_m * 1e6:
            continue
        acc = accuracy(glora.merge_glora(model, choices), val_x, val_y)
        rows.append({"candidate": k, "params": params, "val_acc": acc})
        if best is None or acc > best[0]:
            best = (acc, params, choices)
    if best is None:
        raise ConfigError(f"no sampled subnet fits budget_m={budget_m}; raise it")

    glora.set_choices(model, best[2])
    merged = glora.merge_glora(model, best[2])
    model.eval()
    with torch.no_grad():
        max_diff = (model(val_x) - merged(val_x)).abs().max().item()
    save_model(merged, str(out / "merged.safetensors"))
    (out / "choices.json").write_text(space.to_json(best[2]))
    with open(out / "candidates.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["candidate", "params", "val_acc"])
        writer.writeheader()
        writer.writerows(rows)
    summary = {
        "backbone": "vit_mini (random init)", "adapted_layers": len(names),
        "search_space_size": str(space.size()), "supernet_epochs": epochs,
        "candidates_within_budget": len(rows), "budget_m": budget_m,
        "best_params": best[1], "best_val_acc": best[0], "chance": 0.25,
        "max_abs_diff_merged_vs_supernet": max_diff, "seconds": round(time.perf_counter() - start, 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
