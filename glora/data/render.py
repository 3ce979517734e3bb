"""Image primitives of the mini suite: masks, a batched affine warp, colours, backgrounds, procedural textures,
crops of the photos bundled in scikit-image's wheel, and CLEVR-like scenes.

Arrays are float32 in [0, 1]: a mask bank is ``(M, S, S)``, masks ``(N, H, W)``, images ``(N, H, W, 3)``.
Random choices come from the ``numpy.random.Generator`` passed in, never from global state, so a seed fixes
every pixel. Masks (glyphs from the fonts matplotlib ships, polygons) are drawn once, 4x supersampled, and
placed by one vectorised warp per batch: no per-image drawing in Python for the bulk of the suite.

Positions and sizes are fractions of the image side; angles are radians, counter-clockwise on screen.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
SKIMAGE_DATA = Path(importlib.util.find_spec("skimage").origin).parent / "data"  # files inside the wheel
BANK_SIZE = 64  # side of a drawn mask; the object fills the centred 0.875 of it
_FIT = 0.875


# ------------------------------------------------------------------ masks


def _fit_to_box(mask: np.ndarray, size: int, oversample: int = 2) -> np.ndarray:
    """Crop ``mask`` (uint8) to its ink and scale it, aspect kept, to fill the centred ``_FIT`` of a square."""
    ys, xs = np.nonzero(mask > 8)
    if len(ys) == 0:
        raise ValueError("empty mask: nothing was drawn; check the shape's points or the glyph's font")
    crop = Image.fromarray(mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1])
    big = size * oversample
    scale = _FIT * big / max(crop.size)
    w, h = max(1, round(crop.width * scale)), max(1, round(crop.height * scale))
    canvas = Image.new("L", (big, big), 0)
    canvas.paste(crop.resize((w, h), Image.Resampling.BILINEAR), ((big - w) // 2, (big - h) // 2))
    return np.asarray(canvas.resize((size, size), Image.Resampling.BOX), dtype=np.float32) / 255.0


@cache
def font_has(font: str, char: str) -> bool:
    """Whether the matplotlib-bundled font file ``font`` has a glyph for ``char``."""
    from matplotlib import ft2font

    return ft2font.FT2Font(str(FONT_DIR / font)).get_char_index(ord(char)) != 0


def glyph_mask(char: str, font: str, size: int = BANK_SIZE) -> np.ndarray:
    """``char`` rendered in ``font`` (a file in matplotlib's ``mpl-data/fonts/ttf``), scaled to fill the box."""
    if not font_has(font, char):
        raise ValueError(f"font {font} has no glyph for {char!r}; pick one of the fonts for which font_has() is True")
    pil_font = ImageFont.truetype(str(FONT_DIR / font), size * 2)
    canvas = Image.new("L", (size * 4, size * 4), 0)
    ImageDraw.Draw(canvas).text((size * 2, size * 2), char, fill=255, font=pil_font, anchor="mm")
    return _fit_to_box(np.asarray(canvas), size)


def _regular(n: int, r: float = 1.0, phase: float = -np.pi / 2) -> list[tuple[float, float]]:
    t = phase + 2 * np.pi * np.arange(n) / n
    return list(zip(r * np.cos(t), r * np.sin(t)))


def _star(n: int, inner: float) -> list[tuple[float, float]]:
    t = -np.pi / 2 + np.pi * np.arange(2 * n) / n
    r = np.where(np.arange(2 * n) % 2 == 0, 1.0, inner)
    return list(zip(r * np.cos(t), r * np.sin(t)))


def _heart() -> list[tuple[float, float]]:
    t = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return list(zip(x / 17, (y + 2.5) / 17))


# Shapes in [-1, 1]^2, y down, drawn part by part: a list of points fills a polygon, ("ellipse", a, b[, cx, cy])
# an ellipse of half-axes a, b, ("hole", ...) erases one. Each shape is then fitted to the box: only its form matters.
SHAPES: dict[str, list] = {
    "circle": [("ellipse", 1.0, 1.0)],
    "ellipse": [("ellipse", 1.0, 0.5)],
    "square": [[(-1, -1), (1, -1), (1, 1), (-1, 1)]],
    "triangle": [_regular(3)],
    "pentagon": [_regular(5)],
    "hexagon": [_regular(6, phase=0.0)],
    "star5": [_star(5, 0.42)],
    "star4": [_star(4, 0.35)],
    "plus": [[(-0.3, -1), (0.3, -1), (0.3, -0.3), (1, -0.3), (1, 0.3), (0.3, 0.3), (0.3, 1), (-0.3, 1),
              (-0.3, 0.3), (-1, 0.3), (-1, -0.3), (-0.3, -0.3)]],
    "ring": [("ellipse", 1.0, 1.0), ("hole", 0.55, 0.55, 0.0, 0.0)],
    "crescent": [("ellipse", 1.0, 1.0), ("hole", 0.85, 0.85, 0.45, -0.2)],
    "heart": [_heart()],
    "arrow": [[(-1, -0.25), (0.2, -0.25), (0.2, -0.7), (1, 0), (0.2, 0.7), (0.2, 0.25), (-1, 0.25)]],
    "ell": [[(-0.6, -1), (-0.1, -1), (-0.1, 0.5), (0.6, 0.5), (0.6, 1), (-0.6, 1)]],
    "tee": [[(-1, -1), (1, -1), (1, -0.5), (0.25, -0.5), (0.25, 1), (-0.25, 1), (-0.25, -0.5), (-1, -0.5)]],
    "semicircle": [[(np.cos(t), -np.sin(t)) for t in np.linspace(0, np.pi, 60)]],
    "trapezoid": [[(-1, 0.6), (1, 0.6), (0.45, -0.6), (-0.45, -0.6)]],
    "chevron": [[(-1, -0.8), (-0.45, -0.8), (0.2, 0), (-0.45, 0.8), (-1, 0.8), (-0.35, 0)]],
}


def shape_mask(name: str, size: int = BANK_SIZE) -> np.ndarray:
    """The filled shape ``name`` (a key of ``SHAPES``), antialiased and scaled to fill the box."""
    if name not in SHAPES:
        raise ValueError(f"unknown shape {name!r}; known: {sorted(SHAPES)}")
    big = size * 4
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    to_px = lambda x, y: ((x * 0.5 + 0.5) * (big - 1), (y * 0.5 + 0.5) * (big - 1))  # noqa: E731
    for part in SHAPES[name]:
        if isinstance(part, tuple):
            kind, a, b, *centre = part
            cx, cy = centre or (0.0, 0.0)
            box = [*to_px(cx - a, cy - b), *to_px(cx + a, cy + b)]
            draw.ellipse(box, fill=0 if kind == "hole" else 255)
        else:
            draw.polygon([to_px(x, y) for x, y in part], fill=255)
    return _fit_to_box(np.asarray(canvas), size)


def outline(bank: np.ndarray, width: int = 3) -> np.ndarray:
    """The contours of each mask in ``bank``: the mask minus its erosion by ``width`` pixels (a sketch)."""
    hard = bank > 0.5
    inner = hard.copy()
    for _ in range(width):
        shifted = np.pad(inner, ((0, 0), (1, 1), (1, 1)))
        inner = inner & shifted[:, :-2, 1:-1] & shifted[:, 2:, 1:-1] & shifted[:, 1:-1, :-2] & shifted[:, 1:-1, 2:]
    return np.clip(bank - inner.astype(np.float32), 0.0, 1.0)


# ------------------------------------------------------------------ placing masks


def warp(bank: np.ndarray, ids: np.ndarray, centre: np.ndarray, size: np.ndarray, angle: np.ndarray,
         out: int = 32, ss: int = 2, chunk: int = 256) -> np.ndarray:
    """Masks ``(N, out, out)``: ``bank[ids[i]]`` rotated by ``angle[i]``, scaled so that the bank's box spans
    ``size[i]`` (a scalar, or ``(sx, sy)``) of the image side, centred at ``centre[i]`` (x, y in [0, 1]).

    Bilinear sampling on an ``ss``-times finer grid, then averaged down (antialiasing); zero outside the bank.
    """
    n, s = len(ids), bank.shape[-1]
    size = np.broadcast_to(np.asarray(size, np.float32).reshape(n, -1), (n, 2))
    centre = np.asarray(centre, np.float32)
    pad = 1
    side = s + 2 * pad + 1
    used, ids = np.unique(ids, return_inverse=True)  # pad only the masks in use
    flat = np.pad(bank[used].astype(np.float32), ((0, 0), (pad, pad + 1), (pad, pad + 1))).reshape(-1)
    grid = (np.arange(out * ss, dtype=np.float32) + 0.5) / (out * ss)
    # bank pixel = s * (R(angle)^-1 (p - centre) / size + 0.5) - 0.5 + pad, written as an affine map of p;
    # screen y points down, so a counter-clockwise turn on screen is a clockwise one in (x, y)
    cos, sin = np.cos(angle).astype(np.float32), np.sin(angle).astype(np.float32)
    ax, bx = s * cos / size[:, 0], -s * sin / size[:, 0]
    ay, by = s * sin / size[:, 1], s * cos / size[:, 1]
    cx = -ax * centre[:, 0] - bx * centre[:, 1] + s * 0.5 - 0.5 + pad
    cy = -ay * centre[:, 0] - by * centre[:, 1] + s * 0.5 - 0.5 + pad
    top_limit = np.float32(s + pad + 0.999)
    result = np.empty((n, out, out), np.float32)
    for lo in range(0, n, chunk):
        sl = slice(lo, min(n, lo + chunk))
        col = lambda a: a[sl, None, None]  # noqa: E731
        x = col(ax) * grid[None, None, :] + (col(bx) * grid[None, :, None] + col(cx))
        y = col(ay) * grid[None, None, :] + (col(by) * grid[None, :, None] + col(cy))
        np.clip(x, 0, top_limit, out=x)
        np.clip(y, 0, top_limit, out=y)
        x0, y0 = x.astype(np.int32), y.astype(np.int32)
        x -= x0
        y -= y0
        base = y0 * side + x0 + (ids[sl].astype(np.int32) * side * side)[:, None, None]
        a, b = flat[base], flat[base + 1]
        upper = a + (b - a) * x
        a, b = flat[base + side], flat[base + side + 1]
        lower = a + (b - a) * x
        fine = upper + (lower - upper) * y
        result[sl] = sum(fine[:, i::ss, j::ss] for i in range(ss) for j in range(ss)) / (ss * ss)
    return result


def composite(images: np.ndarray, masks: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """``images`` with ``colour`` (``(N, 3)`` or ``(N, H, W, 3)``) painted through ``masks`` (alpha)."""
    alpha = masks[..., None]
    fill = colour[:, None, None, :] if colour.ndim == 2 else colour
    return images * (1 - alpha) + fill * alpha


def downsample(images: np.ndarray, factor: int) -> np.ndarray:
    """Box-average ``(N, H, W, ...)`` by ``factor`` in H and W."""
    n, h, w = images.shape[:3]
    return images.reshape(n, h // factor, factor, w // factor, factor, *images.shape[3:]).mean(axis=(2, 4))


def resize_bilinear(images: np.ndarray, out: int) -> np.ndarray:
    """Resize square ``(N, H, H, ...)`` to ``(N, out, out, ...)`` by separable linear interpolation (upsampling)."""
    h = images.shape[1]
    pos = np.clip((np.arange(out) + 0.5) * h / out - 0.5, 0, h - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, h - 1)
    w = (pos - lo).astype(np.float32)
    m = np.zeros((out, h), np.float32)
    np.add.at(m, (np.arange(out), lo), 1 - w)
    np.add.at(m, (np.arange(out), hi), w)
    return np.einsum("ij,nj...->ni...", m, np.einsum("ij,nkj...->nki...", m, images))


def to_uint8(images: np.ndarray) -> np.ndarray:
    return np.clip(images * 255.0 + 0.5, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------ colours and backgrounds


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``(..., 3)`` RGB from hue in [0, 1) (wraps), saturation and value in [0, 1]."""
    h6 = (np.asarray(h, np.float32) % 1.0) * 6.0
    k = (np.array([5.0, 3.0, 1.0], np.float32) + h6[..., None]) % 6.0
    ramp = np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return (np.asarray(v, np.float32)[..., None] * (1 - np.asarray(s, np.float32)[..., None] * ramp)).astype(np.float32)


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], np.float32)


def random_colours(rng: np.random.Generator, n: int, saturation: tuple[float, float] = (0.0, 1.0),
                   value: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """``n`` RGB colours with uniform hue and the given saturation and value ranges."""
    return hsv_to_rgb(rng.random(n), rng.uniform(*saturation, n), rng.uniform(*value, n))


def contrasting(rng: np.random.Generator, against: np.ndarray, gap: float = 0.35) -> np.ndarray:
    """One colour per row of ``against`` whose value (HSV) differs from that colour's by at least ``gap``."""
    v_bg = against.max(axis=-1)
    dark = rng.uniform(0.0, 1.0, len(against)) * np.maximum(v_bg - gap, 0.0)
    light = v_bg + gap + rng.uniform(0.0, 1.0, len(against)) * np.maximum(1.0 - v_bg - gap, 0.0)
    go_dark = (v_bg - gap > 0) & ((v_bg + gap > 1) | (rng.random(len(against)) < 0.5))
    value = np.where(go_dark, dark, np.minimum(light, 1.0))
    return hsv_to_rgb(rng.random(len(against)), rng.uniform(0.2, 1.0, len(against)), value)


def smooth_noise(rng: np.random.Generator, n: int, out: int = 32, cells: int = 4) -> np.ndarray:
    """``(n, out, out)`` in [0, 1]: a ``cells`` x ``cells`` random grid, bilinearly upsampled."""
    return resize_bilinear(rng.random((n, cells, cells), dtype=np.float32), out)


def backgrounds(rng: np.random.Generator, n: int, out: int = 32, saturation: tuple[float, float] = (0.0, 0.8),
                value: tuple[float, float] = (0.05, 0.95)) -> tuple[np.ndarray, np.ndarray]:
    """Random backgrounds ``(n, out, out, 3)`` (flat, linear gradient, or smooth blotches between two close
    colours) and each one's mean colour ``(n, 3)`` (to pick a contrasting foreground)."""
    base = random_colours(rng, n, saturation, value)
    other = np.clip(base + rng.normal(0, 0.15, (n, 3)).astype(np.float32), 0, 1)
    kind = rng.integers(0, 3, n)
    theta = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    g = (np.arange(out, dtype=np.float32) + 0.5) / out - 0.5
    ramp = np.cos(theta)[:, None, None] * g[None, None, :] + np.sin(theta)[:, None, None] * g[None, :, None] + 0.5
    blotch = smooth_noise(rng, n, out)
    t = np.where((kind == 0)[:, None, None], 0.0, np.where((kind == 1)[:, None, None], ramp, blotch))
    images = base[:, None, None, :] * (1 - t[..., None]) + other[:, None, None, :] * t[..., None]
    return images.astype(np.float32), images.mean(axis=(1, 2))


# ------------------------------------------------------------------ procedural textures

TEXTURES = ("stripes_0", "stripes_45", "stripes_90", "stripes_135", "checker", "dots", "grid", "rings", "waves",
            "speckle", "blobs", "zigzag")


def texture(kind: str, rng: np.random.Generator, n: int, out: int = 32) -> np.ndarray:
    """``(n, out, out)`` patterns in [0, 1] of texture ``kind`` (one of ``TEXTURES``), with random period,
    phase and a small random rotation (the class is the pattern, not its exact geometry)."""
    if kind not in TEXTURES:
        raise ValueError(f"unknown texture {kind!r}; known: {list(TEXTURES)}")
    g = np.arange(out, dtype=np.float32) - out / 2
    y, x = np.meshgrid(g, g, indexing="ij")
    base = {"stripes_0": 0.0, "stripes_45": 45.0, "stripes_90": 90.0, "stripes_135": 135.0}.get(kind, 0.0)
    theta = np.deg2rad(base + rng.uniform(-8, 8, n)).astype(np.float32)[:, None, None]
    u = np.cos(theta) * x + np.sin(theta) * y
    v = -np.sin(theta) * x + np.cos(theta) * y
    period = rng.uniform(4.0, 8.0, n).astype(np.float32)[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, n).astype(np.float32)[:, None, None]
    wave = lambda z: 0.5 + 0.5 * np.sin(2 * np.pi * z / period + phase)  # noqa: E731
    sharp = lambda z: np.clip((z - 0.5) * 4 + 0.5, 0, 1)  # noqa: E731
    if kind.startswith("stripes"):
        return sharp(wave(u))
    if kind == "checker":
        return sharp(0.5 + 2 * (wave(u) - 0.5) * (wave(v + period / 4) - 0.5))
    cell_u = (u / period + phase / (2 * np.pi)) % 1.0 - 0.5  # position inside a lattice cell, in [-0.5, 0.5)
    cell_v = (v / period + phase / (2 * np.pi)) % 1.0 - 0.5
    if kind == "dots":
        return np.clip((0.3 - np.sqrt(cell_u ** 2 + cell_v ** 2)) * 8 + 0.5, 0, 1)
    if kind == "grid":
        return np.clip((np.maximum(np.abs(cell_u), np.abs(cell_v)) - 0.38) * 12 + 0.5, 0, 1)
    if kind == "rings":
        cx, cy = rng.uniform(-12, 12, (2, n, 1, 1)).astype(np.float32)
        return sharp(wave(np.sqrt((x - cx) ** 2 + (y - cy) ** 2)))
    if kind == "waves":
        return sharp(wave(u + 3.0 * np.sin(2 * np.pi * v / (2.5 * period))))
    if kind == "zigzag":
        tri = np.abs(((v / period) % 1.0) - 0.5) * period * 1.5
        return sharp(wave(u + tri))
    if kind == "speckle":
        return (rng.random((n, out, out), dtype=np.float32) < 0.3).astype(np.float32)
    return sharp(smooth_noise(rng, n, out, cells=8) * 1.5 - 0.25)  # blobs


# ------------------------------------------------------------------ real images shipped in the wheels


@cache
def photo(name: str) -> np.ndarray:
    """``skimage/data/<name>`` as uint8 RGB ``(H, W, 3)`` (read from the wheel, never fetched)."""
    path = SKIMAGE_DATA / name
    if not path.is_file():
        raise ValueError(f"{path} is missing: the mini suite reads the images bundled in scikit-image's wheel "
                         "(0.24 to 0.26); reinstall scikit-image")
    with Image.open(path) as image:
        array = np.asarray(image.convert("RGB"))
    array.flags.writeable = False
    return array


#: the footprints of the images being rendered while :func:`recording` is active: image index -> list of
#: ``(source, x0, y0, x1, y1)``, the source's pixels an image was resampled from (the resampling filter's reach
#: included); ``glora.data.mini`` writes them to ``<task>/sources.csv``
_FOOTPRINTS: ContextVar[dict[int, list[tuple]] | None] = ContextVar("footprints", default=None)


@contextmanager
def recording() -> Iterator[dict[int, list[tuple]]]:
    """Collect the footprints that renderers :func:`note` while the block runs (index -> footprints)."""
    footprints: dict[int, list[tuple]] = {}
    token = _FOOTPRINTS.set(footprints)
    try:
        yield footprints
    finally:
        _FOOTPRINTS.reset(token)


def note(indices, source: str, boxes) -> None:
    """Record that image ``indices[k]`` was drawn from ``boxes[k]`` (x0, y0, x1, y1 pixels) of ``source``."""
    footprints = _FOOTPRINTS.get()
    if footprints is None:
        return
    for i, box in zip(indices, boxes):
        footprints.setdefault(int(i), []).append((source, *(round(float(v), 2) for v in box)))


def reach(x0: float, y0: float, x1: float, y1: float, out: int) -> tuple[float, float, float, float]:
    """The pixels a bilinear resize of box (x0, y0, x1, y1) to ``out`` reads: the box widened by the filter's
    support, which grows with the reduction factor (Pillow scales it by box side / ``out``), plus one pixel."""
    pad = max(x1 - x0, y1 - y0) / out + 1
    return x0 - pad, y0 - pad, x1 + pad, y1 + pad


def crops(rng: np.random.Generator, image: np.ndarray, n: int, side: tuple[float, float],
          region: tuple[float, float, float, float], valid: np.ndarray | None = None, out: int = 32, *,
          source: str = "", at=None) -> np.ndarray:
    """``n`` square crops of ``image`` resized to ``out`` (float32 RGB): side a uniform fraction ``side`` of the
    shorter edge, each crop inside ``region`` (x0, y0, x1, y1 as fractions) and, if given, inside ``valid``.
    The footprints are noted as drawn from ``source`` for images ``at`` (default 0..n-1)."""
    h, w = image.shape[:2]
    if n == 0:
        return np.zeros((0, out, out, image.shape[2]), np.float32)
    x_lo, y_lo, x_hi, y_hi = region[0] * w, region[1] * h, region[2] * w, region[3] * h
    if side[1] * min(h, w) > min(x_hi - x_lo, y_hi - y_lo):
        raise ValueError(f"crops of up to {side[1]} of the shorter edge ({side[1] * min(h, w):.0f} px) do not fit "
                         f"region {region} ({x_hi - x_lo:.0f} x {y_hi - y_lo:.0f} px) of a {w} x {h} image")
    integral = None if valid is None else np.pad(valid.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    boxes = np.empty((0, 3))
    for _ in range(100):
        s = rng.uniform(*side, 4 * n) * min(h, w)
        x0 = x_lo + rng.random(4 * n) * (x_hi - x_lo - s)
        y0 = y_lo + rng.random(4 * n) * (y_hi - y_lo - s)
        if integral is not None:
            a, b = np.floor(y0).astype(int), np.floor(x0).astype(int)
            c, d = np.ceil(y0 + s).astype(int), np.ceil(x0 + s).astype(int)
            inside = integral[c, d] - integral[a, d] - integral[c, b] + integral[a, b] == (c - a) * (d - b)
            x0, y0, s = x0[inside], y0[inside], s[inside]
        boxes = np.concatenate([boxes, np.stack([x0, y0, s], 1)])
        if len(boxes) >= n:
            break
    else:
        raise ValueError(f"no crop of side {side} fits region {region} of the image; widen the region")
    boxes = boxes[:n]
    note(range(n) if at is None else at, source, [reach(x, y, x + s, y + s, out) for x, y, s in boxes])
    pil = Image.fromarray(image)
    return np.stack([np.asarray(pil.resize((out, out), Image.Resampling.BILINEAR, box=(x, y, x + s, y + s)))
                     for x, y, s in boxes]).astype(np.float32) / 255


def dihedral(rng: np.random.Generator, images: np.ndarray) -> np.ndarray:
    """Each image turned by a random multiple of 90 degrees and mirrored with probability 1/2."""
    turns, flips = rng.integers(0, 4, len(images)), rng.random(len(images)) < 0.5
    return np.stack([np.rot90(im[:, ::-1] if f else im, k) for im, k, f in zip(images, turns, flips)])


def tint(rng: np.random.Generator, grey: np.ndarray) -> np.ndarray:
    """Grey images ``(N, H, W)`` standardised (no brightness/contrast cue left) and mapped between a random
    dark and a random light colour of similar hue: colour carries no label."""
    z = (grey - grey.mean(axis=(1, 2), keepdims=True)) / (grey.std(axis=(1, 2), keepdims=True) + 1e-3)
    g = np.clip(0.5 + rng.uniform(0.12, 0.22, (len(grey), 1, 1)) * z + rng.uniform(-0.08, 0.08, (len(grey), 1, 1)),
                0, 1)
    hue = rng.random(len(grey))
    dark = hsv_to_rgb(hue, rng.uniform(0, 0.6, len(grey)), rng.uniform(0.0, 0.3, len(grey)))
    light = hsv_to_rgb(hue + rng.uniform(-0.1, 0.1, len(grey)), rng.uniform(0, 0.5, len(grey)),
                       rng.uniform(0.75, 1.0, len(grey)))
    return dark[:, None, None] + (light - dark)[:, None, None] * g[..., None]


# ------------------------------------------------------------------ CLEVR-like scenes

CLEVR_COLOURS = np.array([[87, 87, 87], [173, 35, 35], [42, 75, 215], [29, 105, 20], [129, 74, 25], [129, 38, 192],
                          [41, 208, 208], [255, 238, 51]], np.float32) / 255  # CLEVR's eight colours
CLEVR_KINDS = ("sphere", "cube", "cylinder")
_LIGHT = np.array([-0.45, -0.6, 0.66], np.float32) / np.linalg.norm([-0.45, -0.6, 0.66])


def clevr_scene(objects: list[tuple[float, float, float, str, int, bool]], floor: float, size: int = 64) -> np.ndarray:
    """A ``(size, size, 3)`` scene of shaded solids on a grey floor, lit from the upper left.

    Each object is ``(u, v, r, kind, colour, metal)`` in pixels: ``u`` its centre's x, ``v`` the y where it
    touches the floor, ``r`` its half-width; ``kind`` one of ``CLEVR_KINDS``, ``colour`` an index into
    ``CLEVR_COLOURS``, ``metal`` adds a specular highlight. Objects are drawn far (small ``v``) to near.
    """
    y_all, x_all = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    image = np.repeat((floor + 0.12 * y_all / size)[..., None], 3, axis=-1)
    lx, ly, lz = _LIGHT

    def window(u: float, v: float, r: float) -> tuple[slice, slice]:  # every pixel an object or shadow can touch
        return (slice(max(0, int(v - 2.2 * r - 2)), max(0, int(v + 0.7 * r + 3))),
                slice(max(0, int(u - 1.2 * r - 2)), max(0, int(u + 2.2 * r + 3))))

    for u, v, r, *_ in objects:  # soft contact shadows first, so no object is darkened by another's
        win = window(u, v, r)
        x, y = x_all[win], y_all[win]
        d = ((x - u - 0.5 * r) / (1.3 * r)) ** 2 + ((y - v + 0.15 * r) / (0.5 * r)) ** 2
        image[win] *= 1 - 0.35 * np.clip(1.5 - d, 0, 1)[..., None]
    for u, v, r, kind, colour, metal in sorted(objects, key=lambda o: o[1]):
        win = window(u, v, r)
        x, y = x_all[win], y_all[win]
        base = CLEVR_COLOURS[colour] * (0.8 if metal else 1.0)
        if kind == "sphere":
            nx, ny = (x - u) / r, (y - v + r) / r
            d2 = nx ** 2 + ny ** 2
            lam = np.clip(nx * lx + ny * ly + np.sqrt(np.clip(1 - d2, 0, 1)) * lz, 0, 1)
            shade, mask = 0.25 + 0.75 * lam, d2 <= 1
        elif kind == "cube":
            a, dx, dy = 0.8 * r, 0.4 * 0.8 * r, -0.6 * 0.8 * r
            front = (np.abs(x - u) <= a) & (y >= v - 2 * a) & (y <= v)
            t_top = np.clip((v - 2 * a - y) / -dy, 0, 1)
            top = (y < v - 2 * a) & (y >= v - 2 * a + dy) & (np.abs(x - u - t_top * dx) <= a)
            t_side = np.clip((x - u - a) / dx, 0, 1)
            side = (x > u + a) & (x <= u + a + dx) & (y >= v - 2 * a + t_side * dy) & (y <= v + t_side * dy)
            shade = np.where(top, 1.0, np.where(side, 0.45, 0.7)).astype(np.float32)
            mask, lam = front | top | side, 0.6 * top.astype(np.float32)
        else:  # cylinder
            a, h = 0.75 * r, 1.5 * 0.75 * r
            s = np.clip((x - u) / a, -1, 1)
            bottom = ((x - u) / a) ** 2 + ((y - v) / (0.35 * a)) ** 2 <= 1
            body = ((np.abs(x - u) <= a) & (y >= v - h) & (y <= v)) | bottom
            cap = ((x - u) / a) ** 2 + ((y - v + h) / (0.35 * a)) ** 2 <= 1
            lam = np.where(cap, 1.0, np.clip(s * lx + np.sqrt(1 - s ** 2) * lz, 0, 1)).astype(np.float32)
            shade, mask = 0.25 + 0.75 * lam, body | cap
        pixel = base * shade[..., None]
        if metal:
            pixel = pixel + 0.8 * (lam ** 24)[..., None]
        image[win] = np.where(mask[..., None], np.clip(pixel, 0, 1), image[win])
    return image.astype(np.float32)
