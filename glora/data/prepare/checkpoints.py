"""The pre-trained backbones: ViT-B/16 ImageNet-21k (``.npz``) and Swin-B ImageNet-22k (``.pth``).

Each is fetched to the path the configuration gives it (``paths.checkpoint``, ``experiments.swin.checkpoint``)
from the mirrors under ``checkpoints.<backbone>`` in the sources file, checked against its sha256 (pinned, or
recorded on the first download) and then loaded into its timm architecture by :func:`glora.models.
create_backbone` (the ``checkpoint`` stage's check): a file that does not load is deleted and the next mirror
is tried. A file already there that loads is kept.
"""

from __future__ import annotations

from pathlib import Path

from glora.data.prepare.fetch import fetch
from glora.data.prepare.sources import Registry, Sources


def load_check(backbone: str, path: Path) -> dict:
    """Load ``path`` into ``backbone``'s architecture; the checkpoint report (a ``ValueError`` if it does not fit)."""
    from glora.models import create_backbone

    return create_backbone(backbone, num_classes=1, checkpoint=path).checkpoint_report


def prepare(backbone: str, path: str | Path, sources: Sources, registry: Registry, *, quiet: bool = False) -> dict:
    path = Path(path)
    artefact = sources.checkpoint(backbone, path.name)
    loaded = {}
    record = fetch(artefact, path, registry, sources, quiet=quiet,
                   verify=lambda p: loaded.update(load_check(backbone, p)))
    return {"family": "checkpoint", "backbone": backbone, "path": str(path), "artefacts": [record],
            "loaded": {k: loaded[k] for k in ("format", "loaded", "skipped_head")}}
