"""``python -m glora`` stages of one experiment cell -- pretrain, train, search, select, standalone, export,
evaluate -- and Table 4's efficiency: each parses its flags (a run's: :func:`glora.run.add_run_arguments`) and
calls one library function."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from glora.cli.common import add_common, setup
from glora.run import Run, add_run_arguments


def _pretrain(args: argparse.Namespace) -> int:
    from glora.pretrain import run_pretrain

    config = setup(args)
    print(json.dumps(run_pretrain(config, args.data, args.out, device=args.device, quiet=args.quiet), indent=1))
    return 0


def add_pretrain(stages) -> None:
    pretrain = stages.add_parser("pretrain", help="mini suite: pre-train the tiny backbone on the upstream set")
    pretrain.add_argument("--data", required=True, type=Path, help="a generated mini suite (python -m glora data mini)")
    pretrain.add_argument("--out", required=True, type=Path, help="the checkpoint to write (.safetensors)")
    add_common(pretrain)
    pretrain.set_defaults(func=_pretrain)


def _train(args: argparse.Namespace) -> int:
    from glora.train import run_train

    config = setup(args)
    metrics = run_train(config, Run.from_args(args, trains=True), args.out, device=args.device, quiet=args.quiet)
    print(json.dumps({k: metrics[k] for k in ("method", "size", "task", "seed", "final_train_loss",
                                              "final_val_acc", "trainable_params")}))
    return 0


def add_train(stages) -> None:
    train = stages.add_parser("train", help="train a method on a task: GLoRA's supernet, or a baseline")
    add_run_arguments(train)
    train.add_argument("--out", required=True, type=Path,
                       help="folder for weights.safetensors, metrics.json, epochs.csv (resume.pt while running)")
    train.add_argument("--choices", type=Path, help="NOAH: retrain this searched subnet (the search's best.json) "
                                                    "from the backbone on the final training split")
    add_common(train)
    train.set_defaults(func=_train)


def _search(args: argparse.Namespace) -> int:
    from glora.search import run_search

    config = setup(args)
    result = run_search(config, Run.from_args(args), args.weights, args.out, budget_m=args.budget, device=args.device,
                        quiet=args.quiet)
    print(json.dumps({k: result[k] for k in ("task", "size", "budget_m", "val_acc", "params", "candidates_scored")}))
    return 0


def add_search(stages) -> None:
    search = stages.add_parser("search", help="evolutionary search of a supernet (GLoRA, NOAH) on val200 "
                                              "(appendix B)")
    add_run_arguments(search, searched=True)
    search.add_argument("--weights", required=True, type=Path, help="the supernet (train's weights.safetensors)")
    search.add_argument("--budget", type=float, help="cap on adapter parameters in millions, head excluded "
                        "(default: the GLoRA size's budget_m, or methods.<method>.budget_m)")
    search.add_argument("--out", required=True, type=Path, help="folder for candidates.csv and best.json")
    add_common(search)
    search.set_defaults(func=_search)


def _select(args: argparse.Namespace) -> int:
    from glora.select import run_select

    record = run_select(args.candidates, args.train_out, args.search_out, args.out)
    print(json.dumps({k: record[k] for k in ("task", "size", "lr", "val_acc")}))
    return 0


def add_select(stages) -> None:
    select = stages.add_parser("select", help="keep the supernet learning rate whose searched subnet scores best on "
                                              "val200 (train.supernet_lr_grid; Table 5)")
    select.add_argument("--candidates", required=True, type=Path, nargs="+",
                        help="the search's best.json of every rate (grid order: ties go to the first)")
    select.add_argument("--train-out", required=True, type=Path, help="folder to copy the chosen supernet into")
    select.add_argument("--search-out", required=True, type=Path, help="folder to copy the chosen search into")
    select.add_argument("--out", required=True, type=Path, help="the JSON record to write (every rate's scores)")
    select.set_defaults(func=_select)


def _standalone(args: argparse.Namespace) -> int:
    from glora.standalone import run_standalone

    config = setup(args)
    record = run_standalone(config, Run.from_args(args), args.supernet, args.choices, args.out, device=args.device,
                            quiet=args.quiet)
    print(json.dumps({k: record[k] for k in ("task", "size", "inherited", "alone", "test_delta")}))
    return 0


def add_standalone(stages) -> None:
    standalone = stages.add_parser("standalone", help="diagnostic: GLoRA's searched subnet trained alone vs. with "
                                                      "the supernet's weights (val200 and test top-1)")
    add_run_arguments(standalone, searched=True)
    standalone.add_argument("--supernet", required=True, type=Path, help="train's weights.safetensors "
                                                                         "(metrics.json beside it)")
    standalone.add_argument("--choices", required=True, type=Path, help="the search's best.json")
    standalone.add_argument("--out", required=True, type=Path, help="the JSON result to write")
    add_common(standalone)
    standalone.set_defaults(func=_standalone)


def _export(args: argparse.Namespace) -> int:
    from glora.export import run_export

    config = setup(args)
    card = run_export(config, Run.from_args(args), args.weights, args.out, choices=args.choices, device=args.device,
                      quiet=args.quiet)
    print(json.dumps({k: card.get(k) for k in ("run", "adapter_params", "merged", "max_abs_logit_diff")}))
    return 0


def add_export(stages) -> None:
    export = stages.add_parser("export", help="re-parameterise a trained run into a plain timm model")
    add_run_arguments(export)
    export.add_argument("--weights", required=True, type=Path, help="train's weights.safetensors")
    export.add_argument("--choices", type=Path, help="search-based methods: the search's best.json")
    export.add_argument("--out", required=True, type=Path, help="folder for model.safetensors and card.json")
    add_common(export, device_default="cpu")
    export.set_defaults(func=_export)


def _evaluate(args: argparse.Namespace) -> int:
    from glora.evaluate import run_evaluate

    config = setup(args)
    result = run_evaluate(config, args.model, args.out, targets=args.target, supernet=args.supernet,
                          device=args.device, quiet=args.quiet)
    summary = {"task": result["task"], "method": result["method"], "top1": result["test"]["top1"]}
    if "supernet" in result:
        summary["supernet_top1"] = result["supernet"]["top1"]
    summary.update({t: r["top1"] for t, r in result.get("targets", {}).items()})
    print(json.dumps(summary))
    return 0


def add_evaluate(stages) -> None:
    evaluate = stages.add_parser("evaluate", help="test accuracy of an exported model (+ domain-generalisation "
                                                  "targets)")
    evaluate.add_argument("--model", required=True, type=Path, help="export's model.safetensors (card.json beside)")
    evaluate.add_argument("--target", action="append", default=[],
                          help="also evaluate on this ImageNet variant (imagenet_v2, imagenet_sketch, imagenet_a, "
                               "imagenet_r); repeatable")
    evaluate.add_argument("--supernet", type=Path, help="also score the adapted model (train's weights) under the "
                                                        "card's choices on the same images")
    evaluate.add_argument("--out", required=True, type=Path, help="the JSON result to write")
    add_common(evaluate)
    evaluate.set_defaults(func=_evaluate)


def _efficiency(args: argparse.Namespace) -> int:
    from glora.efficiency import run_efficiency

    config = setup(args)
    for row in run_efficiency(config, args.out, device=args.device, quiet=args.quiet):
        print(json.dumps({k: row[k] for k in row if k not in ("backbone", "device")}))
    return 0


def add_efficiency(stages) -> None:
    eff = stages.add_parser("efficiency", help="Table 4: extra parameters, FLOPs and throughput of every method")
    eff.add_argument("--out", required=True, type=Path, help="the CSV to write (settings go to the .json beside it)")
    add_common(eff)
    eff.set_defaults(func=_efficiency)


def register(stages) -> None:
    """Add this module's stages to the ``python -m glora`` parser."""
    add_pretrain(stages)
    add_train(stages)
    add_search(stages)
    add_select(stages)
    add_standalone(stages)
    add_export(stages)
    add_evaluate(stages)
    add_efficiency(stages)
