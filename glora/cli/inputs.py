"""``python -m glora`` stages that make or check a run's inputs: the demo, the mini suite's data, the
paper's data and checkpoints (prepare, data check, checkpoint) and the size of a GLoRA search space."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from glora.cli.common import positive_int, seed, setup


def _demo(args: argparse.Namespace) -> int:
    from glora.demo import run_demo

    summary = run_demo(args.out, epochs=args.epochs, candidates=args.candidates, budget_m=args.budget_m,
                       seed=args.seed, quiet=args.quiet or not sys.stderr.isatty())
    print(json.dumps(summary, indent=1))
    return 0


def add_demo(stages) -> None:
    demo = stages.add_parser("demo", help="train, search, merge and verify GLoRA on a synthetic task (~1 min, CPU)")
    demo.add_argument("--out", type=Path, default=Path("results/demo"), help="output folder (default: %(default)s)")
    demo.add_argument("--epochs", type=positive_int, default=15, help="supernet epochs (default: %(default)s)")
    demo.add_argument("--candidates", type=positive_int, default=16, help="subnets sampled (default: %(default)s)")
    demo.add_argument("--budget-m", type=float, default=0.05, help="cap on adapter parameters, millions")
    demo.add_argument("--seed", type=seed, default=0)
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=_demo)


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

    summary = generate(args.out, seed=args.seed, upstream_per_class=args.upstream_per_class,
                       quiet=args.quiet or not sys.stderr.isatty(), parts=tuple(args.parts or PARTS))
    print(json.dumps(summary, indent=1))
    return 0


def add_data(stages) -> None:
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
    mini.add_argument("--seed", type=seed, default=0)
    mini.add_argument("--upstream-per-class", type=positive_int, default=100, help="upstream images per class")
    mini.add_argument("--parts", nargs="+", metavar="PART",
                      help="what to write: upstream (the pre-training set), vtab, fewshot, imagenet_variants "
                           "(default: all)")
    mini.add_argument("--quiet", action="store_true", help="no progress bars")
    mini.set_defaults(func=_data_mini)


def _space(args: argparse.Namespace) -> int:
    from glora.methods.glora.model import space_of

    space = space_of(args.backbone, args.ranks)
    print(json.dumps({"backbone": args.backbone, "ranks": args.ranks, "layers": len(space),
                      "subnets": str(space.size()), "min_params": space.min_params(),
                      "max_params": space.max_params()}, indent=1))
    return 0


def add_space(stages) -> None:
    space = stages.add_parser("space", help="size and parameter range of a backbone's GLoRA search space")
    space.add_argument("--backbone", default="vit_base_patch16_224.orig_in21k", help="a name from glora.models")
    space.add_argument("--ranks", type=int, nargs="+", default=[8, 4], help="LoRA ranks (default: 8 4)")
    space.set_defaults(func=_space)


def _checkpoint(args: argparse.Namespace) -> int:
    from glora.atomic import write_json
    from glora.models import create_backbone

    model = create_backbone(args.backbone, num_classes=1, checkpoint=args.path)
    report = {"backbone": args.backbone, **model.checkpoint_report}
    if args.out:
        write_json(args.out, report)
    print(json.dumps(report, indent=1))
    return 0


def add_checkpoint(stages) -> None:
    ckpt = stages.add_parser("checkpoint", help="check that a local checkpoint loads into a backbone (and report it)")
    ckpt.add_argument("--backbone", required=True, help="a name from glora.models.BACKBONES")
    ckpt.add_argument("--path", required=True, type=Path, help="the .npz / .pth / .safetensors file")
    ckpt.add_argument("--out", type=Path, help="write the report (format, tensors loaded, sha256) as JSON here")
    ckpt.set_defaults(func=_checkpoint)


def _prepare(args: argparse.Namespace) -> int:
    from glora.atomic import write_json
    from glora.data.prepare import prepare

    config = setup(args)
    report = prepare(config, args.what, backbone=args.backbone, keep_downloads=args.keep_downloads,
                     quiet=args.quiet)
    if args.out:
        write_json(args.out, report)
    print(json.dumps(report, indent=1))
    return 0


def add_prepare(stages) -> None:
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


def register(stages) -> None:
    """Add this module's stages to the ``python -m glora`` parser."""
    add_demo(stages)
    add_data(stages)
    add_space(stages)
    add_checkpoint(stages)
    add_prepare(stages)
