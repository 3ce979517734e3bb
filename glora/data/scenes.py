"""Images of the mini suite that come from somewhere: crops of the photographs bundled in scikit-image's wheel
(with the source regions each image was cropped from, recorded while :func:`recording` is active) and
CLEVR-like scenes of shaded solids. Arrays as in :mod:`glora.data.draw`."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from glora.data.draw import hsv_to_rgb

SKIMAGE_DATA = Path(importlib.util.find_spec("skimage").origin).parent / "data"  # files inside the wheel


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
