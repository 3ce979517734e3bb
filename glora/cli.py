"""``python -m glora <stage>``: the command line that users and Snakemake rules call.

Each stage parses its arguments and calls one library function; no logic lives here. Exit codes: 0 done; 1 a
bug (with its traceback) or ``compare --strict`` finding cells outside their tolerance or missing; 2 bad input
(:class:`glora.errors.GloraError`, one ``error: ...`` line naming the file/line/key and the fix; also a bad
command line); 3 a NaN/inf loss. ``GLORA_TRACEBACK=1`` also prints the traceback of a ``GloraError``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from glora.errors import ConfigError, GloraError


def _demo(args: argparse.Namespace) -> int:
    from glora.demo import run_demo

    summary = run_demo(args.out, epochs=args.epochs, candidates=args.candidates, budget_m=args.budget_m,
                       seed=args.seed, quiet=args.quiet or not sys.stderr.isatty())
    print(json.dumps(summary, indent=1))
    return 0


def _space(args: argparse.Namespace) -> int:
    import glora
    from glora.models import create_backbone

    model = create_backbone(args.backbone, num_classes=args.num_classes)
    try:
        names = glora.apply_glora(model, ranks=args.ranks)
    except ValueError as err:  # the ranks' checks
        raise ConfigError(f"--ranks: {err}") from err
    space = glora.SearchSpace.from_model(model)
    print(json.dumps({"backbone": args.backbone, "ranks": args.ranks, "layers": len(names),
                      "subnets": str(space.size()), "min_params": space.min_params(),
                      "max_params": space.max_params()}, indent=1))
    return 0


def _data_check(args: argparse.Namespace) -> int:
    from glora.data.check import check_dataset

    manifest = check_dataset(args.family, args.root, tasks=args.task, decode=not args.no_decode)
    text = json.dumps(manifest, indent=1)
    if args.manifest:
        args.manifest.parent.mkdir(parents=True, exist_ok=True)
        args.manifest.write_text(text)
    print(text if not args.manifest else f"ok: {args.root} ({args.family}); manifest written to {args.manifest}")
    return 0


def _data_mini(args: argparse.Namespace) -> int:
    from glora.data.mini import PARTS, generate

    try:
        summary = generate(args.out, seed=args.seed, upstream_per_class=args.upstream_per_class,
                           quiet=args.quiet or not sys.stderr.isatty(), parts=tuple(args.parts or PARTS))
    except ValueError as err:  # the generator checks --out (a foreign folder) with ValueErrors of its own
        raise ConfigError(f"data mini: {err}") from err
    print(json.dumps(summary, indent=1))
    return 0


def _checkpoint(args: argparse.Namespace) -> int:
    from glora.atomic import write_json
    from glora.models import create_backbone

    model = create_backbone(args.backbone, num_classes=1, checkpoint=args.path)
    report = {"backbone": args.backbone, **model.checkpoint_report}
    if args.out:
        write_json(args.out, report)
    print(json.dumps(report, indent=1))
    return 0


def _where(args: argparse.Namespace) -> int:
    from glora.paper.outputs import where

    print(where(_setup(args)))
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from glora.atomic import write_json
    from glora.data.prepare import prepare

    config = _setup(args)
    report = prepare(config, args.what, backbone=args.backbone, keep_downloads=args.keep_downloads,
                     quiet=args.quiet)
    if args.out:
        write_json(args.out, report)
    print(json.dumps(report, indent=1))
    return 0


def _setup(args: argparse.Namespace) -> dict:
    """Logging (to ``--log`` when given), progress-bar switch, and the validated configuration."""
    import logging

    from glora.config import load_config

    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if getattr(args, "log", None):
        args.log.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(args.log))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        handlers=handlers, force=True)
    args.quiet = args.quiet or not sys.stderr.isatty()
    if getattr(args, "threads", None) is not None:
        import torch

        torch.set_num_threads(args.threads)
    return load_config(args.config or [Path("config.yaml")], args.set or ())


def _run(args: argparse.Namespace):
    from glora.experiment import Run
    from glora.methods.registry import get_method

    choices = getattr(args, "choices", None)
    retrained = choices is not None and get_method(args.method).retrain
    if choices is not None and args.func is _train and not retrained:
        raise ConfigError(f"train --choices is for methods retrained after their search (NOAH), not {args.method!r}")
    return Run(method=args.method, task=args.task, seed=args.seed, size=args.size, family=args.family,
               shot=args.shot, choices=str(choices) if retrained else None)


def _pretrain(args: argparse.Namespace) -> int:
    from glora.pretrain import run_pretrain

    config = _setup(args)
    print(json.dumps(run_pretrain(config, args.data, args.out, device=args.device, quiet=args.quiet), indent=1))
    return 0


def _train(args: argparse.Namespace) -> int:
    from glora.train import run_train

    config = _setup(args)
    metrics = run_train(config, _run(args), args.out, device=args.device, quiet=args.quiet)
    print(json.dumps({k: metrics[k] for k in ("method", "size", "task", "seed", "final_train_loss",
                                              "final_val_acc", "trainable_params")}))
    return 0


def _search(args: argparse.Namespace) -> int:
    from glora.search import run_search

    config = _setup(args)
    result = run_search(config, _run(args), args.weights, args.out, budget_m=args.budget, device=args.device,
                        quiet=args.quiet)
    print(json.dumps({k: result[k] for k in ("task", "size", "budget_m", "val_acc", "params", "candidates_scored")}))
    return 0


def _select(args: argparse.Namespace) -> int:
    from glora.select import run_select

    record = run_select(args.candidates, args.train_out, args.search_out, args.out)
    print(json.dumps({k: record[k] for k in ("task", "size", "lr", "val_acc")}))
    return 0


def _standalone(args: argparse.Namespace) -> int:
    from glora.standalone import run_standalone

    config = _setup(args)
    record = run_standalone(config, _run(args), args.supernet, args.choices, args.out, device=args.device,
                            quiet=args.quiet)
    print(json.dumps({k: record[k] for k in ("task", "size", "inherited", "alone", "test_delta")}))
    return 0


def _export(args: argparse.Namespace) -> int:
    from glora.export import run_export

    config = _setup(args)
    card = run_export(config, _run(args), args.weights, args.out, choices=args.choices, device=args.device,
                      quiet=args.quiet)
    print(json.dumps({k: card.get(k) for k in ("run", "adapter_params", "merged", "max_abs_logit_diff")}))
    return 0


def _efficiency(args: argparse.Namespace) -> int:
    from glora.efficiency import run_efficiency

    config = _setup(args)
    for row in run_efficiency(config, args.out, device=args.device, quiet=args.quiet):
        print(json.dumps({k: row[k] for k in row if k not in ("backbone", "device")}))
    return 0


def _plan(args: argparse.Namespace) -> int:
    from glora.plan_cost import Calibration, render, report

    plan = report(_setup(args), Calibration.read(args.calibration), args.on)
    print(json.dumps(plan, indent=1) if args.json else render(plan))
    return 0


def _paper_outputs(args: argparse.Namespace, kind: str) -> int:
    """``tables`` / ``figures``: write the paper's outputs of the run into results/<name>/<kind>."""
    from glora.paper import outputs
    from glora.workflow import results

    config = _setup(args)
    folder = Path(results(config))
    write = outputs.run_tables if kind == "tables" else outputs.run_figures
    for path in write(config, folder, args.out or folder / kind):
        print(path)
    return 0


def _tables(args: argparse.Namespace) -> int:
    return _paper_outputs(args, "tables")


def _figures(args: argparse.Namespace) -> int:
    return _paper_outputs(args, "figures")


def _compare(args: argparse.Namespace) -> int:
    from glora.paper.compare import STATUSES, missing_cells, run_compare, write_golden
    from glora.workflow import results

    config = _setup(args)
    folder = Path(results(config))
    tables = args.tables or folder / "tables"
    if args.write_golden:
        for path in write_golden(tables, args.write_golden):
            print(path)
        return 0
    out = args.out or folder / "compare"
    deltas = run_compare(config, tables, out, strict=args.strict)
    counts = deltas["status"].value_counts().to_dict()
    print(json.dumps({status: counts.get(status, 0) for status in STATUSES}))
    outside, missing = counts.get("outside", 0), counts.get("missing", 0)
    if args.strict and (outside or missing):
        problems = [f"{outside} cell(s) outside their tolerance"] if outside else []
        if missing:
            problems.append(f"{missing} cell(s) of enabled experiments missing ({'; '.join(missing_cells(deltas, 20))})"
                            ": their results were never produced; run the workflow to the end")
        print(f"error: compare --strict: {', '.join(problems)}; see {out / 'summary.md'}", file=sys.stderr)
        return 1
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from glora.evaluate import run_evaluate

    config = _setup(args)
    result = run_evaluate(config, args.model, args.out, targets=args.target, supernet=args.supernet,
                          device=args.device, quiet=args.quiet)
    summary = {"task": result["task"], "method": result["method"], "top1": result["test"]["top1"]}
    if "supernet" in result:
        summary["supernet_top1"] = result["supernet"]["top1"]
    summary.update({t: r["top1"] for t, r in result.get("targets", {}).items()})
    print(json.dumps(summary))
    return 0


def _llm_train(args: argparse.Namespace) -> int:
    from glora.llm.train import run_llm_train

    config = _setup(args)
    metrics = run_llm_train(config, args.method, args.model, args.data, args.out, fmt=args.format,
                            device=args.device, quiet=args.quiet)
    print(json.dumps({k: metrics[k] for k in ("method", "trainable_params", "optimizer_steps", "first_step_loss",
                                              "final_step_loss")}))
    return 0


def _llm_search(args: argparse.Namespace) -> int:
    from glora.llm.search import run_llm_search

    config = _setup(args)
    result = run_llm_search(config, args.model, args.weights, args.eval_data, args.out, device=args.device,
                            quiet=args.quiet)
    print(json.dumps({k: result[k] for k in ("val_score", "val_scores", "params", "candidates_scored")}))
    return 0


def _llm_export(args: argparse.Namespace) -> int:
    from glora.llm.export import run_llm_export

    config = _setup(args)
    card = run_llm_export(config, args.model, args.weights, args.out, choices=args.choices, device=args.device,
                          quiet=args.quiet)
    print(json.dumps({k: card.get(k) for k in ("method", "adapter_params", "dtype", "bias_switches",
                                               "max_abs_logit_diff")}))
    return 0


def _llm_evaluate(args: argparse.Namespace) -> int:
    from glora.llm.evaluate import run_llm_evaluate

    config = _setup(args)
    result = run_llm_evaluate(config, args.model, args.eval_data, args.out, device=args.device, limit=args.limit,
                              quiet=args.quiet)
    print(json.dumps(result["scores"]))
    return 0


def _llm_mini(args: argparse.Namespace) -> int:
    from glora.atomic import atomic_dir
    from glora.llm.mini import build_all

    with atomic_dir(args.out) as tmp:
        paths = build_all(tmp)
    print(json.dumps({k: str(args.out / v.relative_to(tmp)) for k, v in paths.items()}))
    return 0


def _limit(text: str) -> int | float:
    """lm-eval's limit: an int (documents per task) or a float below 1 (a fraction of them)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of documents or a fraction, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return int(value) if value >= 1 and value == int(value) else value


def _int_at_least(least: int):
    """An argparse type: an integer >= ``least``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {least}, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"expected an integer >= {least}, got {value}")
        return value

    return parse


_positive_int, _seed = _int_at_least(1), _int_at_least(0)


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as one ``error: ...`` line (exit 2) instead of the usage block and a line."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message}; see `{self.prog} --help`\n")


def _common(parser: argparse.ArgumentParser, *, device_default: str = "auto") -> None:
    parser.add_argument("--config", type=Path, action="append",
                        help="configuration file, repeatable: later files overlay earlier ones "
                             "(default: config.yaml)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override one setting after the files, e.g. --set backbone=swin_mini (repeatable)")
    parser.add_argument("--device", default=device_default,
                        help="auto, cpu, cuda or cuda:N (default: %(default)s); on a multi-GPU machine without "
                             "SLURM, auto/cuda claim one free GPU through a lock file")
    parser.add_argument("--log", type=Path, help="also write the log to this file")
    parser.add_argument("--threads", type=_positive_int,
                        help="CPU threads for torch, >= 1 (Snakemake passes the rule's threads)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars (also when stderr is not a TTY)")


def _run_args(parser: argparse.ArgumentParser, *, method: bool = True) -> None:
    if method:
        parser.add_argument("--method", required=True, help="a registered method (glora, linear, full, ...)")
    else:
        parser.add_argument("--method", default="glora", help="a search-based method (default: %(default)s)")
    parser.add_argument("--size", help="GLoRA only: a name from config glora.sizes (ranks and budget)")
    parser.add_argument("--task", required=True, help="task (VTAB-1K folder) or few-shot dataset")
    parser.add_argument("--seed", type=_seed, default=0)
    parser.add_argument("--family", default="vtab", choices=["vtab", "fewshot"])
    parser.add_argument("--shot", type=_positive_int, help="few-shot family: shots per class (1, 2, 4, 8, 16)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m glora", description=__doc__.splitlines()[0])
    stages = parser.add_subparsers(dest="stage", required=True, metavar="<stage>")

    demo = stages.add_parser("demo", help="train, search, merge and verify GLoRA on a synthetic task (~1 min, CPU)")
    demo.add_argument("--out", type=Path, default=Path("results/demo"), help="output folder (default: %(default)s)")
    demo.add_argument("--epochs", type=_positive_int, default=15, help="supernet epochs (default: %(default)s)")
    demo.add_argument("--candidates", type=_positive_int, default=16, help="subnets sampled (default: %(default)s)")
    demo.add_argument("--budget-m", type=float, default=0.05, help="cap on adapter parameters, millions")
    demo.add_argument("--seed", type=_seed, default=0)
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=_demo)

    data = stages.add_parser("data", help="check a prepared dataset, or generate the embedded mini suite")
    data_stages = data.add_subparsers(dest="data_stage", required=True, metavar="<action>")
    check = data_stages.add_parser("check", help="validate a VTAB-1K / few-shot / ImageNet(-variant) folder "
                                                 "and write a JSON manifest")
    check.add_argument("--family", required=True, choices=["vtab", "fewshot", "imagenet"])
    check.add_argument("--root", required=True, type=Path, help="the folder that holds the task folders")
    check.add_argument("--task", action="append", help="check only this task (repeatable; default: all found)")
    check.add_argument("--manifest", type=Path, help="write the manifest JSON here (default: print it)")
    check.add_argument("--no-decode", action="store_true", help="skip decoding every image (faster)")
    check.set_defaults(func=_data_check)
    mini = data_stages.add_parser("mini", help="generate the embedded mini suite (upstream set, VTAB-style "
                                               "tasks, few-shot and domain-generalisation sets)")
    mini.add_argument("--out", required=True, type=Path, help="output folder")
    mini.add_argument("--seed", type=_seed, default=0)
    mini.add_argument("--upstream-per-class", type=_positive_int, default=100, help="upstream images per class")
    mini.add_argument("--parts", nargs="+", metavar="PART",
                      help="what to write: upstream (the pre-training set), vtab, fewshot, imagenet_variants "
                           "(default: all)")
    mini.add_argument("--quiet", action="store_true", help="no progress bars")
    mini.set_defaults(func=_data_mini)

    space = stages.add_parser("space", help="size and parameter range of a backbone's GLoRA search space")
    space.add_argument("--backbone", default="vit_base_patch16_224.orig_in21k", help="a name from glora.models")
    space.add_argument("--ranks", type=int, nargs="+", default=[8, 4], help="LoRA ranks (default: 8 4)")
    space.add_argument("--num-classes", type=_positive_int, default=100)
    space.set_defaults(func=_space)
    ckpt = stages.add_parser("checkpoint", help="check that a local checkpoint loads into a backbone (and report it)")
    ckpt.add_argument("--backbone", required=True, help="a name from glora.models.BACKBONES")
    ckpt.add_argument("--path", required=True, type=Path, help="the .npz / .pth / .safetensors file")
    ckpt.add_argument("--out", type=Path, help="write the report (format, tensors loaded, sha256) as JSON here")
    ckpt.set_defaults(func=_checkpoint)

    where = stages.add_parser("where", help="after a run: Table 1, the comparison with the golden tables (or the "
                                            "paper) and where every output is")
    _common(where)
    where.set_defaults(func=_where)

    prep = stages.add_parser("prepare", help="fetch, verify and lay out the paper's data and checkpoints from "
                                             "the mirrors in paths.sources (resumable; no-op when already there)")
    prep.add_argument("what", choices=["vtab", "fewshot", "imagenet", "checkpoint", "llama", "all"],
                      help="a data family, a checkpoint (with --backbone), the LLaMA folders' check, or all of "
                           "what the enabled experiments use")
    prep.add_argument("--backbone", help="checkpoint: a backbone of the enabled experiments")
    prep.add_argument("--keep-downloads", action="store_true",
                      help="keep the archives in paths.downloads after unpacking (default: delete them)")
    prep.add_argument("--out", type=Path, help="also write the JSON report here")
    prep.add_argument("--config", type=Path, action="append",
                      help="configuration file, repeatable (default: config.yaml): paths and experiments")
    prep.add_argument("--set", action="append", metavar="KEY=VALUE",
                      help="override one setting, e.g. --set paths.sources=my-mirrors.yaml (repeatable)")
    prep.add_argument("--log", type=Path, help="also write the log to this file")
    prep.add_argument("--quiet", action="store_true", help="no progress bars (also when stderr is not a TTY)")
    prep.set_defaults(func=_prepare)

    pretrain = stages.add_parser("pretrain", help="mini suite: pre-train the tiny backbone on the upstream set")
    pretrain.add_argument("--data", required=True, type=Path, help="a generated mini suite (python -m glora data mini)")
    pretrain.add_argument("--out", required=True, type=Path, help="the checkpoint to write (.safetensors)")
    _common(pretrain)
    pretrain.set_defaults(func=_pretrain)

    train = stages.add_parser("train", help="train a method on a task: GLoRA's supernet, or a baseline")
    _run_args(train)
    train.add_argument("--out", required=True, type=Path,
                       help="folder for weights.safetensors, metrics.json, epochs.csv (resume.pt while running)")
    train.add_argument("--choices", type=Path, help="NOAH: retrain this searched subnet (the search's best.json) "
                                                    "from the backbone on the final training split")
    _common(train)
    train.set_defaults(func=_train)

    search = stages.add_parser("search", help="evolutionary search of a supernet (GLoRA, NOAH) on val200 "
                                              "(appendix B)")
    _run_args(search, method=False)
    search.add_argument("--weights", required=True, type=Path, help="the supernet (train's weights.safetensors)")
    search.add_argument("--budget", type=float, help="cap on adapter parameters in millions, head excluded "
                        "(default: the GLoRA size's budget_m, or methods.<method>.budget_m)")
    search.add_argument("--out", required=True, type=Path, help="folder for candidates.csv and best.json")
    _common(search)
    search.set_defaults(func=_search)

    select = stages.add_parser("select", help="keep the supernet learning rate whose searched subnet scores best on "
                                              "val200 (train.supernet_lr_grid; Table 5)")
    select.add_argument("--candidates", required=True, type=Path, nargs="+",
                        help="the search's best.json of every rate (grid order: ties go to the first)")
    select.add_argument("--train-out", required=True, type=Path, help="folder to copy the chosen supernet into")
    select.add_argument("--search-out", required=True, type=Path, help="folder to copy the chosen search into")
    select.add_argument("--out", required=True, type=Path, help="the JSON record to write (every rate's scores)")
    select.set_defaults(func=_select)

    standalone = stages.add_parser("standalone", help="diagnostic: GLoRA's searched subnet trained alone vs. with "
                                                      "the supernet's weights (val200 and test top-1)")
    _run_args(standalone, method=False)
    standalone.add_argument("--supernet", required=True, type=Path, help="train's weights.safetensors "
                                                                         "(metrics.json beside it)")
    standalone.add_argument("--choices", required=True, type=Path, help="the search's best.json")
    standalone.add_argument("--out", required=True, type=Path, help="the JSON result to write")
    _common(standalone)
    standalone.set_defaults(func=_standalone)

    eff = stages.add_parser("efficiency", help="Table 4: extra parameters, FLOPs and throughput of every method")
    eff.add_argument("--out", required=True, type=Path, help="the CSV to write (settings go to the .json beside it)")
    _common(eff)
    eff.set_defaults(func=_efficiency)

    plan = stages.add_parser("plan", help="per-rule job counts and estimated device-hours of a configuration, from "
                                          "the measured calibration table (config/calibration.csv)")
    plan.add_argument("--calibration", type=Path, default=Path("config/calibration.csv"),
                      help="measured images/s per backbone, kind and device (default: %(default)s)")
    plan.add_argument("--on", metavar="DEVICE", help="estimate for this device of the table (default: a GPU when "
                                                     "it has one, else its CPU)")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    _common(plan)
    plan.set_defaults(func=_plan)

    tables = stages.add_parser("tables", help="the paper's tables from the run's results (CSV, Markdown, LaTeX)")
    tables.add_argument("--out", type=Path, help="folder (default: results/<name>/tables)")
    _common(tables)
    tables.set_defaults(func=_tables)

    figures = stages.add_parser("figures", help="the paper's figures from the run's results (PNG 300 dpi, PDF)")
    figures.add_argument("--out", type=Path, help="folder (default: results/<name>/figures)")
    _common(figures)
    figures.set_defaults(func=_figures)

    compare = stages.add_parser("compare", help="our tables minus the paper's (or the golden ones), per cell")
    compare.add_argument("--tables", type=Path, help="folder of our tables (default: results/<name>/tables)")
    compare.add_argument("--out", type=Path, help="folder for deltas.csv and summary.md (default: "
                                                  "results/<name>/compare)")
    compare.add_argument("--strict", action="store_true", help="exit 1 when a cell is outside its tolerance or a "
                         "cell of an enabled experiment is missing (listed)")
    compare.add_argument("--write-golden", type=Path, metavar="FOLDER",
                         help="instead: copy the tables into FOLDER as golden values (to commit)")
    _common(compare)
    compare.set_defaults(func=_compare)

    export = stages.add_parser("export", help="re-parameterise a trained run into a plain timm model")
    _run_args(export)
    export.add_argument("--weights", required=True, type=Path, help="train's weights.safetensors")
    export.add_argument("--choices", type=Path, help="search-based methods: the search's best.json")
    export.add_argument("--out", required=True, type=Path, help="folder for model.safetensors and card.json")
    _common(export, device_default="cpu")
    export.set_defaults(func=_export)

    evaluate = stages.add_parser("evaluate", help="test accuracy of an exported model (+ domain-generalisation "
                                                  "targets)")
    evaluate.add_argument("--model", required=True, type=Path, help="export's model.safetensors (card.json beside)")
    evaluate.add_argument("--target", action="append", default=[],
                          help="also evaluate on this ImageNet variant (imagenet_v2, imagenet_sketch, imagenet_a, "
                               "imagenet_r); repeatable")
    evaluate.add_argument("--supernet", type=Path, help="also score the adapted model (train's weights) under the "
                                                        "card's choices on the same images")
    evaluate.add_argument("--out", required=True, type=Path, help="the JSON result to write")
    _common(evaluate)
    evaluate.set_defaults(func=_evaluate)

    llm_eval_help = ("folder of the four benchmarks (arc_challenge/, hellaswag/, mmlu/, truthfulqa/; layout in "
                     "glora.llm.tasks)")
    llm_train = stages.add_parser("llm-train", help="Table 2: tune a local causal LM on Alpaca/ShareGPT with a "
                                                    "GLoRA supernet or LoRA on the attention projections")
    llm_train.add_argument("--method", required=True, choices=["glora", "lora"])
    llm_train.add_argument("--model", required=True, type=Path, help="local Hugging Face model folder (the base LLM)")
    llm_train.add_argument("--data", required=True, type=Path, help="Alpaca or ShareGPT JSON file")
    llm_train.add_argument("--format", default="auto", choices=["auto", "alpaca", "sharegpt"],
                           help="instruction format (default: from the first record)")
    llm_train.add_argument("--out", required=True, type=Path,
                           help="folder for weights.safetensors, metrics.json, epochs.csv, steps.csv")
    _common(llm_train)
    llm_train.set_defaults(func=_llm_train)

    llm_search = stages.add_parser("llm-search", help="Table 2: evolutionary search of a GLoRA LLM supernet on 5%% "
                                                      "of the four benchmarks")
    llm_search.add_argument("--model", required=True, type=Path, help="the base model folder used by llm-train")
    llm_search.add_argument("--weights", required=True, type=Path, help="llm-train's weights.safetensors")
    llm_search.add_argument("--eval-data", required=True, type=Path, help=llm_eval_help)
    llm_search.add_argument("--out", required=True, type=Path, help="folder for best.json and candidates.csv")
    _common(llm_search)
    llm_search.set_defaults(func=_llm_search)

    llm_export = stages.add_parser("llm-export", help="Table 2: merge a tuned LLM into a plain Hugging Face model "
                                                      "folder (save_pretrained + tokenizer)")
    llm_export.add_argument("--model", required=True, type=Path, help="the base model folder used by llm-train")
    llm_export.add_argument("--weights", required=True, type=Path, help="llm-train's weights.safetensors")
    llm_export.add_argument("--choices", type=Path, help="GLoRA: llm-search's best.json")
    llm_export.add_argument("--out", required=True, type=Path, help="the model folder to write (with card.json)")
    _common(llm_export, device_default="cpu")
    llm_export.set_defaults(func=_llm_export)

    llm_mini = stages.add_parser("llm-mini", help="mini suite: a tiny random LLaMA with its tokenizer, Alpaca and "
                                                  "ShareGPT files and the four benchmarks, generated locally")
    llm_mini.add_argument("--out", required=True, type=Path, help="folder to write (tiny-llama/, instructions/, "
                                                                  "eval/)")
    llm_mini.set_defaults(func=_llm_mini)

    llm_evaluate = stages.add_parser("llm-evaluate", help="Table 2: ARC (25-shot), HellaSwag (10), MMLU (5), "
                                                          "TruthfulQA (0) with lm-evaluation-harness")
    llm_evaluate.add_argument("--model", required=True, type=Path,
                              help="a model folder: llm-export's output or a base checkpoint")
    llm_evaluate.add_argument("--eval-data", required=True, type=Path, help=llm_eval_help)
    llm_evaluate.add_argument("--out", required=True, type=Path, help="the JSON result to write")
    llm_evaluate.add_argument("--limit", type=_limit, help="documents per task (smoke runs; default: all, or "
                                                           "llm.evaluate.limit)")
    _common(llm_evaluate)
    llm_evaluate.set_defaults(func=_llm_evaluate)
    return parser


def _terminated(signum, frame):
    """SIGTERM (Snakemake stopping its jobs, ``kill``, a scheduler) unwinds like Ctrl-C: temporary files of
    writes under way are removed, finished outputs stay."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    import signal
    import threading

    args = build_parser().parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
    try:
        return args.func(args)
    except GloraError as err:
        if os.environ.get("GLORA_TRACEBACK"):
            import traceback

            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
