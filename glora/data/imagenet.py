"""The domain-generalisation targets (ImageNet-V2, -Sketch, -A, -R) read from their released folder layouts.

Each variant lives in ``<root>/<variant>/`` (rename or symlink the extracted release; an image inside it
that is a symlink out of the data root is refused):

===================  ===============================  ======  ===========================================
variant              layout                           images  release
===================  ===============================  ======  ===========================================
``imagenet_v2``      ``<class index 0..999>/*.jpeg``  10000   ImageNetV2 matched-frequency
``imagenet_sketch``  ``<wnid>/*`` (1000 folders)      50889   ImageNet-Sketch (its ``sketch/`` folder)
``imagenet_a``       ``<wnid>/*`` (200 folders)       7500    ImageNet-A
``imagenet_r``       ``<wnid>/*`` (200 folders)       30000   ImageNet-R
===================  ===============================  ======  ===========================================

Labels are ImageNet-1k class indices (a wnid's position in timm's sorted list of the 1000 synsets), so the
1000-way head is evaluated with argmax over all 1000 logits, also on the 200 classes of -A and -R. A variant
folder holding ``synsets.txt`` (one wnid per line in class-index order: the mini suite) replaces timm's list.
The only split is ``test``; images get the evaluation transform (resize 256, centre crop 224, scaled).
"""

from __future__ import annotations

import pkgutil
from dataclasses import dataclass
from pathlib import Path

from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

from glora.data.lists import DataError, ImageList, inside
from glora.data.transforms import eval_transform
from glora.models import Backbone


@dataclass(frozen=True)
class Variant:
    """One ImageNet variant: folder naming (``index`` or ``wnid``), its classes, its size, where to get it."""

    name: str
    folders: str
    size: int
    release: str
    synsets_file: str | None = None  # timm's list of the variant's classes (None: all 1000)


VARIANTS: dict[str, Variant] = {v.name: v for v in [
    Variant("imagenet_v2", "index", 10000, "ImageNet-V2 matched-frequency (imagenetv2-matched-frequency.tar.gz, "
                                          "github.com/modestyachts/ImageNetV2)"),
    Variant("imagenet_sketch", "wnid", 50889, "ImageNet-Sketch (its sketch/ folder, "
                                              "github.com/HaohanWang/ImageNet-Sketch)"),
    Variant("imagenet_a", "wnid", 7500, "ImageNet-A (imagenet-a.tar, github.com/hendrycks/natural-adv-examples)",
            "imagenet_a_synsets.txt"),
    Variant("imagenet_r", "wnid", 30000, "ImageNet-R (imagenet-r.tar, github.com/hendrycks/imagenet-r)",
            "imagenet_r_synsets.txt"),
]}
HINT = ("To obtain the ImageNet variants: `python -m glora prepare imagenet` (docs/data.md), or their "
        "official releases, extracted to <root>/<variant>/: "
        + "; ".join(f"{v.name}: {v.release}" for v in VARIANTS.values()) + ".")


def timm_synsets(filename: str = "imagenet_synsets.txt") -> list[str]:
    """A wnid list bundled with timm (``timm/data/_info/``); the default is the sorted ImageNet-1k classes."""
    return pkgutil.get_data("timm.data", f"_info/{filename}").decode("utf-8").split()


def imagenet_synsets(folder: str | Path | None = None) -> list[str]:
    """The class wnids in index order: ``<folder>/synsets.txt`` if it exists, else timm's 1000."""
    own = Path(folder) / "synsets.txt" if folder is not None else None
    return own.read_text(encoding="utf-8-sig").split() if own is not None and own.is_file() else timm_synsets()


def get_variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise DataError(f"unknown ImageNet variant {name!r}; known: {list(VARIANTS)}")
    return VARIANTS[name]


def scan_variant(root: str | Path, name: str) -> tuple[list[tuple[str, int]], list[str], list[str], list[str]]:
    """``(samples, class wnids, problems, warnings)`` of ``<root>/<name>/``; ``samples`` are (path, label)."""
    variant = get_variant(name)
    folder = Path(root) / name
    if not folder.is_dir():
        return [], [], [f"{folder}: folder not found; expected {variant.release} there"], []
    own_list = (folder / "synsets.txt").is_file()
    synsets = imagenet_synsets(folder)
    index = {wnid: i for i, wnid in enumerate(synsets)}
    problems, warnings, class_to_idx = [], [], {}
    for sub in sorted(p.name for p in folder.iterdir() if p.is_dir()):
        if variant.folders == "index":
            label = int(sub) if sub.isdigit() and str(int(sub)) == sub and int(sub) < len(synsets) else None
        else:
            label = index.get(sub)
        if label is None:
            kind = f"a class index in [0, {len(synsets)})" if variant.folders == "index" else "a known wnid"
            problems.append(f"{folder / sub}: folder name is not {kind}")
        else:
            class_to_idx[sub] = label
    if not own_list:
        expected = ([str(i) for i in range(len(synsets))] if variant.folders == "index"
                    else timm_synsets(variant.synsets_file) if variant.synsets_file else synsets)
        missing, extra = sorted(set(expected) - set(class_to_idx)), sorted(set(class_to_idx) - set(expected))
        for what, names in (("missing", missing), ("not in the release", extra)):
            if names:
                problems.append(f"{folder}: {len(names)} class folders {what}, e.g. {names[:5]}")
    samples = make_dataset(str(folder), class_to_idx, extensions=IMG_EXTENSIONS, allow_empty=True)
    escaped = {path for path, _ in samples if inside(path, root, folder) is None}  # reported, never opened
    problems += [f"{path}: a symlink to {Path(path).resolve()}, outside the data root {root}; copy the image "
                 "into the folder or link the whole variant folder instead" for path in sorted(escaped)]
    samples = [sample for sample in samples if sample[0] not in escaped]
    if not samples and class_to_idx:
        problems.append(f"{folder}: no images (extensions {', '.join(IMG_EXTENSIONS)})")
    empty = sorted(set(class_to_idx.values()) - {label for _, label in samples})
    if empty:
        problems.append(f"{folder}: {len(empty)} class folders hold no image, e.g. "
                        f"{[sub for sub, label in class_to_idx.items() if label in empty][:5]}")
    if not own_list and len(samples) != variant.size:
        warnings.append(f"{folder}: {len(samples)} images; the official release has {variant.size}")
    return samples, synsets, problems, warnings


def build_imagenet(root: str | Path, variant: str, split: str, backbone: Backbone) -> ImageList:
    """The Dataset of ``<root>/<variant>/`` with 1000-class (or ``synsets.txt``) labels, evaluation transform."""
    if split != "test":
        raise DataError(f"ImageNet variant {variant!r} only has split 'test', got {split!r}")
    samples, synsets, problems, _ = scan_variant(root, variant)
    if problems:
        raise DataError(problems, HINT)
    return ImageList(samples, eval_transform(backbone), num_classes=len(synsets), classes=synsets)
