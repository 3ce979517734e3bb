"""The experiment plan behind the Snakefile: which jobs the configuration asks for, where their files go
(:mod:`glora.layout`), and the stage arguments of each. The rules in ``workflow/rules/`` only wire these together
(docs/architecture.md §4). Importing this module loads no torch: the plan reads the method records
(:mod:`glora.methods.record`) and the task tables (:mod:`glora.data.tasks`) only.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from glora.config import EXPERIMENTS, backbone_of, merge, method_settings, parse_override, train_settings
from glora.data.tasks import experiment_tasks
from glora.errors import ConfigError
from glora.layout import Layout
from glora.methods.registry import get_method
from glora.run import Run

RUN = re.compile(r"(?:shot(?P<shot>\d+)_)?seed(?P<seed>\d+)(?:_lr(?P<lr>\d[0-9.e+-]*))?")
#: the run wildcard's constraint: RUN without its named groups
RUN_PATTERN = re.sub(r"\?P<\w+>", "?:", RUN.pattern)

__all__ = ["EXPERIMENTS", "RUN", "RUN_PATTERN", "Job", "backbone_of", "jobs", "targets"]


@dataclass(frozen=True)
class Job:
    """One (experiment, variant, task, run) cell of the plan: where its files go; :meth:`as_run` is the run a
    stage makes of it."""

    exp: str
    variant: str
    task: str
    run: str

    def path(self, config: Mapping, stage: str, name: str = "") -> str:
        return Layout.of(config).cell(self.exp, stage, self.variant, self.task, self.run, name)

    def as_run(self, config: Mapping) -> Run:
        """The run this cell stands for (method and GLoRA size of the variant, seed and shots of the run name)."""
        method, size = method_of(config, self.variant)
        match = RUN.fullmatch(self.run)
        if match is None:
            raise ConfigError(f"run {self.run!r} is not seed<N>, shot<K>_seed<N> or either with _lr<rate>")
        family = EXPERIMENTS[self.exp][0]
        return Run(method, self.task, int(match["seed"]), size, family,
                   int(match["shot"]) if family == "fewshot" else None)


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


def jobs(config: Mapping) -> list[Job]:
    """Every (experiment, variant, task, run) the enabled experiments ask for."""
    out = []
    exps = config["experiments"]
    for exp, key in (("vtab", "vtab"), ("swin", "swin")):
        spec = exps[key]
        if spec["enabled"]:
            out += [Job(exp, v, t, f"seed{s}") for v in variants(config, spec["methods"])
                    for t in experiment_tasks(config, key) for s in spec["seeds"]]
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
    return [Job(job.exp, job.variant, job.task, f"{job.run}_lr{lr:g}")
            for lr in lr_grid(config, job.exp, job.variant)]


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
    layout = Layout.of(config)
    out = [job.path(config, "evaluate") for job in jobs(config)] + diagnostic_targets(config)
    out += [layout.llm("evaluate", *row.split("/")) for row in llm_rows(config)]
    if config["efficiency"]["enabled"]:
        out.append(layout.efficiency_table)
    return out


def targets(config: Mapping) -> list[str]:
    """What ``rule all`` asks for: the paper's tables (made from :func:`result_targets`) and their comparison
    with the paper or the golden values."""
    layout = Layout.of(config)
    return [layout.tables, layout.figures, f"{layout.compare}/deltas.csv"]


def stage_args(config: Mapping, exp: str, variant: str, task: str, run: str) -> str:
    """The run arguments shared by train, search and export for one job."""
    args = Job(exp, variant, task, run).as_run(config).cli_args()
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


def prepare_input(config: Mapping, target: str) -> list[str]:
    """What a check of ``target`` waits for: the prepare job's report, unless there is none and the files are
    already where the loaders look (laid out by hand): then no download is planned. Once a prepare job has
    written its report the answer stays the report, so a later run sees the same inputs and plans nothing."""
    from glora.data.prepare import laid_out

    report = Layout.of(config).prepared(target)
    if config["suite"] != "paper" or (not Path(report).exists() and laid_out(config, target)):
        return []
    return [report]


def checkpoint_of(config: Mapping, backbone: str) -> str:
    """The checkpoint of ``backbone`` in the experiments that use it (rule check_checkpoint)."""
    return next(c for exp in EXPERIMENTS for b, c in [backbone_of(config, exp)] if b == backbone)
