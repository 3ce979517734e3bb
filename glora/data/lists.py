"""The on-disk text formats every family shares, and the one image Dataset they all return.

- list files: one ``relative/path.jpg <int label>`` per line (VTAB-1K ``train800.txt``..., few-shot
  ``*_meta.list*``); CRLF endings, trailing spaces and blank lines are fine, a line without an integer
  label is an error naming ``file:line``, and so is an empty list. A path must stay inside the data root
  once resolved (after ``..`` and symlinks): an absolute path, a ``../`` leading out of the root or a
  symlink to a file elsewhere is an error naming ``file:line``, and the file is never opened. The data
  root is the family's folder (``paths.vtab``, ``--root``...); a task folder inside it may itself be a
  symlink to elsewhere (its target then counts as inside).
- ``suite.json``: a generated mini suite declares its tasks there instead of the paper's tables.
- ``ImageList``: a ``torch.utils.data.Dataset`` of ``(path, label)`` samples; each image is decoded to 8-bit
  RGB by :func:`to_rgb` and transformed. A missing, corrupt or undecodable image aborts with its path (and
  list line), never skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from glora.errors import DataError  # its home; re-exported here, where it was first defined


class Entry(NamedTuple):
    """One line of a list file: the image path as written (relative), its label, its 1-based line number."""

    path: str
    label: int
    line: int


def parse_list(list_file: Path) -> tuple[list[Entry], list[str]]:
    """The entries of ``list_file`` and its malformed lines as ``file:line: ...`` problems."""
    entries, problems = [], []
    for number, raw in enumerate(Path(list_file).read_text(encoding="utf-8-sig").splitlines(), start=1):
        text = raw.strip()
        if not text:
            continue
        parts = text.rsplit(maxsplit=1)  # a path may contain spaces; the label is the last field
        if len(parts) < 2:
            problems.append(f"{list_file}:{number}: expected '<path> <int label>', got {text!r} (no label)")
            continue
        try:
            entries.append(Entry(parts[0], int(parts[1]), number))
        except ValueError:
            problems.append(f"{list_file}:{number}: label {parts[1]!r} is not an integer")
    return entries, problems


def read_list(list_file: Path, num_classes: int, hint: str = "", *, base: Path | None = None,
              root: Path | None = None) -> list[Entry]:
    """Entries of ``list_file``; a ``DataError`` names a missing or empty file, malformed lines, out-of-range
    labels and (given ``base``, the folder the paths are relative to, and ``root``, the data root) paths that
    lead out of the data root."""
    if not Path(list_file).is_file():
        raise DataError(f"{list_file}: list file not found", hint)
    entries, problems = parse_list(list_file)
    if not entries and not problems:
        problems.append(empty_problem(list_file))
    problems += label_problems(list_file, entries, num_classes)
    if base is not None:
        problems += escape_problems(list_file, entries, base, root if root is not None else base)
    if problems:
        raise DataError(problems, hint)
    return entries


def empty_problem(list_file: Path) -> str:
    return (f"{list_file}: the list has no entries; expected one '<path> <int label>' line per image "
            "(run `python -m glora data check` on this folder)")


def inside(path: str | Path, root: str | Path, base: str | Path | None = None) -> Path | None:
    """``path`` resolved (``..`` and symlinks followed) if it lies inside ``root`` or inside ``base`` (a folder
    of the root that may itself be a symlink to elsewhere), else None."""
    target = Path(path).resolve()
    allowed = [Path(root).resolve()] + ([Path(base).resolve()] if base is not None else [])
    return target if any(target.is_relative_to(folder) for folder in allowed) else None


def escaping(entries: Sequence[Entry], base: Path, root: Path) -> list[Entry]:
    """The entries (paths relative to ``base``) that resolve outside the data ``root``."""
    return [e for e in entries if inside(Path(base) / e.path, root, base) is None]


def escape_problems(list_file: Path, entries: Sequence[Entry], base: Path, root: Path) -> list[str]:
    """A ``file:line`` problem for each entry (relative to ``base``) that resolves outside the data ``root``."""
    return [f"{list_file}:{e.line}: {e.path!r} resolves to {(Path(base) / e.path).resolve()}, outside the data "
            f"root {root}; list paths must be relative to {base} and stay inside the data root (no absolute "
            "paths, no '..' or symlinks leading out of it)" for e in escaping(entries, base, root)]


def label_problems(list_file: Path, entries: Sequence[Entry], num_classes: int) -> list[str]:
    return [f"{list_file}:{e.line}: label {e.label} outside [0, {num_classes})"
            for e in entries if not 0 <= e.label < num_classes]


def read_suite(root: Path, family: str) -> dict | None:
    """``<root>/suite.json`` (a generated mini suite's declaration) if present, checked to be for ``family``."""
    path = Path(root) / "suite.json"
    if not path.is_file():
        return None
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err}); regenerate it with `python -m glora data mini`") from None
    if not isinstance(suite, dict) or suite.get("family") != family:
        found = suite.get("family") if isinstance(suite, dict) else None
        raise DataError(f"{path}: declares family {found!r}, but {family!r} was asked; "
                        f"point --root at a {family} folder")
    return suite


def suite_records(root: str | Path, family: str, key: str) -> tuple[Path, dict] | None:
    """``(suite.json path, its non-empty mapping under key)`` when ``root`` declares its own tasks, else None."""
    suite = read_suite(Path(root), family)
    if suite is None:
        return None
    path = Path(root) / "suite.json"
    records = suite.get(key)
    if not isinstance(records, dict) or not records:
        raise DataError(f"{path}: '{key}' must map names to their records; "
                        "regenerate the suite with `python -m glora data mini`")
    return path, records


def pick(records: dict, name: str, what: str, source: str):
    """``records[name]``, or a ``DataError`` naming ``what`` and listing the known names from ``source``."""
    if name not in records:
        raise DataError(f"unknown {what} {name!r}; known ({source}): {list(records)}")
    return records[name]


def suite_int(path: Path, key: str, value: object) -> int:
    """``value`` if it is a positive int, else a ``DataError`` naming ``suite.json``'s ``key``."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise DataError(f"{path}: {key} must be a positive integer, got {value!r}; "
                        "regenerate the suite with `python -m glora data mini`")
    return value


#: modes whose pixels Pillow cannot turn into RGB colours (its LAB -> RGB "conversion" copies the channels)
REFUSED_MODES = {"LAB": "CIELAB pixels need a colour-managed conversion"}
SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB pixels of ``image``, whatever its mode; a ``ValueError`` says why a mode cannot be decoded.

    The policy, one per kind of mode:

    - 8-bit modes (``1``, ``L``, ``P``, ``RGB``, ``CMYK``, ``YCbCr``, ``HSV``, ``RGBX``): Pillow's conversion
      (``1``: 0/255; ``P``: the palette's colours; ``CMYK``: R = (255-C)(255-K)/255).
    - Alpha (``LA``, ``PA``, ``RGBA``, ``P`` with a transparent index, premultiplied ``La``/``RGBa``): dropped,
      the stored colours are kept. This is what ``Image.convert("RGB")`` in the paper's loaders (NOAH's, timm's)
      does, so the pixels are the ones the published numbers were measured on; compositing onto a background
      would change them.
    - 16-bit grey (``I;16``, ``I;16L``, ``I;16B``, ``I;16N``) and 32-bit integer ``I`` (Pillow's mode for 16-bit
      PPM/PGM and some TIFFs): scaled by the nominal 16-bit depth, keeping the 8 high bits (v >> 8, so 65535 ->
      255), as Pillow does for 16-bit RGB PNGs: a 16-bit grey PNG and the same picture as 16-bit RGB decode
      alike. Not by the image's own range: a per-image stretch would brighten dark images and make a pixel's
      value depend on the rest of the image (12-bit data in a 16-bit file therefore decodes dark, as in any
      viewer). ``I`` pixels outside [0, 65535] are refused: their depth is unknown.
    - 32-bit float ``F``: values in [0, 1] scaled by 255 and rounded; anything else (NaN, negative, above 1) is
      refused: a float image's scale is a convention the file does not record.
    - ``LAB``: refused (Pillow has no colour-managed conversion to RGB without ImageCms profiles).

    Multi-frame files (GIF, TIFF) give their first frame. Decoding loads every byte: a truncated file raises.
    """
    mode = image.mode
    if mode in REFUSED_MODES:
        raise ValueError(f"mode {mode}: {REFUSED_MODES[mode]}; convert the file to RGB")
    if mode in SIXTEEN_BIT or mode == "I":
        pixels = np.asarray(image).astype(np.int64)
        if mode == "I" and pixels.size and (pixels.min() < 0 or pixels.max() > 65535):
            raise ValueError(f"mode I (32-bit integer) pixels span [{pixels.min()}, {pixels.max()}], outside the "
                             "16-bit range [0, 65535] that is scaled to 8 bits; save the image with 8 or 16 bits")
        return Image.fromarray((pixels >> 8).astype(np.uint8), "L").convert("RGB")
    if mode == "F":
        pixels = np.asarray(image, dtype=np.float64)
        if pixels.size and not (np.isfinite(pixels).all() and pixels.min() >= 0 and pixels.max() <= 1):
            raise ValueError(f"mode F (32-bit float) pixels span [{np.nanmin(pixels):g}, {np.nanmax(pixels):g}]"
                             f"{' with NaN/inf' if not np.isfinite(pixels).all() else ''}; only [0, 1] is "
                             "decoded (scaled by 255); save the image with 8 or 16 bits")
        return Image.fromarray(np.rint(pixels * 255).astype(np.uint8), "L").convert("RGB")
    return image.convert("RGB")  # convert() loads every byte: a truncated file raises here


def load_rgb(path: str | Path) -> Image.Image:
    """The image at ``path`` decoded in full to 8-bit RGB by :func:`to_rgb`."""
    with Image.open(path) as image:
        return to_rgb(image)


class ImageList(Dataset):
    """``(transform(image), label)`` for each ``(path, label)`` in ``samples``.

    ``num_classes`` is the classifier's output size (1000 for the ImageNet variants, whatever subset they
    hold); ``classes`` names the class indices where known (ImageNet wnids); ``origins`` (optional) says
    where each sample was listed (``file:line``) for error messages.
    """

    def __init__(self, samples: Sequence[tuple[str, int]], transform: Callable | None, *, num_classes: int,
                 classes: Sequence[str] | None = None, origins: Sequence[str] | None = None):
        self.samples = list(samples)
        self.transform = transform
        self.num_classes = num_classes
        self.classes = list(classes) if classes is not None else None
        self.origins = list(origins) if origins is not None else None

    @classmethod
    def from_list(cls, list_file: Path, base: Path, transform: Callable | None, *, num_classes: int,
                  hint: str = "", classes: Sequence[str] | None = None, root: Path | None = None) -> ImageList:
        """The samples of ``list_file`` (paths relative to ``base``, which must stay inside the data ``root``,
        default ``base``); labels are checked against ``num_classes``."""
        entries = read_list(list_file, num_classes, hint, base=base, root=root)
        return cls([(str(Path(base) / e.path), e.label) for e in entries], transform, num_classes=num_classes,
                   classes=classes, origins=[f"{list_file}:{e.line}" for e in entries])

    @property
    def targets(self) -> list[int]:
        return [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        try:
            image = load_rgb(path)
        except Exception as err:  # any decoder failure: abort with the path, never skip the sample
            where = f" (listed at {self.origins[index]})" if self.origins else ""
            raise DataError(f"cannot read image {path}{where}: {err}; "
                            "run `python -m glora data check` on this folder") from err
        return (self.transform(image) if self.transform else image), label
