"""What the mini suite's images are made of: the parts (train / val / test) and the disjoint sources each
crops, objects (glyphs, icons, shapes) with fills on backgrounds, and the upstream (pre-training) set of 142
classes: 51 glyphs (Latin, Greek; in 8-12 fonts), 36 icons (DejaVu's symbols), 18 shapes, 12 textures, 10
colours, 6 counts (1-6 shapes), 9 positions (3x3 grid). Position, size, aspect, a turn of up to 15 degrees,
colours, patterned fills and backgrounds are per-image nuisances. The tasks: :mod:`glora.data.mini_tasks`,
:mod:`glora.data.mini_fewshot`.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from glora.data import draw
from glora.data.draw import SHAPES, TEXTURES, backgrounds, composite, contrasting, to_uint8, warp

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
        add(f"glyph {char}", [draw.glyph_mask(char, f) for f in LETTER_FONTS if draw.font_has(f, char)])
    for name, char in ICONS.items():
        add(f"icon {name}", [draw.glyph_mask(char, f) for f in ICON_FONTS])
    for name in SHAPES:
        add(f"shape {name}", [draw.shape_mask(name)])
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
            p = draw.texture(name, rng, len(sel))[..., None]
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
            p = draw.texture(what, rng, n)[..., None]
            first = draw.random_colours(rng, n)
            images[sel] = first[:, None, None] * (1 - p) + contrasting(rng, first, 0.3)[:, None, None] * p
        elif kind == "colour":
            hue, sat, val = COLOURS[what]
            colour = draw.hsv_to_rgb(hue + rng.uniform(-0.025, 0.025, n), rng.uniform(*sat, n), rng.uniform(*val, n))
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
