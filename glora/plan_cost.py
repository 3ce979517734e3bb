"""``python -m glora plan``: what a configuration costs, before anyone spends it.

For any configuration: the jobs of every rule (the same plan the Snakefile builds, :mod:`glora.workflow`, with
each cell's run from :meth:`glora.workflow.Job.as_run` and its files from :mod:`glora.layout`) and
the estimated device-hours of each experiment and in total, from a calibration table of measured throughputs
(``config/calibration.csv``): images per second of a training step, a search candidate or an inference pass per
(backbone, kind, device). Every row says where and how it was measured; rows of a GPU come only from
``make gpu-check`` on that GPU. Nothing is extrapolated from an unmeasured device: with only CPU rows the plan
says CPU-hours of that CPU.

A job's device-seconds are the images it processes over the images/s of its kind:

- ``train``: epochs x its training images (VTAB-1K: train800 for a supernet, train800val200 for a fixed
  model; few-shot: shots x classes) at the method's training step (a supernet: the ``glora`` row, random paths),
  plus the periodic val200 evaluations at the inference rate;
- ``search``: at most population x (iterations + 1) candidates x the validation images, at the ``search`` rate
  (merge + evaluation of a candidate, per image);
- ``retrain`` (NOAH), ``standalone`` (diagnostics): training as above at the subnet's schedule;
- ``evaluate``: the test images (and the domain-generalisation targets, and once more for the supernet check)
  at the inference rate; ``efficiency``: its timed and warm-up passes;
- ``export``, ``select_lr`` and the data, table and figure rules run on the CPU: counted, not estimated.

A method without a row of its own is estimated from the ``lora`` row (a PEFT step; the plan names each proxy).
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from glora.errors import ConfigError

CALIBRATION = Path("config/calibration.csv")
FIELDS = ("backbone", "kind", "device", "dtype", "batch", "images_per_s", "threads", "where", "command")
#: the rows a training step of these methods is estimated from when they have none of their own
PROXY = "lora"
#: rules that run on the CPU in every configuration (no GPU resource): counted only
CPU_RULES = ("export", "select_lr", "tables", "figures", "compare", "llm_mini", "llm_export")


@dataclass
class Calibration:
    """Measured images/s per (backbone, kind, device); ``rows`` keeps each row's provenance."""

    rows: list[dict]

    @classmethod
    def read(cls, path: str | Path = CALIBRATION) -> Calibration:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"calibration table {path} does not exist; it is committed in config/ (measure rows "
                              "with `make gpu-check` on a GPU, or python benchmarks/calibrate.py on this machine)")
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(line for line in f if not line.startswith("#"))]
        for i, r in enumerate(rows, 2):
            missing = [k for k in FIELDS if not r.get(k)]
            if missing:
                raise ConfigError(f"{path}: row {i} lacks {missing}; every row names where it was measured")
            try:
                r["images_per_s"] = float(r["images_per_s"])
            except ValueError:
                raise ConfigError(f"{path}: row {i}: images_per_s {r['images_per_s']!r} is not a number") from None
        return cls(rows)

    def devices(self) -> list[str]:
        """Devices with rows, GPUs first (what an estimate should use when it can)."""
        seen = list(dict.fromkeys(r["device"] for r in self.rows))
        return sorted(seen, key=lambda d: d.startswith("cpu"))

    def find(self, backbone: str, kind: str, device: str) -> dict | None:
        return next((r for r in self.rows if (r["backbone"], r["kind"], r["device"]) == (backbone, kind, device)),
                    None)


@dataclass
class Estimate:
    """Jobs and device-seconds per rule and per experiment, with what could not be estimated and why."""

    jobs: Counter = field(default_factory=Counter)
    seconds: defaultdict = field(default_factory=lambda: defaultdict(float))  # (rule, experiment) -> s
    missing: set = field(default_factory=set)
    proxies: set = field(default_factory=set)
    used: dict = field(default_factory=dict)  # (backbone, kind) -> row

    def add(self, rule: str, experiment: str, seconds: float | None, count: int = 1) -> None:
        self.jobs[rule] += count
        if seconds is not None:
            self.seconds[rule, experiment] += seconds * count


def split_sizes(config: Mapping, family: str, task: str) -> dict[str, int | None]:
    """Images of the train/val/test splits a run of (family, task) reads; None where unknown without the data."""
    if family == "vtab":
        root = Path(config["paths"]["vtab"])
        if config["suite"] == "mini" and not (root / "suite.json").is_file():
            from glora.data.mini import TEST, TRAIN, VAL

            return {"search_train": TRAIN, "final_train": TRAIN + VAL, "val": VAL, "test": TEST}
        from glora.data.vtab import get_task

        sizes = get_task(root, task).sizes  # the paper's table (glora.data.tasks), or a suite.json's
        return {"search_train": sizes["train800"], "final_train": sizes["train800val200"], "val": sizes["val200"],
                "test": sizes["test"]}
    root = Path(config["paths"]["fewshot"])
    if config["suite"] == "mini" and not (root / "suite.json").is_file():
        from glora.data.mini import FEWSHOT_TEST, FEWSHOT_VAL
        from glora.data.mini_fewshot import FEWSHOT

        classes = FEWSHOT[task].num_classes if task in FEWSHOT else None
        return {"classes": classes, "val": classes and classes * FEWSHOT_VAL,
                "test": classes and classes * FEWSHOT_TEST}
    from glora.data.fewshot import get_set

    classes = get_set(root, task).num_classes
    sizes = {"classes": classes, "val": None, "test": None}
    for split, name in (("val", "val_meta.list"), ("test", "test_meta.list")):  # NOAH's lists, when laid out
        path = root / task / name
        if path.is_file():
            with open(path) as f:
                sizes[split] = sum(1 for line in f if line.strip())
    if task == "imagenet" and sizes["test"] is None:
        sizes["test"] = 50_000  # ILSVRC-2012's validation set: the source's test split (glora.data.fewshot)
    return sizes


def train_images(sizes: Mapping, role: str, shot: int | None) -> int | None:
    """Images of one training epoch: VTAB-1K's ``role`` split; few-shot: shots x classes."""
    if shot is None:
        return sizes[role]
    return sizes["classes"] and shot * sizes["classes"]


def estimate(config: Mapping, calibration: Calibration, device: str | None = None) -> tuple[Estimate, str]:
    """Jobs per rule and device-seconds per (rule, experiment) of ``config`` on ``device`` (default: the first
    device of the calibration table with rows, GPUs first)."""
    from glora.config import backbone_of, train_settings
    from glora.data.imagenet import VARIANTS
    from glora.layout import Layout
    from glora.workflow import (
        diagnostic_targets,
        jobs,
        llm_rows,
        lr_candidates,
        merged_from_supernet,
        retrained,
        searched,
    )

    devices = calibration.devices()
    if not devices:
        raise ConfigError("the calibration table has no rows")
    device = device or devices[0]
    if device not in devices:
        raise ConfigError(f"no calibration rows for device {device!r}; measured: {devices}")
    est = Estimate()

    def rate(backbone: str, kind: str, proxy: str | None = None) -> float | None:
        row = calibration.find(backbone, kind, device)
        if row is None and proxy:
            row = calibration.find(backbone, proxy, device)
            if row is not None:
                est.proxies.add(f"{backbone} from its {proxy} row (no row of their own: {kind})")
        if row is None:
            est.missing.add(f"{kind} on {backbone}")
            return None
        est.used[backbone, row["kind"]] = row
        return row["images_per_s"]

    def seconds(*terms: tuple[float | None, float | None]) -> float | None:
        """Sum of images / rate; None when any term is unknown."""
        if any(images is None or r is None for images, r in terms):
            return None
        return sum(images / r for images, r in terms)

    def times(n: int, images: int | None) -> int | None:
        return None if images is None else n * images

    search = config["search"]
    candidates = search["population"] + search["iterations"] * max(search["population"],
                                                                    search["mutations"] + search["crossovers"])
    eval_every = config["train"]["eval_every"]
    dg_targets = config["experiments"]["domain_generalization"]["targets"]
    target_images = sum(VARIANTS[t].size for t in dg_targets if t in VARIANTS)
    layout = Layout.of(config)
    planned = jobs(config)
    for job in planned:
        run = job.as_run(config)
        family, method = run.family, run.method
        backbone = backbone_of(config, job.exp)[0]
        is_searched, is_retrained = searched(config, job.variant), retrained(config, job.variant)
        sizes = split_sizes(config, family, job.task)
        infer = rate(backbone, "inference")
        runs = len(lr_candidates(config, job)) or 1  # a learning-rate grid trains and searches every rate

        settings = train_settings(config, method, job.task, supernet=is_searched)
        role = "search_train" if is_searched else "final_train"
        train_s = seconds((times(settings["epochs"], train_images(sizes, role, run.shot)),
                           rate(backbone, method, PROXY)))
        if train_s is not None and (is_searched or family == "fewshot"):  # validated every eval_every epochs
            val_s = seconds(((settings["epochs"] // eval_every + 1) * (sizes["val"] or 0), infer))
            if not sizes["val"]:
                est.missing.add(f"the validation passes of {family} training (val sizes unknown without the "
                                f"data: {job.task})")
            train_s += val_s or 0.0
        est.add("train", job.exp, train_s, runs)
        if is_searched:
            est.add("search", job.exp, seconds((candidates * sizes["val"] if sizes["val"] else None,
                                                rate(backbone, "search"))), runs)
            if runs > 1:
                est.add("select_lr", job.exp, None)
        if is_retrained:
            fixed = train_settings(config, method, job.task, supernet=False)
            est.add("retrain", job.exp, seconds((times(fixed["epochs"], train_images(sizes, "final_train", run.shot)),
                                                 rate(backbone, f"{method}_subnet", PROXY))))
        est.add("export", job.exp, None)
        checks = 2 if config["evaluate"]["supernet_check"] and merged_from_supernet(config, job.variant) else 1
        test = sizes["test"] and sizes["test"] * checks + (target_images if job.exp == "dg" else 0)
        if not test:
            est.missing.add(f"the evaluation of {family} runs (test sizes unknown without the data: {job.task})")
        est.add("evaluate", job.exp, seconds((test or None, infer)))
    for path in diagnostic_targets(config):  # <root>/<exp>/standalone/<variant>/<task>/<run>.json
        exp, _, _, task, _ = Path(path).relative_to(layout.root).parts
        fixed = train_settings(config, "glora", "", supernet=False)
        backbone = backbone_of(config, exp)[0]
        sizes = split_sizes(config, "vtab", task)
        est.add("standalone", exp, seconds((fixed["epochs"] * sizes["search_train"], rate(backbone, "glora_subnet",
                                                                                              "glora")),
                                           (sizes["val"] + sizes["test"], rate(backbone, "inference"))))
    if config["efficiency"]["enabled"]:
        eff = config["efficiency"]
        backbone = eff.get("backbone") or config["backbone"]
        from glora.methods.registry import names

        models = len(eff.get("methods") or names()) + 2  # the backbone and its control copy
        images = models * sum(eff["batch_sizes"]) * (eff["warmup"] + eff["passes"])
        est.add("efficiency", "efficiency", seconds((images, rate(backbone, "inference"))))
    # the backbones the run pre-trains itself (rule pretrain): those whose checkpoint is the run's pretrain/ file
    in_use = {backbone_of(config, exp) for exp in {j.exp for j in planned}}
    for backbone in sorted(b for b, checkpoint in in_use if checkpoint == layout.pretrained(b)):
        pre = config["pretrain"]
        upstream = 142 * config["data"]["upstream_per_class"]
        est.add("pretrain", "pretrain", seconds((pre["epochs"] * upstream, rate(backbone, "full"))))
    for rule in ("tables", "figures", "compare"):  # rule all's targets, on the CPU
        est.add(rule, "paper", None)
    rows = llm_rows(config)
    if rows:
        spec = config["experiments"]["llm"]
        counts = {"llm_train": len(spec["runs"]), "llm_search": sum(r["method"] == "glora" for r in spec["runs"]),
                  "llm_export": len(spec["runs"]), "llm_evaluate": len(rows),
                  "llm_mini": int(config["suite"] == "mini")}
        for rule, n in counts.items():
            if n:
                est.add(rule, "llm", None, n)
        est.missing.add("Table 2's language models (no calibration kind for them yet)")
    return est, device


def report(config: Mapping, calibration: Calibration, device: str | None = None) -> dict:
    """The plan as a dict: jobs and hours per rule, hours per experiment and in total, and their provenance."""
    est, device = estimate(config, calibration, device)
    hours_rule: dict[str, float] = defaultdict(float)
    hours_exp: dict[str, float] = defaultdict(float)
    for (rule, exp), s in est.seconds.items():
        hours_rule[rule] += s / 3600
        hours_exp[exp] += s / 3600
    unit = "GPU-hours" if not device.startswith("cpu") else "CPU-hours"
    return {"suite": config["suite"], "device": device, "unit": unit,
            "jobs": dict(sorted(est.jobs.items(), key=lambda kv: -kv[1])), "total_jobs": sum(est.jobs.values()),
            "hours_per_rule": {r: round(h, 2) for r, h in sorted(hours_rule.items(), key=lambda kv: -kv[1])},
            "hours_per_experiment": {e: round(h, 2) for e, h in sorted(hours_exp.items(), key=lambda kv: -kv[1])},
            "total_hours": round(sum(hours_rule.values()), 1),
            "not_estimated": grouped(est.missing), "proxies": grouped(est.proxies),
            "cpu_rules": [r for r in CPU_RULES if r in est.jobs],
            "calibration": [{k: r[k] for k in FIELDS} for r in est.used.values()]}


def describe(config: Mapping, calibration: str | Path = CALIBRATION, device: str | None = None, *,
             as_json: bool = False) -> str:
    """``python -m glora plan``: the plan of ``config`` from the calibration table at ``calibration``, as text
    (:func:`render`) or JSON."""
    plan = report(config, Calibration.read(calibration), device)
    return json.dumps(plan, indent=1) if as_json else render(plan)


def grouped(notes: set[str]) -> list[str]:
    """Notes that differ only in their last word (a task, a method) as one note listing those words."""
    groups: dict[str, list[str]] = defaultdict(list)
    for note in sorted(notes):
        head, _, last = note.rpartition(": ") if note.endswith(")") and ": " in note else (note, "", "")
        groups[head].append(last.rstrip(")"))
    return [f"{head}: {', '.join(v)})" if v != [""] else head for head, v in groups.items()]


def render(plan: dict) -> str:
    """The plan as text for the terminal."""
    unit = plan["unit"]
    lines = [f"plan of the {plan['suite']} configuration on {plan['device']} ({unit}; calibration rows used below)",
             "", f"{'rule':14} {'jobs':>6} {unit:>12}"]
    for rule, n in plan["jobs"].items():
        h = plan["hours_per_rule"].get(rule)
        what = f"{h:12.1f}" if h is not None else f"{'cpu' if rule in plan['cpu_rules'] else '-':>12}"
        lines.append(f"{rule:14} {n:6d} {what}")
    lines.append(f"{'total':14} {plan['total_jobs']:6d} {plan['total_hours']:12.1f}")
    lines += ["", "per experiment: " + ", ".join(f"{e} {h:.1f}" for e, h in plan["hours_per_experiment"].items())]
    if plan["not_estimated"]:
        lines.append("not estimated (no row, or sizes unknown without the data): " + "; ".join(plan["not_estimated"]))
    if plan["proxies"]:
        lines.append("proxies: " + "; ".join(plan["proxies"]))
    lines += ["", "calibration rows used:"]
    for r in plan["calibration"]:
        lines.append(f"  {r['backbone']} {r['kind']} {r['device']} {r['dtype']} batch {r['batch']}: "
                     f"{r['images_per_s']:.3g} images/s ({r['where']})")
    if unit == "CPU-hours":
        lines.append("no GPU row measured yet: these are hours of the CPU above; `make gpu-check` on a GPU prints "
                     "the rows to add to config/calibration.csv")
    return "\n".join(lines)
