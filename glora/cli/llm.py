"""``python -m glora`` stages of Table 2: GLoRA and LoRA on local Hugging Face causal LMs (:mod:`glora.llm`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from glora.cli.common import add_common, limit, setup

LLM_EVAL_HELP = ("folder of the four benchmarks (arc_challenge/, hellaswag/, mmlu/, truthfulqa/; layout in "
                 "glora.llm.tasks)")


def _llm_mini(args: argparse.Namespace) -> int:
    from glora.atomic import atomic_dir
    from glora.llm.mini import build_all

    with atomic_dir(args.out) as tmp:
        paths = build_all(tmp)
    print(json.dumps({k: str(args.out / v.relative_to(tmp)) for k, v in paths.items()}))
    return 0


def add_llm_mini(stages) -> None:
    llm_mini = stages.add_parser("llm-mini", help="mini suite: a tiny random LLaMA with its tokenizer, Alpaca and "
                                                  "ShareGPT files and the four benchmarks, generated locally")
    llm_mini.add_argument("--out", required=True, type=Path, help="folder to write (tiny-llama/, instructions/, "
                                                                  "eval/)")
    llm_mini.set_defaults(func=_llm_mini)


def _llm_train(args: argparse.Namespace) -> int:
    from glora.llm.train import run_llm_train

    config = setup(args)
    metrics = run_llm_train(config, args.method, args.model, args.data, args.out, fmt=args.format,
                            device=args.device, quiet=args.quiet)
    print(json.dumps({k: metrics[k] for k in ("method", "trainable_params", "optimizer_steps", "first_step_loss",
                                              "final_step_loss")}))
    return 0


def add_llm_train(stages) -> None:
    llm_train = stages.add_parser("llm-train", help="Table 2: tune a local causal LM on Alpaca/ShareGPT with a "
                                                    "GLoRA supernet or LoRA on the attention projections")
    llm_train.add_argument("--method", required=True, choices=["glora", "lora"])
    llm_train.add_argument("--model", required=True, type=Path, help="local Hugging Face model folder (the base LLM)")
    llm_train.add_argument("--data", required=True, type=Path, help="Alpaca or ShareGPT JSON file")
    llm_train.add_argument("--format", default="auto", choices=["auto", "alpaca", "sharegpt"],
                           help="instruction format (default: from the first record)")
    llm_train.add_argument("--out", required=True, type=Path,
                           help="folder for weights.safetensors, metrics.json, epochs.csv, steps.csv")
    add_common(llm_train)
    llm_train.set_defaults(func=_llm_train)


def _llm_search(args: argparse.Namespace) -> int:
    from glora.llm.search import run_llm_search

    config = setup(args)
    result = run_llm_search(config, args.model, args.weights, args.eval_data, args.out, device=args.device,
                            quiet=args.quiet)
    print(json.dumps({k: result[k] for k in ("val_score", "val_scores", "params", "candidates_scored")}))
    return 0


def add_llm_search(stages) -> None:
    llm_search = stages.add_parser("llm-search", help="Table 2: evolutionary search of a GLoRA LLM supernet on 5%% "
                                                      "of the four benchmarks")
    llm_search.add_argument("--model", required=True, type=Path, help="the base model folder used by llm-train")
    llm_search.add_argument("--weights", required=True, type=Path, help="llm-train's weights.safetensors")
    llm_search.add_argument("--eval-data", required=True, type=Path, help=LLM_EVAL_HELP)
    llm_search.add_argument("--out", required=True, type=Path, help="folder for best.json and candidates.csv")
    add_common(llm_search)
    llm_search.set_defaults(func=_llm_search)


def _llm_export(args: argparse.Namespace) -> int:
    from glora.llm.export import run_llm_export

    config = setup(args)
    card = run_llm_export(config, args.model, args.weights, args.out, choices=args.choices, device=args.device,
                          quiet=args.quiet)
    print(json.dumps({k: card.get(k) for k in ("method", "adapter_params", "dtype", "bias_switches",
                                               "max_abs_logit_diff")}))
    return 0


def add_llm_export(stages) -> None:
    llm_export = stages.add_parser("llm-export", help="Table 2: merge a tuned LLM into a plain Hugging Face model "
                                                      "folder (save_pretrained + tokenizer)")
    llm_export.add_argument("--model", required=True, type=Path, help="the base model folder used by llm-train")
    llm_export.add_argument("--weights", required=True, type=Path, help="llm-train's weights.safetensors")
    llm_export.add_argument("--choices", type=Path, help="GLoRA: llm-search's best.json")
    llm_export.add_argument("--out", required=True, type=Path, help="the model folder to write (with card.json)")
    add_common(llm_export, device_default="cpu")
    llm_export.set_defaults(func=_llm_export)


def _llm_evaluate(args: argparse.Namespace) -> int:
    from glora.llm.evaluate import run_llm_evaluate

    config = setup(args)
    result = run_llm_evaluate(config, args.model, args.eval_data, args.out, device=args.device, limit=args.limit,
                              quiet=args.quiet)
    print(json.dumps(result["scores"]))
    return 0


def add_llm_evaluate(stages) -> None:
    llm_evaluate = stages.add_parser("llm-evaluate", help="Table 2: ARC (25-shot), HellaSwag (10), MMLU (5), "
                                                          "TruthfulQA (0) with lm-evaluation-harness")
    llm_evaluate.add_argument("--model", required=True, type=Path,
                              help="a model folder: llm-export's output or a base checkpoint")
    llm_evaluate.add_argument("--eval-data", required=True, type=Path, help=LLM_EVAL_HELP)
    llm_evaluate.add_argument("--out", required=True, type=Path, help="the JSON result to write")
    llm_evaluate.add_argument("--limit", type=limit, help="documents per task (smoke runs; default: all, or "
                                                           "llm.evaluate.limit)")
    add_common(llm_evaluate)
    llm_evaluate.set_defaults(func=_llm_evaluate)


def register(stages) -> None:
    """Add this module's stages to the ``python -m glora`` parser."""
    add_llm_mini(stages)
    add_llm_train(stages)
    add_llm_search(stages)
    add_llm_export(stages)
    add_llm_evaluate(stages)
