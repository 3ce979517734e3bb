"""Instruction tuning of an adapted causal LM (Table 2; appendix A): the GLoRA supernet or the LoRA baseline.

AdamW at lr 2e-5, cosine annealing over all optimizer steps, an effective batch of 32 examples reached by
gradient accumulation of micro-batches; LoRA trains 3 epochs, the GLoRA supernet 15 (the same 1:5 ratio as
the vision experiments' 100:500). The loss is the causal-LM cross-entropy on response tokens only, averaged
over all response tokens of the effective batch (so accumulation gives the same gradient as one big batch).
The supernet samples one path per layer uniformly for every micro-batch (docs/architecture.md §2), fixed during
that micro-batch's forward and backward, so gradient checkpointing recomputes the same path.

Every random stream is derived from (seed, epoch, step[, micro-batch]): example order, LoRA's dropout and
GLoRA's paths. A resume checkpoint (trainable tensors, optimizer, scheduler, rows) every ``checkpoint_every``
optimizer steps therefore lets a killed run continue mid-epoch to the same final weights.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from glora.atomic import save_torch
from glora.errors import ConfigError, DataError
from glora.fit import NonFiniteLoss
from glora.llm.data import IGNORE_INDEX, Example, collate
from glora.seeding import derive_seed, fingerprint_of, seed_everything

log = logging.getLogger(__name__)

EPOCH_FIELDS = ["epoch", "steps", "lr", "train_loss", "tokens"]  # times go to the log (glora.provenance)
STEP_FIELDS = ["step", "epoch", "lr", "loss", "tokens", "grad_norm"]


def lm_loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed next-token cross-entropy: logits (B, T, V) predict labels (B, T) shifted by one; -100 is ignored."""
    return F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                           ignore_index=IGNORE_INDEX, reduction="sum")


def glora_path_sampler(model: nn.Module) -> Callable[[torch.Generator], None]:
    """Fix a uniformly sampled path in every GLoRA layer (a new one per call, from ``generator``)."""
    from glora.methods.glora.model import glora_layers

    layers = list(glora_layers(model).values())

    def sample(generator: torch.Generator) -> None:
        for layer in layers:
            layer.set_choice(layer.sample_choice(generator))

    return sample


def _trainable(model: nn.Module) -> dict[str, nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def fit_lm(model: nn.Module, examples: Sequence[Example], settings: Mapping, *, epochs: int, pad_id: int,
           device: torch.device, checkpoint: Path, fingerprint: str,
           before_micro: Callable[[torch.Generator], None] | None = None, quiet: bool = True,
           desc: str = "llm-train") -> dict:
    """Train the parameters of ``model`` that require grad on ``examples``; returns epoch and step rows.

    ``settings``: llm.train (lr, warmup_ratio, weight_decay, max_grad_norm, batch_size, micro_batch_size, amp,
    checkpoint_every, log_every, seed). ``before_micro(generator)`` runs before every micro-batch (GLoRA:
    :func:`glora_path_sampler`). Raises :class:`glora.fit.NonFiniteLoss` on a NaN/inf loss.
    """
    from transformers import get_cosine_schedule_with_warmup

    params = list(_trainable(model).values())
    if not params:
        raise ValueError("the model has no trainable parameters; adapt it first (glora.llm.model.adapt)")
    batch, micro, seed = settings["batch_size"], settings["micro_batch_size"], settings["seed"]
    steps_per_epoch = math.ceil(len(examples) / batch)
    total = epochs * steps_per_epoch
    optimizer = torch.optim.AdamW(params, lr=settings["lr"], weight_decay=settings["weight_decay"])
    scheduler = get_cosine_schedule_with_warmup(optimizer, round(settings["warmup_ratio"] * total), total)
    amp = settings["amp"] and device.type == "cuda"
    state = _load_resume(checkpoint, fingerprint, model, optimizer, scheduler)
    done, epoch_rows, step_rows = state["step"], state["epoch_rows"], state["step_rows"]
    seconds, partial = state["seconds"], state["partial"]
    model.train()
    bar = tqdm(total=total, initial=done, desc=desc, unit="step", disable=quiet)
    began = time.perf_counter()
    for epoch in range(done // steps_per_epoch, epochs):
        order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(derive_seed(seed, epoch, 1)))
        for step in range(done - epoch * steps_per_epoch, steps_per_epoch):
            chosen = [examples[i] for i in order[step * batch:(step + 1) * batch].tolist()]
            tokens = sum(e.trained_tokens for e in chosen)
            seed_everything(derive_seed(seed, epoch, step, 0))  # dropout
            loss_sum = 0.0
            for m in range(0, len(chosen), micro):
                if before_micro is not None:
                    before_micro(torch.Generator().manual_seed(derive_seed(seed, epoch, step, m + 1)))
                b = {k: v.to(device) for k, v in collate(chosen[m:m + micro], pad_id).items()}
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
                loss = lm_loss_sum(logits, b["labels"])
                if not torch.isfinite(loss):
                    kept = f"the resume checkpoint {checkpoint}" if checkpoint.is_file() else "no checkpoint yet"
                    raise NonFiniteLoss(f"{desc}: loss is {loss.item()} at epoch {epoch + 1} step {step + 1}; kept "
                                        f"{kept}; lower the learning rate or check the data")
                (loss / tokens).backward()
                loss_sum += loss.item()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, settings["max_grad_norm"]).item()
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            done += 1
            partial["loss_sum"] += loss_sum
            partial["tokens"] += tokens
            step_rows.append({"step": done, "epoch": epoch + 1, "lr": lr, "loss": loss_sum / tokens, "tokens": tokens,
                              "grad_norm": grad_norm})
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / tokens:.4f}", epoch=epoch + 1)
            if done % settings["log_every"] == 0:
                log.info("%s step %d/%d epoch %d lr %.3g loss %.4f", desc, done, total, epoch + 1, lr,
                         loss_sum / tokens)
            if done % steps_per_epoch == 0:
                seconds += time.perf_counter() - began
                began = time.perf_counter()
                epoch_rows.append({"epoch": epoch + 1, "steps": done, "lr": lr,
                                   "train_loss": partial["loss_sum"] / partial["tokens"], "tokens": partial["tokens"]})
                log.info("%s epoch %d done after %.1f s", desc, epoch + 1, seconds)
                partial = {"loss_sum": 0.0, "tokens": 0}
            if done % settings["checkpoint_every"] == 0 and done < total:
                save_torch(checkpoint, {
                    "fingerprint": fingerprint, "step": done, "epoch_rows": epoch_rows, "step_rows": step_rows,
                    "partial": partial, "seconds": seconds + time.perf_counter() - began,
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "trainable": {n: p.detach().cpu() for n, p in _trainable(model).items()}})
    bar.close()
    model.eval()
    return {"epoch_rows": epoch_rows, "step_rows": step_rows, "steps": done, "resumed_from_step": state["step"],
            "steps_per_epoch": steps_per_epoch, "seconds": seconds}


def _load_resume(path: Path, fingerprint: str, model: nn.Module, optimizer, scheduler) -> dict:
    fresh = {"step": 0, "epoch_rows": [], "step_rows": [], "seconds": 0.0, "partial": {"loss_sum": 0.0, "tokens": 0}}
    if not path.is_file():
        return fresh
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - a file cut short by a disk failure: start afresh
        log.warning("ignoring unreadable resume checkpoint %s (%s)", path, err)
        return fresh
    if state.get("fingerprint") != fingerprint:
        log.warning("resume checkpoint %s belongs to other settings; starting afresh", path)
        return fresh
    with torch.no_grad():
        for name, p in _trainable(model).items():
            p.copy_(state["trainable"][name])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    log.info("resuming %s after optimizer step %d", path, state["step"])
    return {k: state[k] for k in fresh}


# ---------------------------------------------------------------------------------------------
# The llm-train stage
# ---------------------------------------------------------------------------------------------

def detect_format(path: str | Path) -> str:
    """``alpaca`` or ``sharegpt`` from the first record's keys."""
    from glora.llm.data import read_records

    records = read_records(path)
    first = records[0] if records else None
    if isinstance(first, dict) and "conversations" in first:
        return "sharegpt"
    if isinstance(first, dict) and "instruction" in first:
        return "alpaca"
    raise DataError(f"{path}: cannot tell the format from record 0 (Alpaca records have 'instruction', ShareGPT "
                    "records 'conversations'); pass the format explicitly")


def run_llm_train(config: Mapping, method: str, model_dir: str | Path, data: str | Path, out: str | Path, *,
                  fmt: str = "auto", device: str = "auto", quiet: bool = True) -> dict:
    """``python -m glora llm-train``: adapt the local model ``model_dir`` with ``method`` (glora: the supernet;
    lora: the baseline) and tune it on the instruction file ``data``; writes ``out``/``weights.safetensors``
    (the adapters, with the method, its settings and targets in the metadata), ``metrics.json``, ``epochs.csv``
    and ``steps.csv``; ``resume.pt`` lives beside them while the run is under way."""
    from glora.atomic import write_csv, write_json
    from glora.devices import resolve_device
    from glora.llm.config import from_config
    from glora.llm.data import load_examples
    from glora.llm.model import adapt, adapter_params, load_causal_lm, load_tokenizer
    from glora.methods.registry import get_method
    from glora.provenance import provenance

    began = time.perf_counter()
    settings = from_config(config)
    train = settings["train"]
    if method not in train["epochs"]:
        raise ConfigError(f"unknown LLM method {method!r}; llm.train.epochs has {sorted(train['epochs'])}")
    out = Path(out)
    fmt = detect_format(data) if fmt == "auto" else fmt
    tokenizer = load_tokenizer(model_dir)
    examples, data_summary = load_examples(data, fmt, tokenizer, settings["max_length"])
    device = resolve_device(device)
    seed_everything(derive_seed(train["seed"], -1))  # the adapters' random init
    model = load_causal_lm(model_dir, settings["dtype"], device)
    names = adapt(model, method, settings)
    if train["gradient_checkpointing"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    epochs = int(train["epochs"][method])
    method_kwargs = settings["methods"][method]
    fingerprint = fingerprint_of(method, str(model_dir), str(data), fmt, settings["max_length"], settings["dtype"],
                                 settings["target_modules"], method_kwargs, train, epochs)
    result = fit_lm(model, examples, train, epochs=epochs, pad_id=tokenizer.pad_token_id, device=device,
                    checkpoint=out / "resume.pt", fingerprint=fingerprint,
                    before_micro=glora_path_sampler(model) if method == "glora" else None, quiet=quiet,
                    desc=f"llm-train {method}")
    out.mkdir(parents=True, exist_ok=True)
    meta = {"llm_method": method, "method_kwargs": json.dumps(method_kwargs),
            "target_modules": json.dumps(settings["target_modules"]), "model_dir": str(model_dir),
            "dtype": settings["dtype"]}
    get_method(method).save(model, out / "weights.safetensors", metadata=meta)
    write_csv(out / "epochs.csv", result["epoch_rows"], EPOCH_FIELDS)
    write_csv(out / "steps.csv", result["step_rows"], STEP_FIELDS)
    last = result["step_rows"][-1]
    metrics = {
        "stage": "llm-train", "method": method, "model_dir": str(model_dir), "data": data_summary,
        "settings": {"train": train, "epochs": epochs, "max_length": settings["max_length"],
                     "dtype": settings["dtype"], "target_modules": settings["target_modules"],
                     "method": method_kwargs},
        "adapted_layers": len(names), "trainable_params": adapter_params(model),
        "optimizer_steps": result["steps"], "steps_per_epoch": result["steps_per_epoch"],
        "gradient_accumulation": train["batch_size"] // train["micro_batch_size"],
        "first_step_loss": result["step_rows"][0]["loss"], "final_step_loss": last["loss"],
        "final_train_loss": result["epoch_rows"][-1]["train_loss"],
        "provenance": provenance(config, seed=train["seed"], device=device),
    }
    write_json(out / "metrics.json", metrics)
    (out / "resume.pt").unlink(missing_ok=True)
    log.info("llm-train %s: %d optimizer steps, %.1f s training (resumed after step %d), %.1f s in all", method,
             result["steps"], result["seconds"], result["resumed_from_step"], time.perf_counter() - began)
    return metrics
