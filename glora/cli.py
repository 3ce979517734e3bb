"""``python -m glora <stage>``: the command line that users and Snakemake rules call.

Each stage parses its arguments and calls one library function; no logic lives here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


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
    names = glora.apply_glora(model, ranks=args.ranks)
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
    from glora.data.mini import generate

    summary = generate(args.out, seed=args.seed, upstream_per_class=args.upstream_per_class,
                       quiet=args.quiet or not sys.stderr.isatty())
    print(json.dumps(summary, indent=1))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m glora", description=__doc__.splitlines()[0])
    stages = parser.add_subparsers(dest="stage", required=True, metavar="<stage>")

    demo = stages.add_parser("demo", help="train, search, merge and verify GLoRA on a synthetic task (~1 min, CPU)")
    demo.add_argument("--out", type=Path, default=Path("results/demo"), help="output folder (default: %(default)s)")
    demo.add_argument("--epochs", type=int, default=15, help="supernet epochs (default: %(default)s)")
    demo.add_argument("--candidates", type=int, default=16, help="subnets sampled (default: %(default)s)")
    demo.add_argument("--budget-m", type=float, default=0.05, help="cap on adapter parameters, millions")
    demo.add_argument("--seed", type=int, default=0)
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
    mini.add_argument("--seed", type=int, default=0)
    mini.add_argument("--upstream-per-class", type=int, default=100, help="upstream images per class")
    mini.add_argument("--quiet", action="store_true", help="no progress bars")
    mini.set_defaults(func=_data_mini)

    space = stages.add_parser("space", help="size and parameter range of a backbone's GLoRA search space")
    space.add_argument("--backbone", default="vit_base_patch16_224.orig_in21k", help="a name from glora.models")
    space.add_argument("--ranks", type=int, nargs="+", default=[8, 4], help="LoRA ranks (default: 8 4)")
    space.add_argument("--num-classes", type=int, default=100)
    space.set_defaults(func=_space)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
