"""The experiment plan behind the Snakefile: which jobs the configuration asks for, where their files go, and
the stage arguments of each. The rules in ``workflow/rules/`` only wire these together (DESIGN §1).

Layout under ``results/<name>/`` (``name`` defaults to the suite; ``<exp>`` is vtab, fewshot, dg or swin;
``<variant>`` is a method name or, for GLoRA, a size name from ``glora.sizes``; ``<run>`` is ``seed<N>`` or
``shot<K>_seed<N>``)::

    data/                         the mini suite (mini) or data-check manifests (paper)
    data/prepared/<target>.json   paper: what `python -m glora prepare` fetched and verified (vtab, fewshot,
                                  imagenet, checkpoint_<backbone>)
    pretrain/<backbone>.safetensors            mini only: the pre-trained tiny backbones
    <exp>/train/<variant>/<task>/<run>/        weights.safetensors, metrics.json, epochs.csv
    <exp>/search/<variant>/<task>/<run>/       best.json, candidates.csv            (GLoRA, NOAH)
    <exp>/select/<variant>/<task>/<run>.json   the supernet lr chosen on val200 (train.supernet_lr_grid;
                                               the grid's runs are <run>_lr<rate>, the chosen one is copied
                                               to <run>)
    <exp>/standalone/<variant>/<task>/<run>.json   the searched subnet trained alone (diagnostics)
    <exp>/retrain/<variant>/<task>/<run>/      the searched subnet trained again    (NOAH)
    <exp>/export/<variant>/<task>/<run>/       model.safetensors, card.json
    <exp>/evaluate/<variant>/<task>/<run>.json test (and domain-generalisation) accuracy
    efficiency/table4_efficiency.csv           Table 4 (and its settings, .json)
    tables/                                    the paper's tables (CSV, Markdown, LaTeX)
    figures/                                   the paper's figures (PNG 300 dpi, PDF)
    compare/                                   deltas.csv, summary.md: ours minus the paper (or golden)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from glora.errors import ConfigError
from glora.methods.registry import get_method

#: experiment -> (data family, config key of its settings)
EXPERIMENTS = {"vtab": ("vtab", "vtab"), "fewshot": ("fewshot", "fewshot"), "dg": ("fewshot", "domain_generalization"),
               "swin": ("vtab", "swin")}
#: stages whose output per run is one JSON file, not a folder
FILE_STAGES = ("evaluate", "select", "standalone")
RUN = re.compile(r"(?:shot(?P<shot>\d+)_)?seed(?P<seed>\d+)(?:_lr(?P<lr>\d[0-9.e+-]*))?")
#: the run wildcard's constraint: RUN without its named groups
RUN_PATTERN = re.sub(r"\?P<\w+>", "?:", RUN.pattern)


@dataclass(frozen=True)
class Job:
    """One (experiment, variant, task, run) cell of the plan."""

    exp: str
    variant: str
    task: str
    run: str

    def path(self, config: Mapping, stage: str, name: str = "") -> str:
        base = f"{results(config)}/{self.exp}/{stage}/{self.variant}/{self.task}/{self.run}"
        return f"{base}.json" if stage in FILE_STAGES else f"{base}/{name}"


def results(config: Mapping) -> str:
    return f"results/{config.get('name') or config['suite']}"


def variants(config: Mapping, methods: list[str]) -> list[str]:
    """Method names, with ``glora`` expanded into every configured size (each its own supernet); a size name
    (e.g. ``glora_0.86M``) stands for that size alone."""
    sizes = [s["name"] for s in config["glora"]["sizes"]]
    out = []
    for method in methods:
        if method in sizes:
            out.append(method)
            continue
        get_method(method)  # an unknown method is a config error, named here
        out += sizes if method == "glora" else [method]
    return out


def method_of(config: Mapping, variant: str) -> tuple[str, str | None]:
    """``(method, size)`` of a variant: a GLoRA size name gives ("glora", size)."""
    sizes = [s["name"] for s in config["glora"]["sizes"]]
    if variant in sizes:
        return "glora", variant
    get_method(variant)
    return variant, None


def searched(config: Mapping, variant: str) -> bool:
    """Whether the variant's supernet is searched (GLoRA, NOAH)."""
    return get_method(method_of(config, variant)[0]).search_based


def retrained(config: Mapping, variant: str) -> bool:
    """Whether the variant's searched subnet is trained again from the backbone (NOAH)."""
    return get_method(method_of(config, variant)[0]).retrain


def merged_from_supernet(config: Mapping, variant: str) -> bool:
    """Whether the exported model is merged from the trained supernet (GLoRA): its evaluation can check the
    merge against the supernet."""
    return searched(config, variant) and not retrained(config, variant)


def vtab_tasks(config: Mapping, key: str) -> list[str]:
    """The tasks of a VTAB experiment: its list, else the suite's (the mini suite's or the paper's 19)."""
    tasks = config["experiments"][key].get("tasks")
    if tasks:
        return list(tasks)
    if config["suite"] == "mini":
        from glora.data.mini_tasks import TASKS

        return list(TASKS)
    from glora.data.vtab import VTAB_TASKS

    return list(VTAB_TASKS)


def jobs(config: Mapping) -> list[Job]:
    """Every (experiment, variant, task, run) the enabled experiments ask for."""
    out = []
    exps = config["experiments"]
    for exp, key in (("vtab", "vtab"), ("swin", "swin")):
        spec = exps[key]
        if spec["enabled"]:
            out += [Job(exp, v, t, f"seed{s}") for v in variants(config, spec["methods"])
                    for t in vtab_tasks(config, key) for s in spec["seeds"]]
    spec = exps["fewshot"]
    if spec["enabled"]:
        out += [Job("fewshot", v, d, f"shot{k}_seed{s}") for v in variants(config, spec["methods"])
                for d in spec["datasets"] for k in spec["shots"] for s in spec["seeds"]]
    spec = exps["domain_generalization"]
    if spec["enabled"]:
        out += [Job("dg", v, spec["source"], f"shot{spec['shot']}_seed{s}")
                for v in variants(config, spec["methods"]) for s in spec["seeds"]]
    return out


def train_priority(config: Mapping, variant: str) -> int:
    """Snakemake priority of a train job: supernets first (they take 5x a fixed model's epochs and everything of
    their run waits for them), then the fixed models; the short jobs fill the gaps."""
    return 2 if searched(config, variant) else 1


def lr_grid(config: Mapping, exp: str, variant: str) -> list[float]:
    """The supernet learning rates chosen among on val200 for a VTAB experiment's GLoRA variant
    (``train.supernet_lr_grid``); empty when the rate is fixed (few-shot, domain generalisation, other methods)."""
    if exp not in ("vtab", "swin") or method_of(config, variant)[0] != "glora":
        return []
    return list(config["train"]["supernet_lr_grid"])


def lr_candidates(config: Mapping, job: Job) -> list[Job]:
    """The grid's runs of ``job`` (``seed0`` -> ``seed0_lr0.001``, ...), in grid order."""
    return [Job(job.exp, job.variant, job.task, f"{job.run}_lr{lr:g}") for lr in lr_grid(config, job.exp, job.variant)]


def grid_variants(config: Mapping) -> list[str]:
    """Variants whose supernet learning rate is chosen on val200 (a VTAB experiment's GLoRA sizes)."""
    return sorted({j.variant for j in jobs(config) if lr_grid(config, j.exp, j.variant)})


def lr_override(task: str, run: str) -> list[str]:
    """``--set`` values that give a grid run (``..._lr<rate>``) its rate: the task's Table 5 entry."""
    match = RUN.fullmatch(run)
    return [f"train.lr_per_task.{task}={match['lr']}"] if match and match["lr"] else []


def diagnostic_targets(config: Mapping) -> list[str]:
    """The weight-sharing diagnostic of every VTAB GLoRA run (``diagnostics.weight_sharing``)."""
    if not config["diagnostics"]["weight_sharing"]:
        return []
    return [job.path(config, "standalone") for job in jobs(config)
            if job.exp == "vtab" and method_of(config, job.variant)[0] == "glora"]


def llm_rows(config: Mapping) -> list[str]:
    """Table 2's rows of the run as ``<model>/<method>_<data>`` (tuned) and ``<model>/base`` (untouched)."""
    spec = config["experiments"]["llm"]
    if not spec["enabled"]:
        return []
    rows = [f"{r['model']}/{r['method']}_{r['data']}" for r in spec["runs"]] + [f"{m}/base" for m in spec["base"]]
    unknown = sorted({r.split("/")[0] for r in rows} - set(spec["models"]))
    missing_data = sorted({r["data"] for r in spec["runs"]} - set(spec["instructions"]))
    if unknown or missing_data:
        raise ConfigError(f"experiments.llm: models {unknown} / instruction sets {missing_data} are not declared "
                          "under experiments.llm.models / experiments.llm.instructions")
    return rows


def result_targets(config: Mapping) -> list[str]:
    """The evaluation result of every job, Table 2's LLM evaluations and Table 4's measurement when enabled."""
    out = [job.path(config, "evaluate") for job in jobs(config)] + diagnostic_targets(config)
    out += [f"{results(config)}/llm/evaluate/{row}.json" for row in llm_rows(config)]
    if config["efficiency"]["enabled"]:
        out.append(efficiency_table(config))
    return out


def targets(config: Mapping) -> list[str]:
    """What ``rule all`` asks for: the paper's tables (made from :func:`result_targets`) and their comparison
    with the paper or the golden values."""
    return [f"{results(config)}/tables", f"{results(config)}/figures", f"{results(config)}/compare/deltas.csv"]


def efficiency_table(config: Mapping) -> str:
    """Where ``python -m glora efficiency`` writes Table 4's rows."""
    return f"{results(config)}/efficiency/table4_efficiency.csv"


def backbone_of(config: Mapping, exp: str) -> tuple[str, str]:
    """``(backbone, checkpoint)`` an experiment runs on."""
    if exp == "swin":
        spec = config["experiments"]["swin"]
        return spec["backbone"], spec["checkpoint"]
    return config["backbone"], config["paths"]["checkpoint"]


def stage_args(config: Mapping, exp: str, variant: str, task: str, run: str) -> str:
    """The run arguments shared by train, search and export for one job."""
    method, size = method_of(config, variant)
    match = RUN.fullmatch(run)
    if match is None:
        raise ConfigError(f"run {run!r} is not seed<N>, shot<K>_seed<N> or either with _lr<rate>")
    family = EXPERIMENTS[exp][0]
    args = ["--method", method, "--task", task, "--seed", match["seed"]]
    if size:
        args += ["--size", size]
    if family == "fewshot":
        args += ["--family", "fewshot", "--shot", match["shot"]]
    args += [f"--set {text}" for text in lr_override(task, run)]
    return " ".join([*args, backbone_args(config, exp)]).strip()


def backbone_args(config: Mapping, exp: str) -> str:
    """``--set`` flags that point the stages at the experiment's backbone (Swin-B for Table 6)."""
    backbone, checkpoint = backbone_of(config, exp)
    if (backbone, checkpoint) == (config["backbone"], config["paths"]["checkpoint"]):
        return ""
    return f"--set backbone={backbone} --set paths.checkpoint={checkpoint}"


def train_params(config: Mapping, exp: str, variant: str, task: str, run: str = "seed0",
                 retrain: bool = False) -> dict:
    """What determines a train (or NOAH retrain) job's outputs besides its wildcards (Snakemake reruns it when
    this changes)."""
    import copy

    from glora.config import merge, method_settings, parse_override, train_settings

    for text in lr_override(task, run):  # a grid run: as the stage sees it with its --set
        config = merge(copy.deepcopy(dict(config)), parse_override(text))
    method, size = method_of(config, variant)
    supernet = searched(config, variant) and not retrain
    return {"settings": train_settings(config, method, task, supernet), "method": method_settings(config, method, task),
            "backbone": backbone_of(config, exp), **size_params(config, variant)}


def size_params(config: Mapping, variant: str) -> dict:
    """The GLoRA size (ranks, budget) of a variant; empty for other methods."""
    sizes = {s["name"]: s for s in config["glora"]["sizes"]}
    return {"size": sizes[variant]} if variant in sizes else {}


def eval_targets(config: Mapping, exp: str) -> str:
    """``--target`` flags of the evaluation: the ImageNet variants for the domain-generalisation runs."""
    if exp != "dg":
        return ""
    return " ".join(f"--target {t}" for t in config["experiments"]["domain_generalization"]["targets"])


def prepared_report(config: Mapping, target: str) -> str:
    """Where the prepare job of ``target`` (vtab, fewshot, imagenet, checkpoint_<backbone>) writes its report."""
    return f"{results(config)}/data/prepared/{target}.json"


def prepare_input(config: Mapping, target: str) -> list[str]:
    """What a check of ``target`` waits for: the prepare job's report, unless there is none and the files are
    already where the loaders look (laid out by hand): then no download is planned. Once a prepare job has
    written its report the answer stays the report, so a later run sees the same inputs and plans nothing."""
    from pathlib import Path

    from glora.data.prepare import laid_out

    report = prepared_report(config, target)
    if config["suite"] != "paper" or (not Path(report).exists() and laid_out(config, target)):
        return []
    return [report]


def pretrained(config: Mapping) -> list[str]:
    """Mini suite: the checkpoints the pipeline pre-trains itself (one per backbone in use)."""
    if config["suite"] != "mini":
        return []
    needed = {backbone_of(config, exp) for exp in {j.exp for j in jobs(config)}}
    return sorted(checkpoint for _, checkpoint in needed)


def checkpoint_backbone(config: Mapping, checkpoint: str) -> str:
    """The backbone whose pre-trained weights ``checkpoint`` is (inverse of :func:`backbone_of`)."""
    for exp in EXPERIMENTS:
        backbone, path = backbone_of(config, exp)
        if path == checkpoint:
            return backbone
    raise ValueError(f"no experiment uses checkpoint {checkpoint!r}")
