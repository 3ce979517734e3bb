"""Image primitives of the mini suite: masks (glyphs, polygons), a batched affine warp, colours, backgrounds and
procedural textures. Photographs and rendered 3D scenes: :mod:`glora.data.scenes`.

Arrays are float32 in [0, 1]: a mask bank is ``(M, S, S)``, masks ``(N, H, W)``, images ``(N, H, W, 3)``.
Random choices come from the ``numpy.random.Generator`` passed in, never from global state, so a seed fixes
every pixel. Masks (glyphs from the fonts matplotlib ships, polygons) are drawn once, 4x supersampled, and
placed by one vectorised warp per batch: no per-image drawing in Python for the bulk of the suite.

Positions and sizes are fractions of the image side; angles are radians, counter-clockwise on screen.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
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
        col = lambda a, sl=sl: a[sl, None, None]  # noqa: E731
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
