"""Table 2's scores of a plain model folder through lm-evaluation-harness, on local copies of the benchmarks.

ARC-challenge (25-shot, acc_norm), HellaSwag (10-shot, acc_norm), MMLU (5-shot, acc: the mean of the 57
subjects' accuracies, as the Open LLM Leaderboard averaged them; the document-weighted mean is recorded too)
and TruthfulQA (0-shot, mc2), and their average: the leaderboard's protocol that the paper reports. The model
is lm-eval's own HF model (``HFLM``) loaded from the folder (an llm-export output or a base checkpoint).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)


def table2_scores(results: Mapping, names: Mapping[str, list[str]], samples: Mapping | None = None) -> dict:
    """Per-benchmark Table 2 scores (fractions in [0, 1]) from lm-eval's ``results`` for the task ``names`` of
    :func:`glora.llm.tasks.write_task_configs`; ``average`` over the benchmarks, ``mmlu_weighted`` by documents."""
    from glora.llm.tasks import BENCHMARKS

    scores, stderr = {}, {}
    for bench, tasks in names.items():
        key = f"{BENCHMARKS[bench].metric},none"
        values = [results[t][key] for t in tasks]
        scores[bench] = sum(values) / len(values)
        errors = [results[t].get(f"{BENCHMARKS[bench].metric}_stderr,none") for t in tasks]
        if len(tasks) == 1 and isinstance(errors[0], (int, float)):
            stderr[bench] = errors[0]
        if bench == "mmlu" and samples:
            sizes = [samples[t]["effective"] for t in tasks]
            scores["mmlu_weighted"] = sum(v * n for v, n in zip(values, sizes)) / sum(sizes)
    scores["average"] = sum(scores[b] for b in names) / len(names)
    return {"scores": scores, "stderr": stderr}


def run_llm_evaluate(config: Mapping, model_dir: str | Path, eval_root: str | Path, out: str | Path, *,
                     device: str = "auto", limit: int | float | None = None, quiet: bool = True) -> dict:
    """``python -m glora llm-evaluate``: score the model folder ``model_dir`` on the four benchmarks in
    ``eval_root`` with lm-eval and the configured shot counts; writes the JSON ``out`` (scores, their average,
    per-task lm-eval results, provenance) and returns it. ``limit`` (documents per task) is for smoke runs."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    from glora.atomic import write_json
    from glora.devices import resolve_device
    from glora.llm.config import from_config
    from glora.llm.model import check_model_dir
    from glora.llm.tasks import BENCHMARKS, task_manager, write_task_configs
    from glora.provenance import provenance

    began = time.perf_counter()
    settings = from_config(config)["evaluate"]
    limit = settings["limit"] if limit is None else limit
    check_model_dir(model_dir)
    device = resolve_device(device)
    with tempfile.TemporaryDirectory(prefix="glora-llm-tasks-") as workdir:
        names = write_task_configs(eval_root, workdir, shots=settings["shots"])
        lm = HFLM(pretrained=str(model_dir), dtype=settings["dtype"], batch_size=settings["batch_size"],
                  device=str(device))
        output = lm_eval.simple_evaluate(model=lm, tasks=[t for group in names.values() for t in group],
                                         task_manager=task_manager(workdir), limit=limit, log_samples=False,
                                         random_seed=settings["seed"], numpy_random_seed=settings["seed"],
                                         torch_random_seed=settings["seed"], fewshot_random_seed=settings["seed"])
    if output is None:
        raise RuntimeError("lm_eval.simple_evaluate returned no results")
    table = table2_scores(output["results"], names, output.get("n-samples"))
    card_path = Path(model_dir) / "card.json"
    card = json.loads(card_path.read_text()) if card_path.is_file() else None
    result = {
        "stage": "llm-evaluate", "model_dir": str(model_dir), "eval_root": str(eval_root),
        "method": card["method"] if card else "base",
        "shots": {b: output["n-shot"].get(names[b][0], settings["shots"][b]) for b in names},
        "metrics": {b: BENCHMARKS[b].label for b in names}, "limit": limit,
        **table,
        "docs": {b: sum(output["n-samples"][t]["effective"] for t in names[b]) for b in names},
        "tasks": output["results"],
        "lm_eval": {"version": lm_eval.__version__ if hasattr(lm_eval, "__version__") else None,
                    "n-shot": output.get("n-shot"), "n-samples": output.get("n-samples"),
                    "task_versions": output.get("versions")},
        "card": card,
        "provenance": provenance(config, seed=settings["seed"], device=device),
    }
    write_json(out, json.loads(json.dumps(result, default=str)))
    log.info("llm-evaluate %s: %.1f s", model_dir, time.perf_counter() - began)
    return result
