"""Batches for the engine: a split decoded once and kept in memory when its transform is fixed, else streamed.

VTAB-1K applies no augmentation, so its 1000 training images are decoded once (ViT-B/16 at 224: 0.6 GB as
float32) and every epoch only shuffles indices; test sets and augmented few-shot training are streamed by a
``DataLoader``. Either way the order of an epoch depends only on the ``torch.Generator`` passed in, which
is what makes a resumed run bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm


def random_translate(x: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image of ``x`` (N, C, H, W) by up to ``shift`` pixels in each direction, zero-filled."""
    if shift <= 0:
        return x
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (shift, shift, shift, shift))
    offsets = torch.randint(0, 2 * shift + 1, (n, 2), generator=generator).tolist()
    return torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets)])


class Batches:
    """Mini-batches ``(images, labels)`` of one split on ``device``.

    ``fixed_transform``: the dataset's transform is deterministic, so the split may be cached in memory when
    it takes at most ``cache_gb``. ``translate`` (pixels) is a light augmentation applied to cached batches
    (pre-training the mini backbone). ``epoch(generator)`` yields one pass, shuffled with ``generator``
    when ``shuffle``.
    """

    def __init__(self, dataset: Dataset, batch_size: int, *, shuffle: bool, fixed_transform: bool,
                 device: torch.device, cache_gb: float = 2.0, num_workers: int = 0, translate: int = 0,
                 quiet: bool = True, desc: str = "decoding"):
        self.dataset, self.batch_size, self.shuffle = dataset, batch_size, shuffle
        self.device, self.num_workers, self.translate = device, num_workers, translate
        self.num_classes = getattr(dataset, "num_classes", None)
        self.images: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None
        if fixed_transform and self._bytes() <= cache_gb * 2**30:
            self.images, self.labels = self._decode_all(quiet, desc)
        elif translate:
            raise ValueError("translate augments cached splits only; raise cache_gb or drop translate")

    def _bytes(self) -> int:
        sample, _ = self.dataset[0]
        return len(self.dataset) * sample.numel() * sample.element_size()

    def _decode_all(self, quiet: bool, desc: str) -> tuple[torch.Tensor, torch.Tensor]:
        loader = DataLoader(self.dataset, batch_size=256, shuffle=False, num_workers=self.num_workers)
        images, labels = [], []
        for x, y in tqdm(loader, desc=desc, disable=quiet, leave=False):
            images.append(x)
            labels.append(torch.as_tensor(y))
        return torch.cat(images).to(self.device), torch.cat(labels).long().to(self.device)

    @property
    def cached(self) -> bool:
        return self.images is not None

    def __len__(self) -> int:
        return math.ceil(len(self.dataset) / self.batch_size)

    def epoch(self, generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass over the split; shuffled by ``generator`` (required when ``shuffle``)."""
        if self.shuffle and generator is None:
            raise ValueError("a shuffled split needs a generator (its seed fixes the order)")
        if self.cached:
            n = len(self.labels)
            order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
            for idx in order.split(self.batch_size):
                idx = idx.to(self.device)
                x = self.images.index_select(0, idx)
                if self.translate:
                    x = random_translate(x, self.translate, generator)
                yield x, self.labels.index_select(0, idx)
            return
        loader = DataLoader(self.dataset, batch_size=self.batch_size, shuffle=self.shuffle, generator=generator,
                            num_workers=self.num_workers, pin_memory=self.device.type == "cuda",
                            persistent_workers=False)
        for x, y in loader:
            yield x.to(self.device, non_blocking=True), torch.as_tensor(y).long().to(self.device, non_blocking=True)


@torch.no_grad()
def predict(model: torch.nn.Module, batches: Batches, *, amp: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted classes and true labels (both (N,), on CPU) of ``model`` in eval mode over ``batches``."""
    model.eval()
    preds, labels = [], []
    for x, y in batches.epoch():
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
            preds.append(model(x).argmax(-1).cpu())
        labels.append(y.cpu())
    return torch.cat(preds), torch.cat(labels)


def accuracy(model: torch.nn.Module, batches: Batches, *, amp: bool = False) -> float:
    """Top-1 accuracy (0..1) of ``model`` on ``batches``."""
    preds, labels = predict(model, batches, amp=amp)
    return (preds == labels).double().mean().item()
