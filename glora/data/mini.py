"""The embedded mini suite: the paper's whole benchmark in miniature, generated on CPU in well under a minute.

``generate(out, seed)`` writes 32x32 RGB PNGs and ``relative/path.png <label>`` lists; nothing is downloaded:
images are procedural (numpy/PIL, glyphs from the fonts matplotlib ships) or crops of the real images bundled
in the scikit-image and scikit-learn wheels. What each task shows and what its labels mean is in
``glora.data.mini_tasks`` (and ``mini_objects``, ``mini_fewshot``); this module lays them out on disk as users'
real datasets are (docs/architecture.md §3)::

    <out>/upstream/             pre-training set (the ImageNet-21k analogue): train.txt, val.txt, classes.json
                                (class index -> name), train/<class>/<i>.png, val/<class>/<i>.png
    <out>/vtab/<task>/          VTAB-1K layout: train800.txt, val200.txt, train800val200.txt (their union),
                                test.txt (500 lines); images in train/, val/, test/; sources.csv: the
                                source pixels each image was cropped from (none for procedural tasks)
    <out>/vtab/suite.json       {"family": "vtab", "tasks": {task: {num_classes, group, sizes, description}}}
    <out>/fewshot/<dataset>/    few-shot layout: annotations/train_meta.list.num_shot_{K}.seed_{S},
                                val_meta.list, test_meta.list; images/{train,val,test}/<i>.png; sources.csv
    <out>/fewshot/suite.json    {"family": "fewshot", "datasets": {name: {num_classes, shots, seeds, description}}}
    <out>/fewshot/imagenet/synsets.txt   the domain-generalisation source's wnids (n90000000, ...), in class order
    <out>/imagenet_variants/    imagenet_v2/<class index>/, imagenet_sketch/<wnid>/, imagenet_a/<wnid>/,
                                imagenet_r/<wnid>/ (A and R hold a subset of the classes), each with synsets.txt
    <out>/mini.json             what was generated (seed, counts, library versions); written last

Labels are balanced: every list holds each class equally often, to within one image. A K-shot list holds
exactly K images per class out of a pool of 32 per class; for one seed the lists are nested (the 1-shot
images are among the 2-shot ones, ...), different seeds rank the pool differently.

Deterministic: each task draws from its own ``numpy.random.default_rng([seed, crc32(name)])`` stream and
PNGs carry no metadata, so one seed gives byte-identical files on one software stack (numpy, Pillow,
scikit-image, the fonts). The suite is written into ``<out>.tmp`` and renamed to ``<out>`` only when complete.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
import zlib
from importlib.metadata import version
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from glora.data import scenes
from glora.data.mini_fewshot import FEWSHOT, VARIANTS, wnid
from glora.data.mini_objects import render_upstream, upstream_classes
from glora.data.mini_tasks import TASKS
from glora.errors import ConfigError

TRAIN, VAL, TEST = 800, 200, 500  # VTAB-style split sizes
SEEDS = (0, 1, 2)  # few-shot list seeds
POOL, FEWSHOT_VAL, FEWSHOT_TEST = 32, 10, 25  # few-shot images per class: training pool, val, test
VARIANT_PER_CLASS = 25


def stream(seed: int, *names: str) -> np.random.Generator:
    """The random stream of ``names`` under ``seed``: the same whatever else was drawn before."""
    return np.random.default_rng([seed, *(zlib.crc32(name.encode()) for name in names)])


def balanced_labels(rng: np.random.Generator, n: int, num_classes: int) -> np.ndarray:
    """``n`` shuffled labels, each class ``n // num_classes`` times or once more (which ones: random)."""
    counts = np.full(num_classes, n // num_classes)
    counts[rng.permutation(num_classes)[: n % num_classes]] += 1
    return rng.permutation(np.repeat(np.arange(num_classes), counts))


# ------------------------------------------------------------------ writing the layouts


def write_images(root: Path, names: list[str], images: np.ndarray, bar: tqdm) -> None:
    """``images[i]`` as a PNG at ``root / names[i]``."""
    for parent in sorted({str(Path(name).parent) for name in names}):
        (root / parent).mkdir(parents=True, exist_ok=True)
    for name, image in zip(names, images):
        Image.fromarray(image).save(root / name, format="PNG")  # PIL writes no time stamp: same bytes each run
    bar.update(len(names))


SOURCE_FIELDS = ["image", "source", "x0", "y0", "x1", "y1"]


def render_split(task, rng: np.random.Generator, labels: np.ndarray, part: str, names: list[str],
                 sources: list[dict]) -> np.ndarray:
    """``task``'s images of ``labels`` from ``part``; appends to ``sources`` the footprints the renderer
    noted (one row per source region an image was drawn from, named by ``names``)."""
    with scenes.recording() as footprints:
        images = task.render(rng, labels, part)
    sources += [dict(zip(SOURCE_FIELDS, (names[i], *footprint))) for i in sorted(footprints)
                for footprint in footprints[i]]
    return images


def write_sources(path: Path, sources: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, SOURCE_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(sources)


def write_list(path: Path, names: list[str], labels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{name} {int(label)}\n" for name, label in zip(names, labels)))


def write_upstream(root: Path, seed: int, per_class: int, bar: tqdm) -> dict:
    """``per_class`` training and ``max(2, per_class // 10)`` validation images of every upstream class."""
    classes = upstream_classes()
    rng = stream(seed, "upstream")
    counts = {"train": per_class, "val": max(2, per_class // 10)}
    for split, count in counts.items():
        for first in range(0, len(classes), 16):  # 16 classes at a time bounds the memory
            block = range(first, min(first + 16, len(classes)))
            labels = np.repeat(np.array(block), count)
            names = [f"{split}/{c:03d}/{i:04d}.png" for c in block for i in range(count)]
            write_images(root, names, render_upstream(rng, labels), bar)
        every = [(f"{split}/{c:03d}/{i:04d}.png", c) for c in range(len(classes)) for i in range(count)]
        write_list(root / f"{split}.txt", [n for n, _ in every], np.array([c for _, c in every]))
    names = {str(i): name for i, (name, _, _) in enumerate(classes)}
    (root / "classes.json").write_text(json.dumps(names, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return {"classes": len(classes), **{split: len(classes) * count for split, count in counts.items()}}


def write_vtab(root: Path, seed: int, bar: tqdm) -> dict:
    """Every task of ``TASKS`` in the VTAB-1K layout, and ``suite.json``."""
    for task in TASKS.values():
        rng = stream(seed, "vtab", task.name)
        folder = root / task.name
        train, val, test = (balanced_labels(rng, n, task.num_classes) for n in (TRAIN, VAL, TEST))
        lines, sources = {}, []
        for split, part, labels in (("train800", "train", train), ("val200", "val", val), ("test", "test", test)):
            names = [f"{part}/{i:04d}.png" for i in range(len(labels))]
            write_images(folder, names, render_split(task, rng, labels, part, names, sources), bar)
            write_list(folder / f"{split}.txt", names, labels)
            lines[split] = (names, labels)
        write_list(folder / "train800val200.txt", lines["train800"][0] + lines["val200"][0],
                   np.concatenate([train, val]))
        write_sources(folder / "sources.csv", sources)
    suite = {"family": "vtab", "tasks": {
        t.name: {"num_classes": t.num_classes, "group": t.group,
                 "sizes": {"train800": TRAIN, "val200": VAL, "train800val200": TRAIN + VAL, "test": TEST},
                 "description": t.description} for t in TASKS.values()}}
    (root / "suite.json").write_text(json.dumps(suite, indent=1) + "\n")
    return {t.name: {"group": t.group, "num_classes": t.num_classes, "test": TEST} for t in TASKS.values()}


def write_fewshot(root: Path, seed: int, bar: tqdm) -> dict:
    """Every set of ``FEWSHOT`` in the few-shot layout (a training pool, K-shot lists drawn from it), and
    ``suite.json``."""
    for task in FEWSHOT.values():
        rng = stream(seed, "fewshot", task.name)
        folder = root / task.name
        classes = np.arange(task.num_classes)
        pool = np.repeat(classes, POOL)
        sources: list[dict] = []
        for split, labels in (("train", pool), ("val", np.repeat(classes, FEWSHOT_VAL)),
                              ("test", np.repeat(classes, FEWSHOT_TEST))):
            names = [f"images/{split}/{i:05d}.png" for i in range(len(labels))]
            write_images(folder, names, render_split(task, rng, labels, split, names, sources), bar)
            if split == "train":
                pool_names = names
            else:
                write_list(folder / "annotations" / f"{split}_meta.list", names, labels)
        for s in SEEDS:
            order = stream(seed, "fewshot", task.name, f"seed {s}")
            ranked = [order.permutation(np.flatnonzero(pool == c)) for c in classes]
            for k in task.shots:  # the first k of each class's ranking: nested over k for one seed
                picked = np.concatenate([r[:k] for r in ranked])
                write_list(folder / "annotations" / f"train_meta.list.num_shot_{k}.seed_{s}",
                           [pool_names[i] for i in picked], pool[picked])
        write_sources(folder / "sources.csv", sources)
        if task.name == "imagenet":
            (folder / "synsets.txt").write_text("".join(f"{wnid(c)}\n" for c in classes))
    suite = {"family": "fewshot", "datasets": {
        t.name: {"num_classes": t.num_classes, "shots": list(t.shots), "seeds": list(SEEDS),
                 "description": t.description} for t in FEWSHOT.values()}}
    (root / "suite.json").write_text(json.dumps(suite, indent=1) + "\n")
    return {t.name: {"num_classes": t.num_classes, "train_pool": t.num_classes * POOL,
                     "val": t.num_classes * FEWSHOT_VAL, "test": t.num_classes * FEWSHOT_TEST}
            for t in FEWSHOT.values()}


def write_variants(root: Path, seed: int, bar: tqdm) -> dict:
    """The domain-generalisation targets of the few-shot ``imagenet`` set, in ImageNet-variant layouts."""
    wnids = [wnid(c) for c in range(FEWSHOT["imagenet"].num_classes)]
    for variant, (renderer, classes, by_index) in VARIANTS.items():
        rng = stream(seed, "imagenet_variants", variant)
        labels = np.repeat(np.array(classes), VARIANT_PER_CLASS)
        names = [f"{c if by_index else wnids[c]}/{i:04d}.png" for c in classes for i in range(VARIANT_PER_CLASS)]
        write_images(root / variant, names, renderer(rng, labels, "test"), bar)
        (root / variant / "synsets.txt").write_text("".join(f"{w}\n" for w in wnids))
    return {variant: {"classes": len(classes), "images": len(classes) * VARIANT_PER_CLASS}
            for variant, (_, classes, _) in VARIANTS.items()}


#: what ``generate`` can write: the pre-training set, and the downstream sets
PARTS = ("upstream", "vtab", "fewshot", "imagenet_variants")


def generate(out: Path, seed: int = 0, upstream_per_class: int = 100, quiet: bool = False,
             parts: tuple[str, ...] = PARTS) -> dict:
    """Write the mini suite (``parts`` of it; the workflow writes the upstream set apart, since only
    pre-training reads it) to ``out`` (see the module docstring) and return a summary (counts, seconds).

    ``out`` may be new, empty, or a previous mini suite (replaced); anything else is refused.
    """
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        raise ConfigError(f"data mini: unknown or no parts {unknown}; choose among {list(PARTS)}")
    if seed < 0:
        raise ConfigError(f"data mini: seed must be >= 0, got {seed}")
    if upstream_per_class < 1:
        raise ConfigError(f"data mini: upstream_per_class must be >= 1, got {upstream_per_class}; the default is 100")
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "mini.json").is_file())):
        raise ConfigError(f"data mini: {out} exists and is not a mini suite (no mini.json); choose a new or empty "
                          "--out folder")
    tmp = out.absolute().with_name(out.absolute().name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)  # left by a killed run
    start = time.perf_counter()
    images = {
        "upstream": len(upstream_classes()) * (upstream_per_class + max(2, upstream_per_class // 10)),
        "vtab": len(TASKS) * (TRAIN + VAL + TEST),
        "fewshot": sum(t.num_classes * (POOL + FEWSHOT_VAL + FEWSHOT_TEST) for t in FEWSHOT.values()),
        "imagenet_variants": sum(len(classes) * VARIANT_PER_CLASS for _, classes, _ in VARIANTS.values())}
    writers = {"upstream": lambda bar: write_upstream(tmp / "upstream", seed, upstream_per_class, bar),
               "vtab": lambda bar: write_vtab(tmp / "vtab", seed, bar),
               "fewshot": lambda bar: write_fewshot(tmp / "fewshot", seed, bar),
               "imagenet_variants": lambda bar: write_variants(tmp / "imagenet_variants", seed, bar)}
    total = sum(images[part] for part in parts)
    with tqdm(total=total, desc="mini suite", unit="img", disable=quiet) as bar:
        summary = {"suite": "glora mini", "seed": seed, "images": total, "parts": list(parts),
                   **({"upstream_per_class": upstream_per_class} if "upstream" in parts else {}),
                   **{part: writers[part](bar) for part in PARTS if part in parts},
                   "versions": {p: version(p) for p in ("numpy", "pillow", "scikit-image", "scikit-learn",
                                                        "matplotlib")}}
    (tmp / "mini.json").write_text(json.dumps(summary, indent=1) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return {**summary, "out": str(out), "seconds": round(time.perf_counter() - start, 1)}
