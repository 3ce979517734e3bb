"""A fixture world for the engine tests: a 4-class VTAB-layout task, an upstream set, a tiny ViT checkpoint
and a configuration overlay that makes every stage run in about a second."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"train800": 48, "val200": 16, "test": 32}


def square_image(label: int, rng: np.random.Generator) -> Image.Image:
    """32x32 RGB noise with a bright square in the quadrant ``label`` (0..3)."""
    pixels = rng.integers(0, 90, (32, 32, 3), dtype=np.uint8)
    r, c = divmod(label, 2)
    pixels[16 * r + 3:16 * r + 13, 16 * c + 3:16 * c + 13, label % 3] = 250
    return Image.fromarray(pixels)


def write_split(folder: Path, split: str, count: int, rng: np.random.Generator, classes: int = 4) -> list[str]:
    lines = []
    for i in range(count):
        label = i % classes
        rel = f"images/{split}_{i:03d}.png"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        square_image(label, rng).save(folder / rel)
        lines.append(f"{rel} {label}")
    return lines


def make_world(root: Path) -> dict:
    """Write the task, the upstream set and a random tiny-ViT checkpoint under ``root``; return paths."""
    from safetensors.torch import save_model

    from glora.models import create_backbone

    rng = np.random.default_rng(0)
    task = root / "vtab" / "toy"
    lists = {split: write_split(task, split, n, rng) for split, n in SIZES.items()}
    lists["train800val200"] = lists["train800"] + lists["val200"]
    for split, lines in lists.items():
        (task / f"{split}.txt").write_text("\n".join(lines) + "\n")
    (root / "vtab" / "suite.json").write_text(json.dumps({"family": "vtab", "tasks": {"toy": {
        "num_classes": 4, "group": "structured",
        "sizes": {"train800": 48, "val200": 16, "train800val200": 64, "test": 32}}}}))
    upstream = root / "upstream"
    for split, n in (("train", 32), ("val", 8)):
        (upstream / f"{split}.txt").parent.mkdir(parents=True, exist_ok=True)
        (upstream / f"{split}.txt").write_text("\n".join(write_split(upstream, split, n, rng)) + "\n")
    (upstream / "classes.json").write_text(json.dumps(["a", "b", "c", "d"]))
    shots = root / "fewshot" / "toyshot"
    (shots / "annotations").mkdir(parents=True)
    for name, count in (("train_meta.list.num_shot_2.seed_0", 8), ("val_meta.list", 8), ("test_meta.list", 8)):
        (shots / "annotations" / name).write_text("\n".join(write_split(shots, name[:4], count, rng)) + "\n")
    (root / "fewshot" / "suite.json").write_text(json.dumps({"family": "fewshot", "datasets": {"toyshot": {
        "num_classes": 4, "shots": [2], "seeds": [0]}}}))
    checkpoint = root / "vit_mini.safetensors"
    save_model(create_backbone("vit_mini", num_classes=7), str(checkpoint))
    overlay = {
        "suite": "mini", "backbone": "vit_mini",
        "paths": {"checkpoint": str(checkpoint), "vtab": str(root / "vtab"), "fewshot": str(root / "fewshot"),
                  "imagenet": str(root / "imagenet")},
        "glora": {"sizes": [{"name": "tiny", "ranks": [4, 2], "budget_m": 0.03}]},
        "pretrain": {"epochs": 2, "batch_size": 16, "checkpoint_every": 1},
        "train": {"epochs": 3, "warmup_epochs": 1, "batch_size": 16, "eval_every": 1, "checkpoint_every": 1,
                  "num_workers": 0, "lr": 1.0e-3},
        "search": {"population": 6, "parents": 3, "mutations": 3, "crossovers": 3, "iterations": 2,
                   "batch_size": 16},
    }
    config = root / "overlay.yaml"
    config.write_text(yaml.safe_dump(overlay))
    return {"root": root, "config": [ROOT / "config.yaml", config], "checkpoint": checkpoint, "overlay": overlay}
