"""The domain-generalisation targets (ImageNet-V2, -Sketch, -A, -R) from their public releases.

Each release archive (``imagenet.variants`` in the sources file) is unpacked through its ``unpack`` mapping
into ``<root>/<variant>/`` as :mod:`glora.data.imagenet` reads it (V2: class-index folders; the others: wnid
folders, labelled with timm's ImageNet-1k class order, the mapping the loader already uses). Each variant is
staged, scanned like ``data check`` does (folder names, class coverage, no empty class) and moved into place;
a variant already complete is kept.
"""

from __future__ import annotations

from pathlib import Path

from glora.data import imagenet
from glora.data.prepare.fetch import discard, fetch
from glora.data.prepare.sources import PrepareError, Registry, Sources
from glora.data.prepare.stage import staged
from glora.data.prepare.unpack import unpack


def complete(root: Path, variant: str) -> bool:
    samples, _, problems, _ = imagenet.scan_variant(root, variant)
    return bool(samples) and not problems


def prepare(root: str | Path, variants: list[str], sources: Sources, registry: Registry, downloads: Path, *,
            keep_downloads: bool = False, quiet: bool = False) -> dict:
    """Lay out ``variants`` under ``root``: a report; a :class:`PrepareError` lists the ones that failed."""
    root = Path(root)
    unknown = [v for v in variants if v not in imagenet.VARIANTS]
    if unknown:
        raise PrepareError(f"unknown ImageNet variant(s) {unknown}; known: {list(imagenet.VARIANTS)}")
    report = {"family": "imagenet", "root": str(root), "kept": [], "prepared": [], "artefacts": [], "warnings": []}
    errors = []
    for variant in variants:
        if complete(root, variant):
            report["kept"].append(variant)
            continue
        try:
            archives = [(a, downloads / a.file) for a in sources.imagenet_archives(variant)]
            report["artefacts"] += [fetch(a, path, registry, sources, quiet=quiet) for a, path in archives]
            with staged(root / variant) as stage:
                for artefact, path in archives:
                    unpack(path, stage, artefact.unpack, quiet=quiet)
                samples, _, problems, warnings = imagenet.scan_variant(stage.parent, variant)
                if problems or not samples:
                    raise PrepareError("the unpacked release does not have the expected layout:\n  "
                                       + "\n  ".join(problems or [f"{stage}: no images"]))
                report["warnings"] += [w.replace(str(stage.parent), str(root)) for w in warnings]
            if not keep_downloads:
                for _, path in archives:
                    discard(path)
            report["prepared"].append(variant)
        except PrepareError as err:
            errors.append(f"{variant}: {err}")
    if errors:
        raise PrepareError(f"{len(errors)} of {len(variants)} ImageNet variants could not be prepared:\n"
                           + "\n".join(errors))
    return report
