"""What the images of the mini suite show and what their labels mean (``glora.data.mini`` writes them).

Every renderer is ``render(rng, labels, part) -> uint8 (N, 32, 32, 3)``: one image per label, drawn from
``rng`` only; ``part`` ("train", "val" or "test", see ``PARTS``) selects disjoint sources where a task crops
a few real photos (``REGIONS``: the left part of each photo trains, the right part is cut into a validation
and a test quadrant; the retina's top half trains, its bottom half is cut likewise; each class's source
images are split 50/20/30), so that no validation or test image shares a source pixel with a training image
(nor with each other), and validation images come from the same held-out side as test images, as a
validation split should. Renderers :func:`glora.data.render.note` what they crop from, and
``glora.data.mini`` writes it to ``<task>/sources.csv`` (the test suite checks the splits never overlap).
Procedural tasks draw fresh samples for every part.

Upstream (pre-training) classes, 142: 51 glyphs (Latin, Greek; in 8-12 fonts), 36 icons (DejaVu's symbols),
18 shapes, 12 textures, 10 colours, 6 counts (1-6 shapes), 9 positions (3x3 grid). Position, size, aspect,
a turn of up to 15 degrees, colours, patterned fills and backgrounds are per-image nuisances.

VTAB-style tasks (``TASKS``):

================== =========== ======= ==================================================================
task               group       classes label
================== =========== ======= ==================================================================
digits             natural     10      the centre digit (scikit-learn's 8x8 digits, colourised, with
                                       neighbouring digits as in SVHN)
textures           natural     6       which texture photo (brick, grass, gravel, moon, page, coins)
faces              natural     2       face (1) or not (0) (scikit-image's ``lfw_subset.npy``)
specimen           specialized 5       which scientific image a patch is from (ihc, retina, hubble, cell,
                                       microaneurysms), in the spirit of EuroSAT/Resisc45
ihc_marker         specialized 2       whether the patch centre is DAB-positive tissue (``rgb2hed`` on
                                       ``ihc.png``), the DAB shown faded to 8%, in the spirit of PatchCamelyon
lesion_grade       specialized 5       lesion load of a fundus patch (``retina.jpg`` + drawn
                                       microaneurysms/exudates/haemorrhages), in the spirit of retinopathy
dsprites_loc_mini  structured  16      x-position bin of a dSprites shape (square, ellipse, heart)
dsprites_ori_mini  structured  16      orientation bin (of 360 degrees) of a shape without rotational symmetry
clevr_count_mini   structured  8       number of solids minus 3 (3..10 objects)
clevr_dist_mini    structured  6       depth bin of the nearest solid (0 = nearest; equal bins of 1/depth)
================== =========== ======= ==================================================================

Few-shot sets (``FEWSHOT``): ``flowers_mini`` (20 classes: petal count x colour family), ``fonts_mini``
(12 classes: the font a letter is set in), ``textures_mini`` (the ``textures`` renderer), ``imagenet``
(16 icon-object classes, the domain-generalisation source). Its variants (``VARIANTS``): fresh samples (v2),
contour sketches (sketch), occluded/cluttered/noisy copies of 8 classes (A) and renditions (posterised,
inverted, pixelated, cartoon) of 11 classes (R).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageDraw

from glora.data import render
from glora.data.render import (SHAPES, SKIMAGE_DATA, TEXTURES, backgrounds, composite, contrasting, crops, dihedral,
                               photo, tint, to_uint8, warp)

IMAGE = 32
PARTS = ("train", "val", "test")  # disjoint sources of train800 / val200 / test (few-shot: train pool / val / test)
GAP = 0.06  # the gap between regions (fraction of the side): wider than the resampling filter reaches
#: where each part crops a photo (x0, y0, x1, y1 as fractions): train the left part, val and test the right
#: part's top and bottom quadrants
REGIONS = {"train": (0.0, 0.0, 0.5 - GAP / 2, 1.0), "val": (0.5 + GAP / 2, 0.0, 1.0, 0.5 - GAP / 2),
           "test": (0.5 + GAP / 2, 0.5 + GAP / 2, 1.0, 1.0)}
SOURCE_SPLIT = {"train": (0.0, 0.5), "val": (0.5, 0.7), "test": (0.7, 1.0)}  # of each class's source images
SHOTS = (1, 2, 4, 8, 16)  # the K of the K-shot lists of a few-shot set


def split_sources(indices: np.ndarray, part: str) -> np.ndarray:
    """The share ``SOURCE_SPLIT[part]`` of a class's source ``indices`` (in their order)."""
    lo, hi = SOURCE_SPLIT[part]
    return indices[round(lo * len(indices)):round(hi * len(indices))]


def draw_sources(rng: np.random.Generator, labels: np.ndarray, pools: list[np.ndarray]) -> np.ndarray:
    """For each label a source index from ``pools[label]``, using every source once before any twice."""
    sources = np.empty(len(labels), np.int64)
    for c, pool in enumerate(pools):
        where = np.flatnonzero(labels == c)
        if len(where):
            reps = -(-len(where) // len(pool))
            sources[where] = np.concatenate([rng.permutation(pool) for _ in range(reps)])[: len(where)]
    return sources


# ------------------------------------------------------------------ objects on backgrounds

UPPER, LOWER, GREEK = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abdefghmnqrty", "αβγδθλμπσφψω"
LETTER_FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSerif.ttf",
                "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf",
                "STIXGeneral.ttf", "STIXGeneralItalic.ttf", "cmr10.ttf", "cmss10.ttf")
ICON_FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
              "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf")
ICONS = {"sun": "☀", "cloud": "☁", "umbrella": "☂", "snowman": "☃", "phone": "☎", "coffee": "☕",
         "shamrock": "☘", "skull": "☠", "radioactive": "☢", "yin-yang": "☯", "knight": "♞", "spade": "♠",
         "club": "♣", "heart suit": "♥", "diamond suit": "♦", "note": "♪", "notes": "♫", "anchor": "⚓",
         "lightning": "⚡", "scissors": "✂", "airplane": "✈", "envelope": "✉", "pencil": "✎", "flower": "✿",
         "snowflake": "❄", "smiley": "☺", "king": "♚", "rook": "♜", "queen": "♛", "flag": "⚑", "check": "✔",
         "cross": "✖", "peace": "☮", "venus": "♀", "mars": "♂", "gear": "⚙"}
IMAGENET_ICONS = ("sun", "cloud", "umbrella", "snowman", "phone", "coffee", "skull", "anchor", "lightning",
                  "scissors", "airplane", "envelope", "pencil", "flower", "snowflake", "gear")
FILLS = ("stripes_45", "dots", "checker", "blobs")  # patterned object fills


@cache
def object_bank() -> tuple[np.ndarray, dict[str, tuple[int, int]]]:
    """Masks of every glyph (in each font that has it), icon and shape; ``spans[key] = (first, count)`` for
    keys ``glyph <c>``, ``icon <name>``, ``shape <name>``."""
    masks, spans = [], {}

    def add(key: str, variants: list[np.ndarray]) -> None:
        spans[key] = (len(masks), len(variants))
        masks.extend(variants)

    for char in UPPER + LOWER + GREEK:
        add(f"glyph {char}", [render.glyph_mask(char, f) for f in LETTER_FONTS if render.font_has(f, char)])
    for name, char in ICONS.items():
        add(f"icon {name}", [render.glyph_mask(char, f) for f in ICON_FONTS])
    for name in SHAPES:
        add(f"shape {name}", [render.shape_mask(name)])
    return np.stack(masks), spans


def pick(rng: np.random.Generator, keys: list[str]) -> np.ndarray:
    """A random bank index (font variant) for each key of ``object_bank``."""
    _, spans = object_bank()
    first, count = np.array([spans[k] for k in keys]).T
    return first + (rng.random(len(keys)) * count).astype(np.int64)


def fills(rng: np.random.Generator, colour: np.ndarray, patterned: float) -> np.ndarray:
    """Per-image object fills ``(N, H, W, 3)``: flat ``colour``, or with probability ``patterned`` a two-tone
    pattern of it and a second contrasting colour."""
    fill = np.broadcast_to(colour[:, None, None, :], (len(colour), IMAGE, IMAGE, 3)).copy()
    kind = np.where(rng.random(len(colour)) < patterned, rng.integers(0, len(FILLS), len(colour)), -1)
    for k, name in enumerate(FILLS):
        sel = np.flatnonzero(kind == k)
        if len(sel):
            p = render.texture(name, rng, len(sel))[..., None]
            fill[sel] = fill[sel] * (1 - p) + contrasting(rng, colour[sel], 0.25)[:, None, None, :] * p
    return fill


def random_shapes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Bank indices of ``n`` random shapes."""
    return pick(rng, [f"shape {s}" for s in rng.choice(list(SHAPES), n)])


def object_scenes(rng: np.random.Generator, ids: np.ndarray, size: tuple[float, float] = (0.45, 0.85),
                  turn: float = 15.0, patterned: float = 0.25, clutter: int = 0, gap: float = 0.35) -> np.ndarray:
    """One object per image (``object_bank()[0][ids]``) at a random position, size, aspect and turn (within
    +-``turn`` degrees) over a random background and ``clutter`` small random shapes; ``gap`` is the least
    difference in value (HSV) between object and background."""
    bank = object_bank()[0]
    n = len(ids)
    images, mean = backgrounds(rng, n)
    for _ in range(clutter):
        m = warp(bank, random_shapes(rng, n), rng.uniform(0.1, 0.9, (n, 2)), rng.uniform(0.15, 0.3, n),
                 rng.uniform(-np.pi, np.pi, n))
        images = composite(images, m, contrasting(rng, mean, 0.15))
    s = rng.uniform(*size, n)
    scale = np.stack([s * rng.uniform(0.85, 1.15, n), s], 1)
    room = np.clip((1 - 0.8 * s) / 2, 0, None)[:, None]
    centre = 0.5 + rng.uniform(-1, 1, (n, 2)) * room
    masks = warp(bank, ids, centre, scale, np.deg2rad(rng.uniform(-turn, turn, n)))
    return composite(images, masks, fills(rng, contrasting(rng, mean, gap), patterned))


# ------------------------------------------------------------------ upstream (pre-training) set

COLOURS = {"red": (0.0, (0.7, 1.0), (0.6, 1.0)), "orange": (0.08, (0.7, 1.0), (0.7, 1.0)),
           "yellow": (0.16, (0.7, 1.0), (0.75, 1.0)), "green": (0.33, (0.6, 1.0), (0.4, 0.9)),
           "cyan": (0.5, (0.6, 1.0), (0.6, 1.0)), "blue": (0.64, (0.7, 1.0), (0.5, 1.0)),
           "purple": (0.78, (0.6, 1.0), (0.4, 0.9)), "pink": (0.92, (0.35, 0.6), (0.8, 1.0)),
           "white": (0.0, (0.0, 0.08), (0.92, 1.0)), "black": (0.0, (0.0, 0.3), (0.0, 0.12))}


@cache
def upstream_classes() -> tuple[tuple[str, str, object], ...]:
    """``(name, kind, what)`` per upstream class: glyphs, icons, shapes, textures, colours, counts, positions."""
    return tuple(
        [(f"glyph {c}", "object", f"glyph {c}") for c in UPPER + LOWER + GREEK]
        + [(f"icon {name}", "object", f"icon {name}") for name in ICONS]
        + [(f"shape {name}", "object", f"shape {name}") for name in SHAPES]
        + [(f"texture {name}", "texture", name) for name in TEXTURES]
        + [(f"colour {name}", "colour", name) for name in COLOURS]
        + [(f"count {k}", "count", k) for k in range(1, 7)]
        + [(f"position {row}-{col}", "position", (row, col))
           for row in ("top", "middle", "bottom") for col in ("left", "centre", "right")])


def render_upstream(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """Images of upstream classes ``labels``; position, scale, turn, colours, fill and background are nuisances."""
    classes = upstream_classes()
    bank = object_bank()[0]
    images = np.empty((len(labels), IMAGE, IMAGE, 3), np.float32)
    for c, (_, kind, what) in enumerate(classes):
        sel = np.flatnonzero(labels == c)
        n = len(sel)
        if n == 0:
            continue
        if kind == "object":
            images[sel] = object_scenes(rng, pick(rng, [what] * n))
        elif kind == "texture":
            p = render.texture(what, rng, n)[..., None]
            first = render.random_colours(rng, n)
            images[sel] = first[:, None, None] * (1 - p) + contrasting(rng, first, 0.3)[:, None, None] * p
        elif kind == "colour":
            hue, sat, val = COLOURS[what]
            colour = render.hsv_to_rgb(hue + rng.uniform(-0.025, 0.025, n), rng.uniform(*sat, n), rng.uniform(*val, n))
            ground, _ = backgrounds(rng, n, saturation=(0.0, 0.15), value=(0.3, 0.7))
            s = rng.uniform(0.4, 0.8, n)
            m = warp(bank, random_shapes(rng, n), 0.5 + rng.uniform(-0.2, 0.2, (n, 2)) * (1 - s[:, None]), s,
                     rng.uniform(-np.pi, np.pi, n))
            images[sel] = composite(ground, m, colour)
        elif kind == "count":
            ground, mean = backgrounds(rng, n)
            cells = np.argsort(rng.random((n, 16)), axis=1)[:, :what]  # distinct cells of a 4x4 grid
            centre = (np.stack([cells % 4, cells // 4], -1) + 0.5 + rng.uniform(-0.12, 0.12, (n, what, 2))) / 4
            ids = np.repeat(random_shapes(rng, n), what)
            m = warp(bank, ids, centre.reshape(-1, 2), rng.uniform(0.14, 0.2, n * what),
                     rng.uniform(-0.5, 0.5, n * what)).reshape(n, what, IMAGE, IMAGE).max(axis=1)
            images[sel] = composite(ground, m, contrasting(rng, mean))
        else:  # position in a 3x3 grid
            row, col = ("top", "middle", "bottom").index(what[0]), ("left", "centre", "right").index(what[1])
            ground, mean = backgrounds(rng, n)
            centre = (np.array([col, row]) * 2 + 1) / 6 + rng.uniform(-0.04, 0.04, (n, 2))
            m = warp(bank, random_shapes(rng, n), centre, rng.uniform(0.22, 0.3, n), rng.uniform(-0.4, 0.4, n))
            images[sel] = composite(ground, m, contrasting(rng, mean))
    return to_uint8(images)


# ------------------------------------------------------------------ VTAB-style tasks


@cache
def digit_bank() -> tuple[np.ndarray, dict[str, list[np.ndarray]]]:
    """scikit-learn's 1797 digits upsampled to 32x32 masks, and per part the source indices of each class
    (``SOURCE_SPLIT`` of each class in the file's order)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    bank = np.clip(render.resize_bilinear(digits.images.astype(np.float32) / 16, 32), 0, 1)
    by_class = [np.flatnonzero(digits.target == c) for c in range(10)]
    return bank, {part: [split_sources(i, part) for i in by_class] for part in PARTS}


def render_digits(rng: np.random.Generator, labels: np.ndarray, part: str) -> np.ndarray:
    """Label = the centre digit, in a random colour on a random background, often between two cut-off
    neighbours (as house numbers are)."""
    bank, parts = digit_bank()
    pools = parts[part]
    n = len(labels)
    centre_ids = draw_sources(rng, labels, pools)
    render.note(range(n), "sklearn digits", [(i, 0, i + 1, 1) for i in centre_ids])
    sy = rng.uniform(0.55, 0.8, n)
    sx = sy * rng.uniform(0.8, 1.05, n)
    cx, cy = 0.5 + rng.uniform(-0.05, 0.05, n), 0.5 + rng.uniform(-0.05, 0.05, n)
    angle = np.deg2rad(rng.uniform(-8, 8, n))
    every = np.concatenate(pools)
    mask = warp(bank, centre_ids, np.stack([cx, cy], 1), np.stack([sx, sy], 1), angle)
    for side in (-1, 1):  # neighbouring digits, cut by the frame as in SVHN
        present = (rng.random(n) < 0.6)[:, None, None]
        offset = side * sx * rng.uniform(0.7, 0.85, n)
        ids = rng.choice(every, n)
        neighbour = warp(bank, ids, np.stack([cx + offset, cy], 1), np.stack([sx, sy], 1), angle)
        mask = np.maximum(mask, neighbour * present)
        shown = np.flatnonzero(present[:, 0, 0])
        render.note(shown, "sklearn digits", [(i, 0, i + 1, 1) for i in ids[shown]])
    ground, mean = backgrounds(rng, n)
    return to_uint8(composite(ground, mask, contrasting(rng, mean)))


TEXTURE_PHOTOS = {"brick": "brick.png", "grass": "grass.png", "gravel": "gravel.png", "moon": "moon.png",
                  "page": "page.png", "coins": "coins.png"}


def render_textures(rng: np.random.Generator, labels: np.ndarray, part: str) -> np.ndarray:
    """Label = which photo of ``TEXTURE_PHOTOS`` a crop (random scale, turn, mirror) is from; each crop is
    standardised and tinted, so neither brightness nor colour tells the label."""
    grey = np.empty((len(labels), IMAGE, IMAGE), np.float32)
    for c, name in enumerate(TEXTURE_PHOTOS.values()):
        sel = np.flatnonzero(labels == c)
        grey[sel] = crops(rng, photo(name), len(sel), (0.12, 0.25), REGIONS[part], source=name,
                          at=sel).mean(axis=-1)
    return to_uint8(tint(rng, dihedral(rng, grey)))


@cache
def lfw() -> np.ndarray:
    path = SKIMAGE_DATA / "lfw_subset.npy"
    if not path.is_file():
        raise ValueError(f"{path} is missing: reinstall scikit-image (its wheel bundles lfw_subset.npy)")
    return np.load(path).astype(np.float32)  # 100 faces, then 100 non-faces, 25x25 in [0, 1]


def render_faces(rng: np.random.Generator, labels: np.ndarray, part: str) -> np.ndarray:
    """Label 1: a face, 0: not a face. Each class's 100 source images are split 50/20/30 (``SOURCE_SPLIT``)."""
    faces = lfw()
    pools = [np.arange(100, 200), np.arange(0, 100)]  # label 0: non-faces, label 1: faces
    sources = draw_sources(rng, labels, [split_sources(p, part) for p in pools])
    render.note(range(len(labels)), "lfw_subset.npy", [(i, 0, i + 1, 1) for i in sources])
    side = rng.uniform(0.8, 1.0, len(labels)) * 25
    x0, y0 = rng.random(len(labels)) * (25 - side), rng.random(len(labels)) * (25 - side)
    grey = np.stack([np.asarray(Image.fromarray(faces[i]).resize((IMAGE, IMAGE), Image.Resampling.BILINEAR,
                                                                   box=(x, y, x + s, y + s)))
                     for i, x, y, s in zip(sources, x0, y0, side)])
    grey = np.where((rng.random(len(labels)) < 0.5)[:, None, None], grey[:, :, ::-1], grey)
    return to_uint8(tint(rng, grey))


SPECIMENS = {"ihc": ("ihc.png", (0.1, 0.2)), "retina": ("retina.jpg", (0.06, 0.12)),
             "hubble": ("hubble_deep_field.jpg", (0.06, 0.12)), "cell": ("cell.png", (0.1, 0.2)),
             "microaneurysms": ("microaneurysms.png", (0.25, 0.45))}  # file, crop side (fraction of the short edge)


@cache
def fundus_mask() -> np.ndarray:
    """Where ``retina.jpg`` shows the fundus (not the black surround)."""
    return photo("retina.jpg").max(axis=-1) > 25


def render_specimen(rng: np.random.Generator, labels: np.ndarray, part: str) -> np.ndarray:
    """Label = which image of ``SPECIMENS`` a crop (random scale, turn, mirror, brightness and colour gains)
    is from; retina crops lie inside the fundus."""
    images = np.empty((len(labels), IMAGE, IMAGE, 3), np.float32)
    for c, (name, side) in enumerate(SPECIMENS.values()):
        sel = np.flatnonzero(labels == c)
        valid = fundus_mask() if name == "retina.jpg" else None
        images[sel] = crops(rng, photo(name), len(sel), side, REGIONS[part], valid, source=name, at=sel)
    gain = rng.uniform(0.85, 1.15, (len(labels), 1, 1, 1)) * rng.uniform(0.93, 1.07, (len(labels), 1, 1, 3))
    return to_uint8(np.clip(dihedral(rng, images) * gain, 0, 1))


IHC_CROP = 48  # crop side in pixels of ihc.png; its centre region is the middle half
IHC_NEGATIVE, IHC_POSITIVE = 0.15, 0.6  # DAB-stained fraction of the centre region for label 0 / label 1
IHC_MIXED = (0.2, 0.8)  # stained fraction of the whole crop: both labels show stain and stroma somewhere
IHC_FADE = 0.08  # the DAB stain is shown at this fraction of its strength
#: ihc.png's parts are vertical bands, not ``REGIONS``' quadrants: its label-0 patches (little stain at the centre,
#: some around) cluster in a few places, and the bottom-right quadrant held them in only 13 areas of 16 px (the
#: top-right 38); these bands give val200 and test 21 and 25 such areas (train: 50)
IHC_REGIONS = {"train": (0.0, 0.0, 0.5 - GAP / 2, 1.0), "val": (0.5 + GAP / 2, 0.0, 0.74 - GAP / 2, 1.0),
               "test": (0.74 + GAP / 2, 0.0, 1.0, 1.0)}


@cache
def ihc_faded() -> np.ndarray:
    """``ihc.png`` with its DAB (brown) stain faded to ``IHC_FADE``, uint8 RGB: a faint marker that, with the
    tissue's morphology, still tells the label."""
    from skimage.color import hed2rgb, rgb2hed

    return to_uint8(hed2rgb(rgb2hed(photo("ihc.png")) * np.array([1.0, 1.0, IHC_FADE])))


@cache
def ihc_candidates() -> dict[str, list[np.ndarray]]:
    """Top-left corners ``(y, x)`` of ``IHC_CROP`` crops of ``ihc.png`` whose centre region is mostly
    DAB-stained (label 1) or almost not (label 0), per part: crops inside the part's ``IHC_REGIONS`` box. Only crops
    that hold both stained and unstained tissue qualify, so the label is about the centre, as in Camelyon."""
    from skimage.color import rgb2hed

    dab = rgb2hed(photo("ihc.png"))[..., 2] > 0.07
    integral = np.pad(dab.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    ys, xs = np.mgrid[0:dab.shape[0] - IHC_CROP + 1, 0:dab.shape[1] - IHC_CROP + 1]

    def stained(lo: int, hi: int) -> np.ndarray:
        return (integral[ys + hi, xs + hi] - integral[ys + lo, xs + hi] - integral[ys + hi, xs + lo]
                + integral[ys + lo, xs + lo]) / (hi - lo) ** 2

    centre, whole = stained(IHC_CROP // 4, 3 * IHC_CROP // 4), stained(0, IHC_CROP)
    mixed = (whole >= IHC_MIXED[0]) & (whole <= IHC_MIXED[1])
    h, w = dab.shape
    parts = {part: mixed & (xs >= x0 * w) & (ys >= y0 * h) & (xs + IHC_CROP <= x1 * w) & (ys + IHC_CROP <= y1 * h)
             for part, (x0, y0, x1, y1) in IHC_REGIONS.items()}
    return {part: [np.stack([ys[ok & (centre <= IHC_NEGATIVE)], xs[ok & (centre <= IHC_NEGATIVE)]], 1),
                   np.stack([ys[ok & (centre >= IHC_POSITIVE)], xs[ok & (centre >= IHC_POSITIVE)]], 1)]
            for part, ok in parts.items()}


def render_ihc_marker(rng: np.random.Generator, labels: np.ndarray, part: str) -> np.ndarray:
    """Patches of the faded image; label 1 if the centre region is DAB-positive (marker-expressing) tissue."""
    corners = ihc_candidates()[part]
    pil = Image.fromarray(ihc_faded())
    images = np.empty((len(labels), IMAGE, IMAGE, 3), np.float32)
    for c in (0, 1):
        sel = np.flatnonzero(labels == c)
        for i, (y, x) in zip(sel, corners[c][rng.integers(0, len(corners[c]), len(sel))]):
            box = (int(x), int(y), int(x) + IHC_CROP, int(y) + IHC_CROP)
            render.note([i], "ihc.png", [render.reach(*box, IMAGE)])
            images[i] = np.asarray(pil.resize((IMAGE, IMAGE), Image.Resampling.BILINEAR, box=box), np.float32) / 255
    gain = rng.uniform(0.9, 1.1, (len(labels), 1, 1, 1)) * rng.uniform(0.95, 1.05, (len(labels), 1, 1, 3))
    return to_uint8(np.clip(dihedral(rng, images) * gain, 0, 1))


# lesions per grade: (microaneurysms, exudates, haemorrhages), each a (low, high) count range
LESIONS = [((0, 0), (0, 0), (0, 0)), ((1, 2), (0, 0), (0, 0)), ((3, 5), (0, 0), (0, 0)),
           ((6, 9), (1, 2), (0, 0)), ((9, 14), (2, 4), (1, 2))]


#: ``REGIONS`` turned by 90 degrees: the retina's top part trains, its bottom part's quadrants validate / test
LESION_REGIONS = {part: (y0, x0, y1, x1) for part, (x0, y0, x1, y1) in REGIONS.items()}


def render_lesion_grade(rng: np.random.Generator, labels: np.ndarray, part: str) -> np.ndarray:
    """Fundus patches (``LESION_REGIONS`` of ``retina.jpg``) with drawn lesions: dark red microaneurysm dots,
    yellow exudates, red haemorrhage blots; the grade sets how many of each."""
    big = 2 * IMAGE
    patches = crops(rng, photo("retina.jpg"), len(labels), (0.09, 0.14), LESION_REGIONS[part], fundus_mask(),
                    out=big, source="retina.jpg")
    y, x = np.mgrid[0:big, 0:big].astype(np.float32) + 0.5
    kinds = [((0.42, 0.05, 0.04), (1.6, 2.4), (0.6, 0.95)), ((0.98, 0.88, 0.45), (1.5, 3.0), (0.6, 0.9)),
             ((0.45, 0.05, 0.04), (3.0, 5.0), (0.6, 0.85))]  # colour, radius (px at 64), opacity ranges
    for image, grade in zip(patches, labels):
        for (colour, radius, opacity), (low, high) in zip(kinds, LESIONS[grade]):
            for _ in range(rng.integers(low, high + 1)):
                cx, cy = rng.uniform(4, big - 4, 2)
                r, a = rng.uniform(*radius), rng.uniform(*opacity)
                win = np.s_[max(0, int(cy - r - 2)):int(cy + r + 3), max(0, int(cx - r - 2)):int(cx + r + 3)]
                alpha = a * np.clip(r - np.hypot(x[win] - cx, y[win] - cy) + 0.5, 0, 1)
                image[win] += (np.array(colour, np.float32) - image[win]) * alpha[..., None]
    return to_uint8(render.downsample(patches, 2))


@cache
def dsprites_bank() -> np.ndarray:
    """Square, ellipse, heart (dSprites' shapes), then arrow and L (no rotational symmetry)."""
    return np.stack([render.shape_mask(s) for s in ("square", "ellipse", "heart", "arrow", "ell")])


def render_dsprites_loc(rng: np.random.Generator, labels: np.ndarray, part: str) -> np.ndarray:
    """A white square/ellipse/heart on black; label = which of 16 equal bins of x its centre falls in."""
    n, lo, hi = len(labels), 0.18, 0.82
    x = lo + (labels + rng.random(n)) / 16 * (hi - lo)
    centre = np.stack([x, rng.uniform(lo, hi, n)], 1)
    m = warp(dsprites_bank(), rng.integers(0, 3, n), centre, rng.uniform(0.2, 0.4, n), rng.uniform(0, 2 * np.pi, n))
    return to_uint8(np.repeat(m[..., None], 3, axis=-1))


def render_dsprites_ori(rng: np.random.Generator, labels: np.ndarray, part: str) -> np.ndarray:
    """A white heart/arrow/L on black at a random place and size; label = which of 16 bins of 360 degrees
    its orientation falls in (these shapes have no rotational symmetry, so the label is well defined)."""
    n = len(labels)
    angle = (labels + rng.random(n)) / 16 * 2 * np.pi
    m = warp(dsprites_bank(), rng.integers(2, 5, n), rng.uniform(0.3, 0.7, (n, 2)), rng.uniform(0.35, 0.55, n),
             angle)
    return to_uint8(np.repeat(m[..., None], 3, axis=-1))


# perspective of the CLEVR-like scenes on a 64 px canvas: a solid at depth z touches the floor at
# y = HORIZON + FLOOR / z and is FOCAL * R / z wide (R: 0.65 small, 1.0 large)
HORIZON, FLOOR, FOCAL, SIZES = 8.0, 220.0, 36.0, (0.65, 1.0)


def clevr_objects(rng: np.random.Generator, depths: list[float], resample: Callable[[], float] | None = None
                  ) -> list[tuple[float, float, float, str, int, bool]]:
    """Solids at ``depths`` with random x, size, kind, colour, material, kept apart on screen; a solid that
    does not fit gets a new depth from ``resample`` (or a new x only, if None). Empty if one never fits.
    The first solid always keeps its depth."""
    placed: list[tuple[float, float, float, str, int, bool]] = []
    for z in depths:
        for _ in range(200):
            r = FOCAL * SIZES[rng.integers(0, 2)] / z
            u, v = rng.uniform(r + 1, 2 * IMAGE - r - 1), HORIZON + FLOOR / z
            if all(np.hypot(u - pu, (v - r) - (pv - pr)) >= 0.9 * (r + pr) for pu, pv, pr, *_ in placed):
                placed.append((u, v, r, render.CLEVR_KINDS[rng.integers(0, 3)], int(rng.integers(0, 8)),
                               bool(rng.random() < 0.5)))
                break
            if resample is not None:
                z = resample()
        else:
            return []
    return placed


def clevr_images(rng: np.random.Generator, scenes: list[list]) -> np.ndarray:
    """The scenes drawn at twice the size (random floor brightness) and averaged down: antialiased."""
    big = np.stack([render.clevr_scene(s, rng.uniform(0.4, 0.55), size=2 * IMAGE) for s in scenes])
    return to_uint8(render.downsample(big, 2))


def render_clevr_count(rng: np.random.Generator, labels: np.ndarray, part: str) -> np.ndarray:
    """3 to 10 solids (label = count - 3) at depths 4 to 8.5, none hidden (they overlap by 10% at most)."""
    scenes = []
    for label in labels:
        objects: list = []
        while not objects:
            new_depth = lambda: float(rng.uniform(4.0, 8.5))  # noqa: E731
            objects = clevr_objects(rng, [new_depth() for _ in range(label + 3)], new_depth)
        scenes.append(objects)
    return clevr_images(rng, scenes)


DIST_EDGES = np.linspace(1 / 4, 1 / 12, 7)  # 1/depth of the nearest solid, bins from nearest (label 0) to farthest


def render_clevr_dist(rng: np.random.Generator, labels: np.ndarray, part: str) -> np.ndarray:
    """2 to 6 solids; label = the bin (of 6, equal in 1/depth over depths 4 to 12) of the nearest one's depth."""
    scenes = []
    for label in labels:
        objects: list = []
        while not objects:
            nearest = 1 / rng.uniform(DIST_EDGES[label + 1], DIST_EDGES[label])
            farther = lambda: float(rng.uniform(nearest + 0.4, 14.0))  # noqa: E731
            objects = clevr_objects(rng, [nearest] + [farther() for _ in range(rng.integers(1, 6))], farther)
        scenes.append(objects)
    return clevr_images(rng, scenes)


@dataclass(frozen=True)
class MiniTask:
    """A generated task: name, VTAB group, classes, what the label means, and its image renderer
    ``render(rng, labels, part) -> uint8 (N, 32, 32, 3)`` with ``part`` one of ``PARTS``. ``procedural``: every
    image is a fresh random sample (nothing to keep apart between splits); the others crop sources that
    ``glora.data.render.note`` records."""

    name: str
    group: str
    num_classes: int
    description: str
    render: Callable[[np.random.Generator, np.ndarray, str], np.ndarray]
    procedural: bool = False


TASKS: dict[str, MiniTask] = {t.name: t for t in [
    MiniTask("digits", "natural", 10, "SVHN analogue: the centre digit of scikit-learn's digits, colourised, "
             "with neighbouring digits; train/val/test from disjoint source digits", render_digits),
    MiniTask("textures", "natural", 6, "DTD analogue: which texture photo (brick, grass, gravel, moon, page, "
             "coins) a tinted crop is from; train/val/test from disjoint regions", render_textures),
    MiniTask("faces", "natural", 2, "face (1) or not (0), from scikit-image's lfw_subset; train/val/test "
             "from disjoint source images", render_faces),
    MiniTask("specimen", "specialized", 5, "EuroSAT/Resisc analogue: which scientific image (ihc, retina, hubble, "
             "cell, microaneurysms) a patch is from; train/val/test from disjoint regions", render_specimen),
    MiniTask("ihc_marker", "specialized", 2, "PatchCamelyon analogue: whether the centre of an ihc.png patch is "
             "DAB-positive tissue (1) or not (0), with the DAB stain faded to 8%; train/val/test from disjoint "
             "regions", render_ihc_marker),
    MiniTask("lesion_grade", "specialized", 5, "Retinopathy analogue: lesion-load grade 0-4 of a retina.jpg patch "
             "with drawn lesions; train/val/test from disjoint regions", render_lesion_grade),
    MiniTask("dsprites_loc_mini", "structured", 16, "dSprites location: x-position bin (16) of a white shape",
             render_dsprites_loc, procedural=True),
    MiniTask("dsprites_ori_mini", "structured", 16, "dSprites orientation: orientation bin (16 of 360 degrees) of "
             "a shape without rotational symmetry", render_dsprites_ori, procedural=True),
    MiniTask("clevr_count_mini", "structured", 8, "CLEVR count: number of solids minus 3 (3..10)",
             render_clevr_count, procedural=True),
    MiniTask("clevr_dist_mini", "structured", 6, "CLEVR distance: depth bin of the nearest solid (0 = nearest, "
             "equal bins of 1/depth)", render_clevr_dist, procedural=True),
]}


# ------------------------------------------------------------------ few-shot sets and ImageNet variants

FLOWER_PETALS = (3, 4, 5, 6, 8)
FLOWER_FAMILIES = {"red": (0.98, (0.75, 1.0), (0.7, 1.0)), "yellow": (0.14, (0.75, 1.0), (0.8, 1.0)),
                   "violet": (0.76, (0.5, 0.9), (0.6, 1.0)), "white": (0.0, (0.0, 0.12), (0.88, 1.0))}
FONT_CLASSES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSerif.ttf",
                "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf",
                "STIXGeneral.ttf", "STIXGeneralItalic.ttf", "cmr10.ttf", "cmtt10.ttf")
FONT_TEXT = "ABDEGHKMNPRSabdeghkmnpqrsty"


@cache
def flower_bank() -> np.ndarray:
    """Petal masks: for each petal count, round then pointed petals (index 2 * count index + style)."""
    big = 4 * render.BANK_SIZE
    t = np.linspace(0, 2 * np.pi, 60)
    masks = []
    for petals in FLOWER_PETALS:
        for pointed in (False, True):
            canvas = Image.new("L", (big, big), 0)
            draw = ImageDraw.Draw(canvas)
            along = 0.5 + 0.5 * np.cos(t)
            across = min(0.42, 1.5 / petals) * np.sin(t) * (np.abs(np.sin(t / 2)) if pointed else 1)
            for k in range(petals):
                a = 2 * np.pi * k / petals
                px, py = along * np.cos(a) - across * np.sin(a), along * np.sin(a) + across * np.cos(a)
                draw.polygon(list(zip((px * 0.5 + 0.5) * (big - 1), (py * 0.5 + 0.5) * (big - 1))), fill=255)
            masks.append(np.asarray(canvas.resize((render.BANK_SIZE,) * 2, Image.Resampling.BOX), np.float32) / 255)
    return np.stack(masks)


def render_flowers(rng: np.random.Generator, labels: np.ndarray, part: str) -> np.ndarray:
    """Label = 4 * petal-count index + colour family; petal style, turn, size, centre colour and foliage vary."""
    n = len(labels)
    s, centre, angle = rng.uniform(0.6, 0.85, n), 0.5 + rng.uniform(-0.06, 0.06, (n, 2)), rng.uniform(0, 2 * np.pi, n)
    petals = warp(flower_bank(), 2 * (labels // 4) + rng.integers(0, 2, n), centre, s, angle)
    disc = warp(object_bank()[0], pick(rng, ["shape circle"] * n), centre, s * rng.uniform(0.25, 0.35, n), angle)
    green = rng.uniform(0.22, 0.4, n)
    dark = render.hsv_to_rgb(green, rng.uniform(0.4, 0.9, n), rng.uniform(0.1, 0.3, n))
    light = render.hsv_to_rgb(green, rng.uniform(0.4, 0.9, n), rng.uniform(0.35, 0.6, n))
    t = render.smooth_noise(rng, n, IMAGE, cells=6)[..., None]
    foliage = dark[:, None, None] * (1 - t) + light[:, None, None] * t
    hue, sat_lo, sat_hi, val_lo, val_hi = np.array(
        [(h, *sat, *val) for h, sat, val in FLOWER_FAMILIES.values()], np.float32)[labels % 4].T
    colour = render.hsv_to_rgb(hue + rng.uniform(-0.03, 0.03, n), rng.uniform(sat_lo, sat_hi),
                               rng.uniform(val_lo, val_hi))
    heart = render.hsv_to_rgb(rng.uniform(0.08, 0.15, n), rng.uniform(0.6, 1.0, n), rng.uniform(0.3, 0.9, n))
    return to_uint8(composite(composite(foliage, petals, colour), disc, heart))


@cache
def font_bank() -> np.ndarray:
    """``FONT_TEXT``'s letters in each of ``FONT_CLASSES`` (index font * len(FONT_TEXT) + letter)."""
    return np.stack([render.glyph_mask(c, f) for f in FONT_CLASSES for c in FONT_TEXT])


def render_fonts(rng: np.random.Generator, labels: np.ndarray, part: str) -> np.ndarray:
    """Label = the font a random letter is set in; ink and paper colours, size, place and a slight turn vary."""
    n = len(labels)
    paper, mean = backgrounds(rng, n, saturation=(0.0, 0.3), value=(0.7, 1.0))
    masks = warp(font_bank(), labels * len(FONT_TEXT) + rng.integers(0, len(FONT_TEXT), n),
                 0.5 + rng.uniform(-0.05, 0.05, (n, 2)), rng.uniform(0.6, 0.85, n), np.deg2rad(rng.uniform(-4, 4, n)))
    return to_uint8(composite(paper, masks, contrasting(rng, mean, 0.45)))


def wnid(index: int) -> str:
    """The fake WordNet id of mini-ImageNet class ``index``: 9 characters like a real one (n90000000, ...)."""
    return f"n{90000000 + index}"


def imagenet_ids(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """Bank indices (a random font each) of the icons of mini-ImageNet classes ``labels``."""
    return pick(rng, [f"icon {IMAGENET_ICONS[c]}" for c in labels])


def render_imagenet(rng: np.random.Generator, labels: np.ndarray, part: str) -> np.ndarray:
    """An icon object (the class), coloured or patterned, over two clutter shapes on a random background."""
    return to_uint8(object_scenes(rng, imagenet_ids(rng, labels), size=(0.5, 0.8), turn=20, patterned=0.3, clutter=2))


@cache
def outline_bank() -> np.ndarray:
    """The contours of ``object_bank``'s masks (sketches and cartoons)."""
    return render.outline(object_bank()[0], width=3)


def render_imagenet_sketch(rng: np.random.Generator, labels: np.ndarray, part: str) -> np.ndarray:
    """ImageNet-Sketch analogue: the object's contour in pencil grey on paper, nothing else."""
    n = len(labels)
    s = rng.uniform(0.5, 0.8, n)
    centre = 0.5 + rng.uniform(-1, 1, (n, 2)) * (1 - 0.8 * s[:, None]) / 2
    masks = warp(outline_bank(), imagenet_ids(rng, labels), centre, np.stack([s * rng.uniform(0.85, 1.15, n), s], 1),
                 np.deg2rad(rng.uniform(-20, 20, n)))
    masks *= rng.uniform(0.6, 1.0, masks.shape).astype(np.float32)  # uneven pencil pressure
    paper = np.repeat(rng.uniform(0.85, 1.0, n)[:, None], 3, axis=1).astype(np.float32)
    ink = np.repeat(rng.uniform(0.05, 0.35, n)[:, None], 3, axis=1).astype(np.float32)
    return to_uint8(composite(np.broadcast_to(paper[:, None, None], (n, IMAGE, IMAGE, 3)), masks, ink))


def render_imagenet_a(rng: np.random.Generator, labels: np.ndarray, part: str) -> np.ndarray:
    """ImageNet-A analogue: extreme sizes and turns, low contrast, heavy clutter, occluding boxes, noise."""
    n = len(labels)
    images = object_scenes(rng, imagenet_ids(rng, labels), size=(0.3, 0.95), turn=40, patterned=0.5, clutter=5,
                           gap=0.15)
    for _ in range(2):
        box = warp(object_bank()[0], pick(rng, ["shape square"] * n), 0.5 + rng.uniform(-0.3, 0.3, (n, 2)),
                   rng.uniform(0.15, 0.35, (n, 2)), rng.uniform(-0.3, 0.3, n))
        images = composite(images, box * (rng.random(n) < 0.7)[:, None, None], render.random_colours(rng, n))
    return to_uint8(images + rng.normal(0, 0.08, images.shape).astype(np.float32))


RENDITIONS = ("posterised", "inverted", "pixelated", "cartoon")


def render_imagenet_r(rng: np.random.Generator, labels: np.ndarray, part: str) -> np.ndarray:
    """ImageNet-R analogue: renditions of the object (see ``RENDITIONS``), one style per image."""
    n = len(labels)
    images = object_scenes(rng, imagenet_ids(rng, labels), size=(0.5, 0.8), turn=20, patterned=0.3, clutter=1)
    style = rng.integers(0, len(RENDITIONS), n)
    levels = rng.integers(2, 4, n)[:, None, None, None] - 1
    images = np.where((style == 0)[:, None, None, None], np.round(images * levels) / levels, images)
    images = np.where((style == 1)[:, None, None, None], 1 - images, images)
    mosaic = np.repeat(np.repeat(render.downsample(images, 2), 2, axis=1), 2, axis=2)
    images = np.where((style == 2)[:, None, None, None], mosaic, images)
    cartoon = np.flatnonzero(style == 3)
    if len(cartoon):
        k = len(cartoon)
        s = rng.uniform(0.55, 0.8, k)
        params = (imagenet_ids(rng, labels[cartoon]), 0.5 + rng.uniform(-0.08, 0.08, (k, 2)), s,
                  np.deg2rad(rng.uniform(-15, 15, k)))
        pastel = lambda: render.random_colours(rng, k, (0.2, 0.5), (0.85, 1.0))  # noqa: E731
        flat = np.broadcast_to(pastel()[:, None, None], (k, IMAGE, IMAGE, 3))
        drawn = composite(composite(flat, warp(object_bank()[0], *params), pastel()), warp(outline_bank(), *params),
                          np.zeros((k, 3), np.float32))
        images[cartoon] = drawn
    return to_uint8(images)


@dataclass(frozen=True)
class FewShotTask:
    """A generated few-shot set: classes, renderer (as ``MiniTask.render``), the shots its lists offer,
    whether its images are procedural (as ``MiniTask.procedural``)."""

    name: str
    num_classes: int
    description: str
    render: Callable[[np.random.Generator, np.ndarray, str], np.ndarray]
    shots: tuple[int, ...] = SHOTS
    procedural: bool = True


FEWSHOT: dict[str, FewShotTask] = {t.name: t for t in [
    FewShotTask("flowers_mini", 20, "Flowers analogue: petal count (3, 4, 5, 6, 8) x colour family (red, yellow, "
                "violet, white) of a procedural flower", render_flowers),
    FewShotTask("fonts_mini", 12, "fine-grained typography: which of 12 bundled fonts a letter is set in",
                render_fonts),
    FewShotTask("textures_mini", 6, "the textures task's photos (brick, grass, gravel, moon, page, coins); "
                "train/val/test crops from disjoint regions", render_textures, procedural=False),
    FewShotTask("imagenet", len(IMAGENET_ICONS), "source of the domain-generalisation experiments: 16 "
                "icon-object classes (wnids in synsets.txt), coloured or patterned, over clutter", render_imagenet,
                shots=(16,)),
]}

# variant folder -> (renderer, classes it holds, folders named by class index (True) or by wnid);
# A and R hold a subset of the classes, as the real ones hold 200 of ImageNet's 1000
_ALL = tuple(range(len(IMAGENET_ICONS)))
VARIANTS = {
    "imagenet_v2": (render_imagenet, _ALL, True),
    "imagenet_sketch": (render_imagenet_sketch, _ALL, False),
    "imagenet_a": (render_imagenet_a, _ALL[::2], False),
    "imagenet_r": (render_imagenet_r, tuple(c for c in _ALL if c % 3 != 2), False),
}
