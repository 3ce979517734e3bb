"""The training loop for supernets, baselines and the mini backbone's pre-training (appendix A).

AdamW, timm's cosine schedule stepped per epoch with linear warm-up, cross-entropy, optional bf16 autocast.
Every epoch re-seeds its own random streams from (seed, epoch) -- data order, dropout/drop-path, GLoRA's
path sampling -- so an epoch's result depends only on the weights it starts from. A resume checkpoint
(trainable tensors + optimizer state + per-epoch rows) written every ``checkpoint_every`` epochs therefore
lets a killed run continue to bit-identical final weights on CPU.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from glora.atomic import save_torch
from glora.data.loading import Batches, accuracy
from glora.errors import GloraError
from glora.seeding import derive_seed, seed_everything

log = logging.getLogger(__name__)

#: epochs.csv's columns; how long each epoch took is volatile and goes to the log (docs/troubleshooting.md)
ROW_FIELDS = ["epoch", "lr", "train_loss", "train_acc", "val_acc"]


class NonFiniteLoss(GloraError, RuntimeError):
    """The loss became NaN or infinite; the message names the epoch and step and the checkpoint kept (exit 3)."""

    exit_code = 3


@dataclass
class Hooks:
    """Method-specific steps of the loop; each gets a seeded generator.

    ``before_train``: at the start of every epoch (GLoRA: sample one path per layer per forward from it);
    ``before_eval``: before each validation pass (GLoRA: fix one random subnet).
    """

    before_train: Callable[[torch.Generator], None] = lambda gen: None
    before_eval: Callable[[torch.Generator], None] = lambda gen: None


@dataclass
class FitResult:
    rows: list[dict]
    resumed_from: int
    seconds: float
    images: int = 0
    extra: dict = field(default_factory=dict)


def _trainable(model: nn.Module) -> dict[str, nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def _load_resume(path: Path, fingerprint: str, model: nn.Module, optimizer) -> tuple[int, list[dict], float]:
    if not path.is_file():
        return 0, [], 0.0
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a checkpoint cut short by a crash of the disk, not by a kill (writes are atomic)
        log.warning("ignoring unreadable resume checkpoint %s (%s); starting from epoch 0", path, err)
        return 0, [], 0.0
    if state.get("fingerprint") != fingerprint:
        log.warning("resume checkpoint %s belongs to other settings; starting from epoch 0", path)
        return 0, [], 0.0
    params = _trainable(model)
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(state["trainable"][name])
    optimizer.load_state_dict(state["optimizer"])
    log.info("resuming %s at epoch %d", path, state["epoch"])
    return state["epoch"], list(state["rows"]), float(state["seconds"])


def fit(model: nn.Module, train: Batches, val: Batches | None, settings: Mapping, *, seed: int,
        checkpoint: Path, fingerprint: str, hooks: Hooks | None = None, amp: bool = False, quiet: bool = True,
        desc: str = "train", mixup: Callable | None = None) -> FitResult:
    """Train the parameters of ``model`` that require grad; returns the per-epoch rows.

    ``settings``: epochs, warmup_epochs, warmup_lr, min_lr, lr, weight_decay, eval_every, checkpoint_every.
    ``mixup`` (timm's ``Mixup``: few-shot training) turns each batch's labels into soft targets, and the loss
    becomes the soft-target cross-entropy (label smoothing included); accuracy is against the hard labels.
    ``checkpoint`` (resume state) is read when it matches ``fingerprint`` and deleted at the end.
    Raises :class:`NonFiniteLoss` on a NaN/inf loss, leaving the last good checkpoint in place.
    """
    from timm.scheduler import CosineLRScheduler

    epochs = settings["epochs"]
    hooks = hooks or Hooks()
    params = list(_trainable(model).values())
    if not params:
        raise ValueError("the model has no trainable parameters; did the method's apply() run?")
    optimizer = torch.optim.AdamW(params, lr=settings["lr"], weight_decay=settings["weight_decay"])
    scheduler = CosineLRScheduler(optimizer, t_initial=epochs, lr_min=settings.get("min_lr", 0.0),
                                  warmup_t=settings.get("warmup_epochs", 0),
                                  warmup_lr_init=settings.get("warmup_lr", 0.0), t_in_epochs=True)
    start, rows, seconds = _load_resume(checkpoint, fingerprint, model, optimizer)
    last_saved, images, process_seconds = start, 0, 0.0
    bar = tqdm(range(start, epochs), desc=desc, disable=quiet, initial=start, total=epochs, unit="epoch")
    for epoch in bar:
        began = time.perf_counter()
        scheduler.step(epoch)
        lr = optimizer.param_groups[0]["lr"]
        seed_everything(derive_seed(seed, epoch, 0))
        order = torch.Generator().manual_seed(derive_seed(seed, epoch, 1))
        hooks.before_train(torch.Generator().manual_seed(derive_seed(seed, epoch, 2)))
        model.train()
        loss_sum, correct, count = 0.0, 0, 0
        for step, (x, y) in enumerate(train.epoch(order)):
            target = y
            if mixup is not None:
                if len(y) % 2:  # timm's batch mixup pairs images: drop one from an odd batch
                    x, y = x[:-1], y[:-1]
                if not len(y):
                    continue
                x, target = mixup(x, y)
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), target)  # soft targets: the soft-target cross-entropy
            if not torch.isfinite(loss):
                kept = f"the last good checkpoint {checkpoint} (epoch {last_saved})" if checkpoint.is_file() else \
                    "no checkpoint (none was written yet)"
                raise NonFiniteLoss(f"{desc}: loss is {loss.item()} at epoch {epoch + 1} step {step + 1}; kept "
                                    f"{kept}; lower the learning rate ({lr:.3g}) or check the data")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(-1) == y).sum().item()
            count += len(y)
        images += count
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": loss_sum / count, "train_acc": correct / count,
               "val_acc": ""}
        if val is not None and ((epoch + 1) % settings.get("eval_every", 1) == 0 or epoch + 1 == epochs):
            hooks.before_eval(torch.Generator().manual_seed(derive_seed(seed, epoch, 3)))
            row["val_acc"] = accuracy(model, val, amp=amp)
        process_seconds += time.perf_counter() - began
        seconds += time.perf_counter() - began
        rows.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val=row["val_acc"] if row["val_acc"] == "" else
                        f"{row['val_acc']:.3f}")
        log.info("%s epoch %d/%d lr %.3g loss %.4f train_acc %.4f val_acc %s (%.1f s)", desc, epoch + 1, epochs, lr,
                 row["train_loss"], row["train_acc"], row["val_acc"], time.perf_counter() - began)
        if (epoch + 1) % settings.get("checkpoint_every", epochs) == 0 and epoch + 1 < epochs:
            last_saved = epoch + 1
            save_torch(checkpoint, {"fingerprint": fingerprint, "epoch": epoch + 1, "rows": rows,
                                    "seconds": seconds, "optimizer": optimizer.state_dict(),
                                    "trainable": {n: p.detach().cpu() for n, p in _trainable(model).items()}})
    log.info("%s: %d epochs in %.1f s%s, %.1f images/s in this process", desc, epochs, seconds,
             f" (resumed at epoch {start})" if start else "", images / process_seconds if process_seconds else 0)
    return FitResult(rows=rows, resumed_from=start, seconds=seconds, images=images,
                     extra={"images_per_s": round(images / process_seconds, 1) if process_seconds else None})
