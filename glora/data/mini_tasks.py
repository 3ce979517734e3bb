"""What the images of the mini suite show and what their labels mean (``glora.data.mini`` writes them).

Every renderer is ``render(rng, labels, part) -> uint8 (N, 32, 32, 3)``: one image per label, drawn from
``rng`` only; ``part`` ("train", "val" or "test", see ``mini_objects.PARTS``) selects disjoint sources where a
task crops a few real photos (``REGIONS``: the left part of each photo trains, the right part is cut into a validation
and a test quadrant; the retina's top half trains, its bottom half is cut likewise; each class's source
images are split 50/20/30), so that no validation or test image shares a source pixel with a training image
(nor with each other), and validation images come from the same held-out side as test images, as a
validation split should. Renderers :func:`glora.data.scenes.note` what they crop from, and
``glora.data.mini`` writes it to ``<task>/sources.csv`` (the test suite checks the splits never overlap).
Procedural tasks draw fresh samples for every part.

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

The few-shot sets and the ImageNet variants: :mod:`glora.data.mini_fewshot`; what the images are
made of (parts, sources, objects, the upstream set): :mod:`glora.data.mini_objects`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import cache

import numpy as np
from PIL import Image

from glora.data import draw, scenes
from glora.data.draw import backgrounds, composite, contrasting, to_uint8, warp
from glora.data.mini_objects import GAP, IMAGE, PARTS, REGIONS, draw_sources, split_sources
from glora.data.scenes import SKIMAGE_DATA, crops, dihedral, photo, tint
from glora.data.tasks import MINI_TASKS, MiniTask

# ------------------------------------------------------------------ VTAB-style tasks


@cache
def digit_bank() -> tuple[np.ndarray, dict[str, list[np.ndarray]]]:
    """scikit-learn's 1797 digits upsampled to 32x32 masks, and per part the source indices of each class
    (``SOURCE_SPLIT`` of each class in the file's order)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    bank = np.clip(draw.resize_bilinear(digits.images.astype(np.float32) / 16, 32), 0, 1)
    by_class = [np.flatnonzero(digits.target == c) for c in range(10)]
    return bank, {part: [split_sources(i, part) for i in by_class] for part in PARTS}


def render_digits(rng: np.random.Generator, labels: np.ndarray, part: str) -> np.ndarray:
    """Label = the centre digit, in a random colour on a random background, often between two cut-off
    neighbours (as house numbers are)."""
    bank, parts = digit_bank()
    pools = parts[part]
    n = len(labels)
    centre_ids = draw_sources(rng, labels, pools)
    scenes.note(range(n), "sklearn digits", [(i, 0, i + 1, 1) for i in centre_ids])
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
        scenes.note(shown, "sklearn digits", [(i, 0, i + 1, 1) for i in ids[shown]])
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
    scenes.note(range(len(labels)), "lfw_subset.npy", [(i, 0, i + 1, 1) for i in sources])
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
            scenes.note([i], "ihc.png", [scenes.reach(*box, IMAGE)])
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
    return to_uint8(draw.downsample(patches, 2))


@cache
def dsprites_bank() -> np.ndarray:
    """Square, ellipse, heart (dSprites' shapes), then arrow and L (no rotational symmetry)."""
    return np.stack([draw.shape_mask(s) for s in ("square", "ellipse", "heart", "arrow", "ell")])


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
                placed.append((u, v, r, scenes.CLEVR_KINDS[rng.integers(0, 3)], int(rng.integers(0, 8)),
                               bool(rng.random() < 0.5)))
                break
            if resample is not None:
                z = resample()
        else:
            return []
    return placed


def clevr_images(rng: np.random.Generator, layouts: list[list]) -> np.ndarray:
    """The scenes drawn at twice the size (random floor brightness) and averaged down: antialiased."""
    big = np.stack([scenes.clevr_scene(s, rng.uniform(0.4, 0.55), size=2 * IMAGE) for s in layouts])
    return to_uint8(draw.downsample(big, 2))


def render_clevr_count(rng: np.random.Generator, labels: np.ndarray, part: str) -> np.ndarray:
    """3 to 10 solids (label = count - 3) at depths 4 to 8.5, none hidden (they overlap by 10% at most)."""
    layouts = []
    for label in labels:
        objects: list = []
        while not objects:
            new_depth = lambda: float(rng.uniform(4.0, 8.5))  # noqa: E731
            objects = clevr_objects(rng, [new_depth() for _ in range(label + 3)], new_depth)
        layouts.append(objects)
    return clevr_images(rng, layouts)


DIST_EDGES = np.linspace(1 / 4, 1 / 12, 7)  # 1/depth of the nearest solid, bins from nearest (label 0) to farthest


def render_clevr_dist(rng: np.random.Generator, labels: np.ndarray, part: str) -> np.ndarray:
    """2 to 6 solids; label = the bin (of 6, equal in 1/depth over depths 4 to 12) of the nearest one's depth."""
    layouts = []
    for label in labels:
        objects: list = []
        while not objects:
            nearest = 1 / rng.uniform(DIST_EDGES[label + 1], DIST_EDGES[label])
            farther = lambda nearest=nearest: float(rng.uniform(nearest + 0.4, 14.0))  # noqa: E731
            objects = clevr_objects(rng, [nearest] + [farther() for _ in range(rng.integers(1, 6))], farther)
        layouts.append(objects)
    return clevr_images(rng, layouts)


#: each task's renderer (:data:`glora.data.tasks.MINI_TASKS` declares the tasks)
RENDERERS = {
    "digits": render_digits,
    "textures": render_textures,
    "faces": render_faces,
    "specimen": render_specimen,
    "ihc_marker": render_ihc_marker,
    "lesion_grade": render_lesion_grade,
    "dsprites_loc_mini": render_dsprites_loc,
    "dsprites_ori_mini": render_dsprites_ori,
    "clevr_count_mini": render_clevr_count,
    "clevr_dist_mini": render_clevr_dist,
}
TASKS: dict[str, MiniTask] = {name: replace(task, render=RENDERERS[name]) for name, task in MINI_TASKS.items()}
