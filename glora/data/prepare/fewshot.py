"""The few-shot sets of Figures 2/6 and the 16-shot ImageNet source of Table 3, in the loader's layout.

Per dataset (``<root>/<dataset>/``, :mod:`glora.data.fewshot`): NOAH's split lists (``fewshot.splits`` in the
sources file, pinned by sha256) go to ``annotations/``; the images come from the dataset's public archives,
unpacked through their ``unpack`` mapping so that every listed path exists, or, for ``imagenet``, are
symbolic links into a local ImageNet-1k (``paths.imagenet_1k``: ``train/<wnid>/*.JPEG`` and ``val/``, flat
or in class folders). A dataset is built in a staging folder, checked like ``data check`` does (without
decoding) and moved into place; a dataset already complete is kept. Datasets that cannot be prepared do
not stop the others: the error at the end names each and what to do.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from glora.data import fewshot
from glora.data.check import check_dataset
from glora.data.lists import DataError, parse_list
from glora.data.prepare.fetch import discard, fetch
from glora.data.prepare.sources import PrepareError, Registry, Sources
from glora.data.prepare.stage import staged
from glora.data.prepare.unpack import unpack

SPLITS_FOLDER = "few-shot-splits"  # under paths.downloads


def list_files(dataset: str) -> list[str]:
    """The list files the loader and ``data check`` read for ``dataset``, relative to the root."""
    return [f"{dataset}/{name}" for name in fewshot.FEWSHOT_SETS[dataset].lists()]


def complete(root: Path, dataset: str) -> bool:
    """Whether ``root/dataset`` passes ``data check`` without decoding."""
    if not (root / dataset).is_dir():
        return False
    try:
        check_dataset("fewshot", root, tasks=[dataset], decode=False)
    except DataError:
        return False
    return True


def prepare(root: str | Path, datasets: list[str], sources: Sources, registry: Registry, downloads: Path, *,
            imagenet_1k: str | Path | None = None, keep_downloads: bool = False, quiet: bool = False) -> dict:
    """Lay out ``datasets`` under ``root``: a report; a :class:`PrepareError` lists the ones that failed."""
    root = Path(root)
    unknown = [d for d in datasets if d not in fewshot.FEWSHOT_SETS]
    if unknown:
        raise PrepareError(f"unknown few-shot dataset(s) {unknown}; known: {list(fewshot.FEWSHOT_SETS)}")
    report = {"family": "fewshot", "root": str(root), "kept": [], "prepared": [], "artefacts": []}
    errors = []
    # the public datasets first, those needing a local copy last: a missing copy does not hold up the downloads
    for dataset in sorted(datasets, key=lambda d: "local" in sources.fewshot_dataset(d)):
        if complete(root, dataset):
            report["kept"].append(dataset)
            continue
        try:
            report["artefacts"] += _prepare_one(root, dataset, sources, registry, downloads, imagenet_1k,
                                                keep_downloads, quiet)
            report["prepared"].append(dataset)
        except PrepareError as err:
            errors.append(f"{dataset}: {err}")
    if errors:
        raise PrepareError(f"{len(errors)} of {len(datasets)} few-shot datasets could not be prepared "
                           f"(the others are in {root}):\n" + "\n".join(errors))
    return report


def _prepare_one(root: Path, dataset: str, sources: Sources, registry: Registry, downloads: Path,
                 imagenet_1k: str | Path | None, keep_downloads: bool, quiet: bool) -> list[dict]:
    spec = sources.fewshot_dataset(dataset)
    local = None
    if "local" in spec:
        local = Path(imagenet_1k) if imagenet_1k is not None else None
        if local is None or not (local / "train").is_dir() or not (local / "val").is_dir():
            raise PrepareError(f"the images come from a local ImageNet-1k, and {local}/train/ or {local}/val/ is "
                               f"not there (config paths.imagenet_1k). {spec['manual']}")
    splits = sources.split_files(dataset)
    wanted = set(list_files(dataset))
    missing = sorted(wanted - {a.file for a in splits})
    if missing:
        raise PrepareError(f"{sources.path}: fewshot.splits.files lacks {missing}")
    records = [fetch(a, downloads / SPLITS_FOLDER / a.file, registry, sources, quiet=quiet)
               for a in splits if a.file in wanted]
    archives = [(a, downloads / a.file) for a in sources.fewshot_archives(dataset)]
    records += [fetch(a, path, registry, sources, quiet=quiet) for a, path in archives]
    with staged(root / dataset) as stage:
        for name in sorted(wanted):
            target = stage / Path(name).relative_to(dataset)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(downloads / SPLITS_FOLDER / name, target)
        for artefact, path in archives:
            unpack(path, stage, artefact.unpack, quiet=quiet)
        if local is not None:
            _link_imagenet(stage, local)
        try:
            check_dataset("fewshot", stage.parent, tasks=[dataset], decode=False)
        except DataError as err:
            raise PrepareError(f"the prepared folder does not pass the check:\n{err}") from None
    if not keep_downloads:
        for _, path in archives:
            discard(path)
    return records


def _link_imagenet(stage: Path, imagenet_1k: Path) -> None:
    """Hard links ``stage/<listed path>`` -> the local ImageNet-1k image, for every image the lists name (copies
    where ImageNet-1k is on another file system). Not symbolic links: the loaders refuse list entries that resolve
    outside the data root, and a hard link is a file of the data root that costs no space.

    Training paths (``<wnid>/<file>.JPEG``) are under ``train/``; validation images (``ILSVRC2012_val_*``) are
    found under ``val/``, flat or in class folders.
    """
    train, val = imagenet_1k.resolve() / "train", imagenet_1k.resolve() / "val"
    val_index = {}
    for entry in os.scandir(val):
        if entry.is_dir():
            val_index.update({e.name: Path(e.path) for e in os.scandir(entry.path)})
        else:
            val_index[entry.name] = Path(entry.path)
    missing = []
    for list_file in sorted((stage / "annotations").iterdir()):
        entries, _ = parse_list(list_file)
        for entry in entries:
            link = stage / entry.path
            if link.is_file():
                continue
            source = val_index.get(entry.path) if "/" not in entry.path else train / entry.path
            if source is None or not source.is_file():
                missing.append(f"{list_file.name}:{entry.line}: {entry.path}")
                continue
            link.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, link)
            except OSError as err:
                if err.errno != errno.EXDEV:
                    raise
                shutil.copyfile(source, link)
    if missing:
        raise PrepareError(f"{len(missing)} listed images are not in {imagenet_1k} (train/ or val/), e.g. "
                           f"{missing[:5]}; is it the complete ILSVRC-2012 release?")
