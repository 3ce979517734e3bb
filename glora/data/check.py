"""``check_dataset``: validate a VTAB-1K, few-shot or ImageNet-variant folder before GPU time is spent.

What is checked: every list file is present, non-empty and well formed, split sizes (VTAB-1K: 800 / 200 /
1000 / the task's test size; few-shot: shot x classes lines per training list), labels in
``[0, num_classes)``, every listed path stays inside the data root once resolved (absolute paths, ``..`` and
symlinks leading out are refused and never opened), every listed image exists and (unless ``decode=False``)
decodes in full to 8-bit RGB by :func:`glora.data.lists.to_rgb` (whose docstring is the policy for 16-bit,
float, alpha and other modes), and no image of a training list is in the test list. Duplicated lines (real
1-shot lists have some) are warnings.
All problems are collected into one ``DataError`` naming each file and line and how to obtain the data;
on success the manifest (counts, classes seen, sha256 of each list file, warnings) is returned.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from glora.atomic import sha256
from glora.data import fewshot, imagenet, vtab
from glora.data.lists import (
    DataError,
    Entry,
    empty_problem,
    escape_problems,
    escaping,
    label_problems,
    load_rgb,
    parse_list,
)

FAMILIES = ("vtab", "fewshot", "imagenet")
MINI_HINT = "This folder is a generated mini suite (suite.json): regenerate it with `python -m glora data mini`."


def check_dataset(family: str, root: str | Path, tasks: list[str] | None = None, decode: bool = True) -> dict:
    """Check ``tasks`` (default: all found, or all that ``suite.json`` declares) of ``root``; the manifest."""
    if family not in FAMILIES:
        raise DataError(f"unknown data family {family!r}; known: {list(FAMILIES)}")
    root = Path(root)
    hint = {"vtab": vtab.HINT, "fewshot": fewshot.HINT, "imagenet": imagenet.HINT}[family]
    if not root.is_dir():
        raise DataError(f"{root}: folder not found", hint)
    if family != "imagenet" and (root / "suite.json").is_file():
        hint = MINI_HINT
    audit = _Audit(root)
    if family == "vtab":
        known = vtab.vtab_tasks(root)
        reports = {name: _check_vtab_task(root, known[name], audit)
                   for name in _select(root, known, tasks, known is not vtab.VTAB_TASKS, hint)}
    elif family == "fewshot":
        known = fewshot.fewshot_sets(root)
        reports = {name: _check_fewshot_set(root, known[name], audit)
                   for name in _select(root, known, tasks, known is not fewshot.FEWSHOT_SETS, hint)}
    else:
        reports = {name: _check_variant(root, name, audit)
                   for name in _select(root, imagenet.VARIANTS, tasks, False, hint)}
    if decode:
        audit.decode()
    if audit.problems:
        raise DataError(audit.problems, hint)
    suite = root / "suite.json"
    return {"family": family, "root": str(root.resolve()),
            "suite_sha256": sha256(suite) if family != "imagenet" and suite.is_file() else None,
            "decoded": decode, "images": len(audit.images), "tasks": reports}


def _select(root: Path, known: dict, tasks: Sequence[str] | None, declared: bool, hint: str) -> list[str]:
    """The names to check: those asked (all known), else all declared, else those whose folder exists."""
    if tasks:
        unknown = [t for t in tasks if t not in known]
        if unknown:
            raise DataError(f"unknown task(s) {unknown} for {root}; known: {list(known)}")
        return list(dict.fromkeys(tasks))
    if declared:
        return list(known)
    found = [name for name in known if (root / name).is_dir()]
    if not found:
        raise DataError(f"{root}: none of the expected folders is there; expected some of {list(known)}", hint)
    return found


class _Audit:
    """Problems found so far, and every distinct image to decode with where it was first listed."""

    def __init__(self, root: Path):
        self.root = root
        self.problems: list[str] = []
        self.images: dict[Path, str] = {}
        self.missing: set[Path] = set()

    def list_file(self, list_file: Path, base: Path, num_classes: int, expected: int | None,
                  warnings: list[str]) -> tuple[list[Entry], dict] | None:
        """Check one list file (paths relative to ``base``); its entries and manifest record, or None if absent."""
        if not list_file.is_file():
            self.problems.append(f"{list_file}: list file not found")
            return None
        entries, malformed = parse_list(list_file)
        self.problems += malformed + label_problems(list_file, entries, num_classes)
        if not entries and not malformed:
            self.problems.append(empty_problem(list_file))
        outside = {e.line for e in escaping(entries, base, self.root)}  # reported, never opened
        self.problems += escape_problems(list_file, [e for e in entries if e.line in outside], base, self.root)
        first: dict[str, Entry] = {}
        for entry in entries:
            seen = first.setdefault(entry.path, entry)
            if seen is not entry:
                if seen.label == entry.label:
                    warnings.append(f"{list_file}:{entry.line}: duplicate of line {seen.line} ({entry.path})")
                else:
                    self.problems.append(f"{list_file}:{entry.line}: {entry.path} has label {entry.label}, "
                                         f"but label {seen.label} at line {seen.line}")
            image = base / entry.path
            if entry.line in outside or image in self.images or image in self.missing:
                continue
            if image.is_file():
                self.images[image] = f"{list_file}:{entry.line}"
            else:
                self.missing.add(image)
                self.problems.append(f"{list_file}:{entry.line}: image not found: {image}")
        if expected is not None and expected not in (len(entries), len(first)):
            self.problems.append(f"{list_file}: {len(entries)} lines, expected {expected}")
        return entries, {"file": str(list_file.relative_to(base)), "sha256": sha256(list_file),
                         "images": len(entries), "classes_seen": len({e.label for e in entries})}

    def overlap(self, test_file: Path, test: list[Entry], train_file: Path, train: list[Entry]) -> None:
        """A problem for each test line whose image is also in the training list."""
        train_lines = {e.path: e.line for e in train}
        self.problems += [f"{test_file}:{e.line}: {e.path} is also in the training list "
                          f"{train_file}:{train_lines[e.path]}" for e in test if e.path in train_lines]

    def decode(self, chunk: int = 256) -> None:
        """Decode every image in full (threads; PIL releases the GIL while decoding)."""
        paths = list(self.images)
        chunks = [paths[i:i + chunk] for i in range(0, len(paths), chunk)]
        with (ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool,
              tqdm(total=len(paths), desc="decoding images", unit="img", disable=not sys.stderr.isatty()) as bar):
            for part, errors in zip(chunks, pool.map(_decode_errors, chunks)):
                for path, error in zip(part, errors):
                    if error:
                        origin = self.images[path]
                        self.problems.append(f"{origin + ': ' if origin else ''}cannot decode {path}: {error}")
                bar.update(len(part))


def _decode_errors(paths: list[Path]) -> list[str | None]:
    return [_decode_error(path) for path in paths]


def _decode_error(path: Path) -> str | None:
    """Why ``path`` does not decode to RGB, or None."""
    try:
        with Image.open(path) as image:
            image.verify()  # structure and checksums (e.g. PNG CRCs), without decoding the pixels
        load_rgb(path)  # decodes every pixel: a truncated JPEG often fails only here
    except Exception as err:  # any decoder failure is a data problem to report
        return f"{type(err).__name__}: {err}"
    return None


def _check_vtab_task(root: Path, task: vtab.VtabTask, audit: _Audit) -> dict:
    folder = root / task.name
    report = {"group": task.group, "num_classes": task.num_classes, "splits": {}, "warnings": []}
    if not folder.is_dir():
        audit.problems.append(f"{folder}: task folder not found")
        return report
    lists = {}
    for split in vtab.SPLITS:
        checked = audit.list_file(folder / f"{split}.txt", folder, task.num_classes, task.sizes[split],
                                  report["warnings"])
        if checked:
            lists[split], report["splits"][split] = checked
    if "test" in lists:
        for split in ("train800", "val200", "train800val200"):
            if split in lists:
                audit.overlap(folder / "test.txt", lists["test"], folder / f"{split}.txt", lists[split])
    if {"train800", "val200", "train800val200"} <= set(lists):
        union = {e.path for e in lists["train800"]} | {e.path for e in lists["val200"]}
        if union != {e.path for e in lists["train800val200"]}:
            report["warnings"].append(f"{folder / 'train800val200.txt'}: not the union of train800.txt and val200.txt")
    return report


def _check_fewshot_set(root: Path, record: fewshot.FewShotSet, audit: _Audit) -> dict:
    folder = root / record.name
    report = {"num_classes": record.num_classes, "shots": list(record.shots), "seeds": list(record.seeds),
              "splits": {}, "warnings": []}
    if not folder.is_dir():
        audit.problems.append(f"{folder}: dataset folder not found")
        return report
    splits = {f"train_shot{k}_seed{s}": ("train", k, s) for k in record.shots for s in record.seeds}
    splits.update(val=("val", None, None), test=("test", None, None))
    lists = {}
    for key, (split, shot, seed) in splits.items():
        expected = shot * record.num_classes if split == "train" else None
        checked = audit.list_file(folder / fewshot.list_name(split, shot, seed), folder, record.num_classes,
                                  expected, report["warnings"])
        if checked:
            lists[key], report["splits"][key] = checked
    if "test" in lists:
        test_file = folder / fewshot.list_name("test")
        for key in lists:
            if key.startswith("train"):
                audit.overlap(test_file, lists["test"], folder / report["splits"][key]["file"], lists[key])
        if "val" in lists and {e.path for e in lists["val"]} & {e.path for e in lists["test"]}:
            report["warnings"].append(f"{folder / fewshot.list_name('val')}: shares images with test_meta.list")
    return report


def _check_variant(root: Path, name: str, audit: _Audit) -> dict:
    samples, synsets, problems, warnings = imagenet.scan_variant(root, name)
    audit.problems += problems
    for path, _ in samples:
        audit.images.setdefault(Path(path), "")
    folder = root / name
    listing = "".join(f"{Path(path).relative_to(folder).as_posix()} {label}\n" for path, label in samples)
    return {"num_classes": len(synsets),
            "synsets": "synsets.txt" if (folder / "synsets.txt").is_file() else "timm imagenet_synsets.txt",
            "splits": {"test": {"images": len(samples), "classes_seen": len({label for _, label in samples}),
                                "listing_sha256": hashlib.sha256(listing.encode()).hexdigest()}},
            "warnings": warnings}
