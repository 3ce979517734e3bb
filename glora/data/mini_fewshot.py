"""The mini suite's few-shot sets (``FEWSHOT``) and the ImageNet-variant analogues (``VARIANTS``).

``flowers_mini`` (20 classes: petal count x colour family), ``fonts_mini`` (12 classes: the font a letter is
set in), ``textures_mini`` (the ``textures`` task's renderer), ``imagenet`` (16 icon-object classes, the
domain-generalisation source). Its variants: fresh samples (v2), contour sketches (sketch),
occluded/cluttered/noisy copies of 8 classes (A) and renditions (posterised, inverted, pixelated, cartoon) of
11 classes (R). Renderers as in :mod:`glora.data.mini_tasks`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageDraw

from glora.data import draw
from glora.data.draw import backgrounds, composite, contrasting, to_uint8, warp
from glora.data.mini_objects import IMAGE, IMAGENET_ICONS, SHOTS, object_bank, object_scenes, pick
from glora.data.mini_tasks import render_textures

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
    big = 4 * draw.BANK_SIZE
    t = np.linspace(0, 2 * np.pi, 60)
    masks = []
    for petals in FLOWER_PETALS:
        for pointed in (False, True):
            canvas = Image.new("L", (big, big), 0)
            pen = ImageDraw.Draw(canvas)
            along = 0.5 + 0.5 * np.cos(t)
            across = min(0.42, 1.5 / petals) * np.sin(t) * (np.abs(np.sin(t / 2)) if pointed else 1)
            for k in range(petals):
                a = 2 * np.pi * k / petals
                px, py = along * np.cos(a) - across * np.sin(a), along * np.sin(a) + across * np.cos(a)
                pen.polygon(list(zip((px * 0.5 + 0.5) * (big - 1), (py * 0.5 + 0.5) * (big - 1))), fill=255)
            masks.append(np.asarray(canvas.resize((draw.BANK_SIZE,) * 2, Image.Resampling.BOX), np.float32) / 255)
    return np.stack(masks)


def render_flowers(rng: np.random.Generator, labels: np.ndarray, part: str) -> np.ndarray:
    """Label = 4 * petal-count index + colour family; petal style, turn, size, centre colour and foliage vary."""
    n = len(labels)
    s, centre, angle = rng.uniform(0.6, 0.85, n), 0.5 + rng.uniform(-0.06, 0.06, (n, 2)), rng.uniform(0, 2 * np.pi, n)
    petals = warp(flower_bank(), 2 * (labels // 4) + rng.integers(0, 2, n), centre, s, angle)
    disc = warp(object_bank()[0], pick(rng, ["shape circle"] * n), centre, s * rng.uniform(0.25, 0.35, n), angle)
    green = rng.uniform(0.22, 0.4, n)
    dark = draw.hsv_to_rgb(green, rng.uniform(0.4, 0.9, n), rng.uniform(0.1, 0.3, n))
    light = draw.hsv_to_rgb(green, rng.uniform(0.4, 0.9, n), rng.uniform(0.35, 0.6, n))
    t = draw.smooth_noise(rng, n, IMAGE, cells=6)[..., None]
    foliage = dark[:, None, None] * (1 - t) + light[:, None, None] * t
    hue, sat_lo, sat_hi, val_lo, val_hi = np.array(
        [(h, *sat, *val) for h, sat, val in FLOWER_FAMILIES.values()], np.float32)[labels % 4].T
    colour = draw.hsv_to_rgb(hue + rng.uniform(-0.03, 0.03, n), rng.uniform(sat_lo, sat_hi),
                               rng.uniform(val_lo, val_hi))
    heart = draw.hsv_to_rgb(rng.uniform(0.08, 0.15, n), rng.uniform(0.6, 1.0, n), rng.uniform(0.3, 0.9, n))
    return to_uint8(composite(composite(foliage, petals, colour), disc, heart))


@cache
def font_bank() -> np.ndarray:
    """``FONT_TEXT``'s letters in each of ``FONT_CLASSES`` (index font * len(FONT_TEXT) + letter)."""
    return np.stack([draw.glyph_mask(c, f) for f in FONT_CLASSES for c in FONT_TEXT])


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
    return draw.outline(object_bank()[0], width=3)


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
        images = composite(images, box * (rng.random(n) < 0.7)[:, None, None], draw.random_colours(rng, n))
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
    mosaic = np.repeat(np.repeat(draw.downsample(images, 2), 2, axis=1), 2, axis=2)
    images = np.where((style == 2)[:, None, None, None], mosaic, images)
    cartoon = np.flatnonzero(style == 3)
    if len(cartoon):
        k = len(cartoon)
        s = rng.uniform(0.55, 0.8, k)
        params = (imagenet_ids(rng, labels[cartoon]), 0.5 + rng.uniform(-0.08, 0.08, (k, 2)), s,
                  np.deg2rad(rng.uniform(-15, 15, k)))
        pastel = lambda: draw.random_colours(rng, k, (0.2, 0.5), (0.85, 1.0))  # noqa: E731
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
