"""Evolutionary search of a GLoRA LLM supernet (appendix B: 5 iterations on language tasks).

The machinery is :class:`glora.search.Evolution`, unchanged: genes are one option per (adapted layer, support
tensor), 4 projections x L layers x 5 tensors for LLaMA; 50 random subnets, then per iteration 25 mutations
(p = 0.2) and 25 crossovers of the 10 best, filled up with random ones. A candidate is scored by fixing its
path in every GLoRA layer of the supernet (no copy of a 7B model) and computing
:class:`glora.llm.scoring.HeldOut`'s mean Table 2 metric on 5% of the four evaluation sets.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from glora.errors import WeightsError

log = logging.getLogger(__name__)


def run_llm_search(config: Mapping, model_dir: str | Path, weights: str | Path, eval_root: str | Path,
                   out: str | Path, *, device: str = "auto", quiet: bool = True) -> dict:
    """``python -m glora llm-search``: search the GLoRA supernet ``weights`` (from llm-train) over ``model_dir`` on
    held-out samples of the benchmarks in ``eval_root``; writes ``out``/``best.json`` (choices, per-benchmark
    scores, parameters, the sampled documents, provenance) and ``candidates.csv`` (every scored subnet);
    ``search_state.json`` lives beside them while the search runs, so a killed search resumes."""
    import torch

    from glora.atomic import sha256, write_csv, write_json
    from glora.devices import resolve_device
    from glora.llm.config import from_config
    from glora.llm.model import load_adapted, load_tokenizer
    from glora.llm.scoring import HeldOut
    from glora.methods.glora.model import set_choices
    from glora.provenance import provenance
    from glora.search import CANDIDATE_FIELDS, Evolution, EvolutionSettings
    from glora.search_space import SearchSpace
    from glora.seeding import fingerprint_of

    began = time.perf_counter()
    settings = from_config(config)
    search = settings["search"]
    out = Path(out)
    device = resolve_device(device)
    model, method, _ = load_adapted(model_dir, weights, settings["dtype"], device)
    if method != "glora":
        raise WeightsError(f"{weights} holds a {method} model; only GLoRA supernets are searched")
    tokenizer = load_tokenizer(model_dir)
    with tempfile.TemporaryDirectory(prefix="glora-llm-tasks-") as workdir:
        held_out = HeldOut(eval_root, tokenizer, workdir, fraction=search["fraction"], shots=search["shots"],
                           seed=search["seed"], max_length=search["max_length"])
        space = SearchSpace.from_model(model)
        budget = space.max_params() if search["budget_m"] is None else int(search["budget_m"] * 1e6)
        amp = settings["train"]["amp"] and device.type == "cuda"
        scores: dict[str, dict] = {}
        timing = {"seconds": 0.0, "count": 0}

        def evaluate(choices: dict) -> float:
            t0 = time.perf_counter()
            set_choices(model, choices)
            result = held_out.score(model, batch_size=search["batch_size"], device=device, amp=amp)
            if device.type == "cuda":
                torch.cuda.synchronize()
            timing["seconds"] += time.perf_counter() - t0
            timing["count"] += 1
            scores[space.to_json(choices, indent=None)] = result
            return result["average"]

        evo_settings = EvolutionSettings.from_config(search)
        fingerprint = fingerprint_of(str(model_dir), sha256(Path(weights)), str(eval_root), search, settings["dtype"])
        evolution = Evolution(space, evaluate, budget, evo_settings, state_path=out / "search_state.json",
                              fingerprint=fingerprint, quiet=quiet)
        best = evolution.run()
        choices = evolution.choices(best["genes"])
        best_scores = scores.get(space.to_json(choices, indent=None))
        if best_scores is None:  # found before a resume: score it again for the per-benchmark numbers
            evaluate(choices)
            best_scores = scores[space.to_json(choices, indent=None)]
    rows = [{**{k: r[k] for k in CANDIDATE_FIELDS if k != "choices"}, "choices": evolution.encode(r["genes"])}
            for r in evolution.rows]
    write_csv(out / "candidates.csv", rows, CANDIDATE_FIELDS)
    result = {
        "stage": "llm-search", "method": method, "model_dir": str(model_dir), "weights": str(weights),
        "eval_root": str(eval_root), "settings": search, "evolution": evo_settings.__dict__,
        "held_out_docs": {b: len(v) for b, v in held_out.sampled.items()}, "held_out": held_out.sampled,
        "metrics": held_out.metrics, "candidates_scored": len(evolution.rows), "best_index": best["index"],
        "best_generation": best["generation"], "val_score": best["val_acc"], "val_scores": best_scores,
        "params": best["params"], "params_m": round(best["params"] / 1e6, 4), "budget": budget,
        "space_size": str(space.size()), "space_params": [space.min_params(), space.max_params()],
        "choices": choices,
        "provenance": provenance(config, seed=search["seed"], device=device),
    }
    write_json(out / "best.json", result)
    log.info("llm-search: %d candidates, %.2f s each, %.1f s in all", len(evolution.rows),
             timing["seconds"] / max(timing["count"], 1), time.perf_counter() - began)
    (out / "search_state.json").unlink(missing_ok=True)
    return result
