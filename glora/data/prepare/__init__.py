"""``python -m glora prepare``: fetch, verify, unpack and lay out the paper's inputs (the DAG's first stage).

One module per family, each producing exactly the layout its loader and ``data check`` read:

==============  =====================================================  ==========================================
target          what                                                   where (configuration)
==============  =====================================================  ==========================================
``vtab``        VTAB-1K, the 19 tasks (:mod:`.vtab`)                    ``paths.vtab``
``fewshot``     five fine-grained sets + ImageNet 16-shot (:mod:`.fewshot`)  ``paths.fewshot`` (+ ``paths.imagenet_1k``)
``imagenet``    ImageNet-V2/-Sketch/-A/-R (:mod:`.imagenet`)             ``paths.imagenet``
``checkpoint``  ViT-B/16 IN-21k, Swin-B IN-22k (:mod:`.checkpoints`)      ``paths.checkpoint``, ``experiments.swin``
``llama``       checks the local LLaMA folders (:mod:`.llama`)           ``experiments.llm.models``
==============  =====================================================  ==========================================

Sources (mirrors, checksums, licences, manual steps) are configuration: ``paths.sources`` (default
``config/sources.yaml``, :mod:`.sources`). Downloads go to ``paths.downloads`` with the registry of their
checksums (:class:`.sources.Registry`); fetching is :mod:`.fetch`, unpacking :mod:`.unpack`. Preparing what is
already complete downloads nothing. Each target prepares only what the configuration's enabled experiments
use (:func:`needed`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from glora.config import EXPERIMENTS, backbone_of
from glora.data.prepare.sources import PrepareError, Registry, load_sources
from glora.data.tasks import FEWSHOT_SETS, SPLITS, experiment_tasks
from glora.errors import ConfigError

FAMILIES = ("vtab", "fewshot", "imagenet")
TARGETS = (*FAMILIES, "checkpoint", "llama", "all")


def needed(config: Mapping, family: str) -> list[str]:
    """The tasks (vtab), datasets (fewshot) or variants (imagenet) the enabled experiments use."""
    exps = config["experiments"]
    dg = exps["domain_generalization"]
    if family == "vtab":
        tasks = [t for key in ("vtab", "swin") if exps[key]["enabled"] for t in experiment_tasks(config, key)]
        return list(dict.fromkeys(tasks))
    if family == "fewshot":
        names = list(exps["fewshot"]["datasets"]) if exps["fewshot"]["enabled"] else []
        return list(dict.fromkeys(names + ([dg["source"]] if dg["enabled"] else [])))
    if family == "imagenet":
        return list(dg["targets"]) if dg["enabled"] else []
    raise ConfigError(f"unknown data family {family!r}; known: {list(FAMILIES)}")


def checkpoints_in_use(config: Mapping) -> dict[str, str]:
    """``{backbone: checkpoint path}`` of the enabled experiments."""
    exps = config["experiments"]
    keys = {"vtab": "vtab", "swin": "swin", "fewshot": "fewshot", "dg": "domain_generalization"}
    return dict(backbone_of(config, exp) for exp in EXPERIMENTS if exps[keys[exp]]["enabled"])


def laid_out(config: Mapping, target: str) -> bool:
    """Whether ``target``'s files are already where the loaders look (by hand, or by an earlier prepare):
    list files, variant folders, the checkpoint file. No download is planned for such a target. (File checks
    only, without torch: the Snakemake plan asks this for every check job.)"""
    paths = config["paths"]
    if target == "vtab":
        root = Path(paths["vtab"])
        return all((root / task / f"{split}.txt").is_file() for task in needed(config, "vtab") for split in SPLITS)
    if target == "fewshot":
        root = Path(paths["fewshot"])
        return all((root / d / name).is_file() for d in needed(config, "fewshot") if d in FEWSHOT_SETS
                   for name in FEWSHOT_SETS[d].lists())
    if target == "imagenet":
        root = Path(paths["imagenet"])
        return all((root / v).is_dir() and any((root / v).iterdir()) for v in needed(config, "imagenet"))
    if target.startswith("checkpoint_"):
        return Path(checkpoints_in_use(config)[target.removeprefix("checkpoint_")]).is_file()
    raise ConfigError(f"unknown prepare target {target!r}")


def prepare(config: Mapping, target: str, *, backbone: str | None = None, keep_downloads: bool = False,
            quiet: bool = False) -> dict:
    """Prepare ``target`` (one of :data:`TARGETS`) as the configuration says; its report."""
    from glora.data.prepare import checkpoints, fewshot, imagenet, llama, vtab

    paths = config["paths"]
    if target == "llama":
        sources = load_sources(paths["sources"]) if Path(paths["sources"]).is_file() else None
        return llama.check(config["experiments"]["llm"]["models"], sources)
    sources = load_sources(paths["sources"])
    downloads = Path(paths["downloads"])
    registry = Registry(downloads)
    common = {"keep_downloads": keep_downloads, "quiet": quiet}
    if target == "vtab":
        return vtab.prepare(paths["vtab"], needed(config, "vtab"), sources, registry, downloads, **common)
    if target == "fewshot":
        return fewshot.prepare(paths["fewshot"], needed(config, "fewshot"), sources, registry, downloads,
                               imagenet_1k=paths["imagenet_1k"], **common)
    if target == "imagenet":
        return imagenet.prepare(paths["imagenet"], needed(config, "imagenet"), sources, registry, downloads, **common)
    if target == "checkpoint":
        in_use = checkpoints_in_use(config)
        if backbone not in in_use:
            raise PrepareError(f"prepare checkpoint --backbone {backbone!r}: the enabled experiments use "
                               f"{sorted(in_use)}")
        return checkpoints.prepare(backbone, in_use[backbone], sources, registry, quiet=quiet)
    if target == "all":
        return prepare_all(config, keep_downloads=keep_downloads, quiet=quiet)
    raise PrepareError(f"unknown prepare target {target!r}; known: {list(TARGETS)}")


def prepare_all(config: Mapping, *, keep_downloads: bool = False, quiet: bool = False) -> dict:
    """Every family and checkpoint the enabled experiments use (and the LLaMA check when Table 2 is on); what
    cannot be prepared does not stop the rest, and the error at the end names each."""
    jobs = [(f, {}) for f in FAMILIES if needed(config, f)]
    jobs += [("checkpoint", {"backbone": b}) for b in checkpoints_in_use(config)]
    if config["experiments"]["llm"]["enabled"]:
        jobs.append(("llama", {}))
    reports, errors = {}, []
    for target, extra in jobs:
        name = f"checkpoint_{extra['backbone']}" if extra else target
        try:
            reports[name] = prepare(config, target, keep_downloads=keep_downloads, quiet=quiet, **extra)
        except PrepareError as err:
            errors.append(f"[{name}] {err}")
    if errors:
        raise PrepareError(f"{len(errors)} of {len(jobs)} targets could not be prepared (the others are done):\n"
                           + "\n".join(errors))
    return reports


__all__ = ["FAMILIES", "TARGETS", "PrepareError", "checkpoints_in_use", "laid_out", "needed", "prepare",
           "prepare_all"]
