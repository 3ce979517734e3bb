"""The on-disk text formats every family shares, and the one image Dataset they all return.

- list files: one ``relative/path.jpg <int label>`` per line (VTAB-1K ``train800.txt``..., few-shot
  ``*_meta.list*``); CRLF endings, trailing spaces and blank lines are fine, a line without an integer
  label is an error naming ``file:line``.
- ``suite.json``: a generated mini suite declares its tasks there instead of the paper's tables.
- ``ImageList``: a ``torch.utils.data.Dataset`` of ``(path, label)`` samples; each image is opened as RGB
  and transformed. A missing or corrupt image aborts with its path (and list line), never skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from PIL import Image
from torch.utils.data import Dataset

MAX_SHOWN = 50  # problems listed in one error message; the rest are counted


class DataError(ValueError):
    """Problems with a dataset on disk: the message names each file (and line) and how to obtain the data."""

    def __init__(self, problems: str | Sequence[str], hint: str = ""):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        lines = self.problems[:1] if len(self.problems) == 1 else (
            [f"{len(self.problems)} problems:"] + [f"  {p}" for p in self.problems[:MAX_SHOWN]])
        if len(self.problems) > MAX_SHOWN:
            lines.append(f"  ... and {len(self.problems) - MAX_SHOWN} more")
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))


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


def read_list(list_file: Path, num_classes: int, hint: str = "") -> list[Entry]:
    """Entries of ``list_file``; a ``DataError`` names a missing file, malformed lines and out-of-range labels."""
    if not Path(list_file).is_file():
        raise DataError(f"{list_file}: list file not found", hint)
    entries, problems = parse_list(list_file)
    problems += label_problems(list_file, entries, num_classes)
    if problems:
        raise DataError(problems, hint)
    return entries


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


def load_rgb(path: str | Path) -> Image.Image:
    """The image at ``path`` decoded in full and converted to RGB (grayscale, palette, CMYK, RGBA...)."""
    with Image.open(path) as image:
        return image.convert("RGB")  # convert() loads every byte: a truncated file raises here


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
                  hint: str = "", classes: Sequence[str] | None = None) -> ImageList:
        """The samples of ``list_file`` (paths relative to ``base``); labels are checked against ``num_classes``."""
        entries = read_list(list_file, num_classes, hint)
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
