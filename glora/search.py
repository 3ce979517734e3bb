"""The evolutionary search of appendix B: the best GLoRA subnet under a parameter cap, on the validation split.

A candidate is one option per (layer, support tensor): 48 x 5 genes for ViT-B/16. Generation 0 is
``population`` random subnets; each later generation takes the ``parents`` best subnets seen so far and
makes ``mutations`` children (each gene resampled with probability ``mutation_prob``) and ``crossovers``
children (each gene from one of two parents), then fills up to ``population`` with random subnets. Only new
subnets within the cap (head excluded) are kept, as in AutoFormer/NOAH, whose search the paper uses; no
retraining. Each candidate is scored on the merged plain model (:class:`glora.methods.glora.SubnetMerger`),
so it costs one merge plus one plain evaluation pass.

The state after every generation (candidates scored so far, the random generator) is saved atomically, so a
killed search continues where it stopped and ends with the same result.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from glora.atomic import write_json
from glora.errors import ConfigError, WeightsError
from glora.methods.registry import METHODS
from glora.search_space import SearchSpace

log = logging.getLogger(__name__)

Genes = tuple[str, ...]
CANDIDATE_FIELDS = ["index", "generation", "origin", "params", "val_acc", "choices"]


@dataclass(frozen=True)
class EvolutionSettings:
    population: int = 50
    parents: int = 10
    mutations: int = 25
    mutation_prob: float = 0.2
    crossovers: int = 25
    iterations: int = 20
    seed: int = 0

    @classmethod
    def from_config(cls, search: Mapping) -> EvolutionSettings:
        return cls(**{k: search[k] for k in cls.__dataclass_fields__})


class Evolution:
    """The search over ``space`` with ``evaluate(choices) -> accuracy`` under ``cap`` adapter parameters."""

    def __init__(self, space: SearchSpace, evaluate: Callable[[dict], float], cap: int,
                 settings: EvolutionSettings, *, state_path: Path | None = None, fingerprint: str = "",
                 quiet: bool = True):
        if cap < space.min_params() or cap <= 0:
            raise ConfigError(f"the budget of {cap / 1e6:g}M adapter parameters is below the smallest subnet that "
                              f"adapts anything; the space holds {space.min_params():,} to {space.max_params():,} "
                              "parameters -- raise budget_m")
        self.space, self.evaluate, self.cap, self.settings = space, evaluate, cap, settings
        self.state_path, self.fingerprint, self.quiet = state_path, fingerprint, quiet
        self.slots = [(layer, t) for layer in space.names for t in space.layers[layer].options]
        self.options = [space.layers[layer].options[t] for layer, t in self.slots]
        self.widths = [len(space.layers[layer].options) for layer in space.names]
        self.rng = random.Random(settings.seed)
        self.rows: list[dict] = []          # every scored candidate, in order
        self.scores: dict[Genes, float] = {}
        self.generation = 0                 # generations completed

    # -- encoding ------------------------------------------------------------------------------
    def choices(self, genes: Genes) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for (layer, t), option in zip(self.slots, genes):
            out.setdefault(layer, {})[t] = option
        return out

    def params(self, genes: Genes) -> int:
        return self.space.count_params(self.choices(genes))

    def encode(self, genes: Genes) -> str:
        """Compact text of a candidate: per layer its options joined by dots (GLoRA ``A.B.C.D.E``), layers
        separated by spaces (module order)."""
        out, i = [], 0
        for width in self.widths:
            out.append(".".join(genes[i:i + width]))
            i += width
        return " ".join(out)

    # -- reproduction ----------------------------------------------------------------------------
    def random_genes(self) -> Genes:
        """A uniform random subnet; if 20 draws all exceed the cap, the last one is repaired by switching
        random genes to ``none`` until it fits (tight caps would otherwise take forever)."""
        for _ in range(20):
            genes = tuple(self.rng.choice(opts) for opts in self.options)
            if self.params(genes) <= self.cap:
                return genes
        genes = list(genes)
        while self.params(tuple(genes)) > self.cap:
            used = [i for i, g in enumerate(genes) if g != "none"]
            genes[self.rng.choice(used)] = "none"
        return tuple(genes)

    def mutate(self, parent: Genes) -> Genes:
        p = self.settings.mutation_prob
        return tuple(self.rng.choice(opts) if self.rng.random() < p else g for g, opts in zip(parent, self.options))

    def crossover(self, a: Genes, b: Genes) -> Genes:
        return tuple(self.rng.choice((x, y)) for x, y in zip(a, b))

    def best_rows(self, k: int) -> list[dict]:
        """The k best subnets so far: highest accuracy, then fewest parameters, then first found."""
        return sorted(self.rows, key=lambda r: (-r["val_acc"], r["params"], r["index"]))[:k]

    def top(self, k: int) -> list[Genes]:
        return [r["genes"] for r in self.best_rows(k)]

    def _offspring(self, count: int, make: Callable[[], Genes], taken: set[Genes]) -> list[Genes]:
        children = []
        for _ in range(10 * count):  # AutoFormer's bound on tries
            if len(children) == count:
                break
            genes = make()
            if genes not in self.scores and genes not in taken and self.params(genes) <= self.cap:
                children.append(genes)
                taken.add(genes)
        return children

    def next_population(self) -> list[tuple[str, Genes]]:
        s, taken = self.settings, set()
        if self.generation == 0:
            new = [("random", g) for g in self._offspring(s.population, self.random_genes, taken)]
            return new
        parents = self.top(s.parents)
        new = [("mutation", g) for g in self._offspring(s.mutations, lambda: self.mutate(self.rng.choice(parents)),
                                                        taken)]
        new += [("crossover", g) for g in self._offspring(
            s.crossovers, lambda: self.crossover(self.rng.choice(parents), self.rng.choice(parents)), taken)]
        new += [("random", g) for g in self._offspring(max(0, s.population - len(new)), self.random_genes, taken)]
        return new

    # -- running ---------------------------------------------------------------------------------
    def run(self) -> dict:
        """Run (or resume) all generations; returns the best candidate's row."""
        self._resume()
        total = self.settings.iterations + 1  # generation 0 plus the iterations
        bar = tqdm(range(self.generation, total), desc="search", unit="gen", disable=self.quiet,
                   initial=self.generation, total=total)
        for gen in bar:
            population = self.next_population()
            for origin, genes in population:
                acc = self.evaluate(self.choices(genes))
                self.scores[genes] = acc
                self.rows.append({"index": len(self.rows), "generation": gen, "origin": origin,
                                  "params": self.params(genes), "val_acc": acc, "genes": genes})
            self.generation = gen + 1
            best = self.best_rows(1)[0]
            bar.set_postfix(best=f"{best['val_acc']:.4f}", params=best["params"], scored=len(self.rows))
            log.info("generation %d: %d new, best val_acc %.4f at %d params", gen, len(population),
                     best["val_acc"], best["params"])
            self._save()
        return self.best_rows(1)[0]

    def _save(self) -> None:
        if self.state_path is None:
            return
        version, internal, gauss = self.rng.getstate()
        write_json(self.state_path, {
            "fingerprint": self.fingerprint, "generation": self.generation,
            "rng": [version, list(internal), gauss],
            "rows": [{**r, "genes": list(r["genes"])} for r in self.rows]})

    def _resume(self) -> None:
        if self.state_path is None or not self.state_path.is_file():
            return
        try:
            state = json.loads(self.state_path.read_text())
        except json.JSONDecodeError as err:
            log.warning("ignoring unreadable search state %s (%s)", self.state_path, err)
            return
        if state.get("fingerprint") != self.fingerprint:
            log.warning("search state %s belongs to other settings; starting afresh", self.state_path)
            return
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.rows = [{**r, "genes": tuple(r["genes"])} for r in state["rows"]]
        self.scores = {r["genes"]: r["val_acc"] for r in self.rows}
        self.generation = state["generation"]
        log.info("resuming search %s after generation %d", self.state_path, self.generation - 1)


# ---------------------------------------------------------------------------------------------
# The search stage
# ---------------------------------------------------------------------------------------------

def run_search(config: Mapping, run, weights: str | Path, out: str | Path, *, budget_m: float | None = None,
               device: str = "auto", quiet: bool = True) -> dict:
    """``python -m glora search``: search the supernet ``weights`` of ``run`` on val200 under ``budget_m``
    (default: the size's ``budget_m``); writes ``out``/``candidates.csv`` (every scored subnet) and
    ``best.json`` (its choices, parameters, val accuracy, provenance); ``search_state.json`` beside them."""
    import torch

    from glora.atomic import sha256, write_csv
    from glora.config import glora_size
    from glora.data.loading import accuracy
    from glora.devices import resolve_device
    from glora.experiment import batches, build_model, open_split
    from glora.provenance import provenance
    from glora.run import SPLITS
    from glora.seeding import fingerprint_of

    spec = run.spec
    if not spec.search_based:
        raise ConfigError(f"{run.method!r} trains one fixed configuration; only search-based methods "
                          f"({', '.join(n for n, m in METHODS.items() if m.search_based)}) are searched")
    out = Path(out)
    began = time.perf_counter()
    if not Path(weights).is_file():
        size_arg = f" --size {run.size}" if run.size else ""
        raise WeightsError(f"supernet weights {weights} do not exist; run `python -m glora train --method "
                           f"{run.method}{size_arg} --task {run.task}` first")
    size = glora_size(config, run.size) if run.method == "glora" else {}
    if budget_m is None:
        budget_m = size["budget_m"] if size else config["methods"].get(run.method, {}).get("budget_m")
    if budget_m is None:
        raise ConfigError(f"no parameter budget for {run.method}: set methods.{run.method}.budget_m or pass --budget")
    settings = EvolutionSettings.from_config(config["search"])
    device = resolve_device(device)
    val_set = open_split(config, run, "val")
    val = batches(config, val_set, config["search"]["batch_size"], device, shuffle=False, augmented=False,
                  quiet=quiet)
    model = build_model(config, run, val_set.num_classes, weights=weights).to(device).eval()
    space = spec.search_space(model)
    merge = spec.scorer(model)
    timing = {"merge_s": 0.0, "eval_s": 0.0, "count": 0}

    def evaluate(choices: dict) -> float:
        t0 = time.perf_counter()
        plain = merge(choices)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        acc = accuracy(plain, val)
        timing["merge_s"] += t1 - t0
        timing["eval_s"] += time.perf_counter() - t1
        timing["count"] += 1
        return acc

    fingerprint = fingerprint_of(run.to_dict(), settings.__dict__, budget_m, sha256(Path(weights)))
    search = Evolution(space, evaluate, int(budget_m * 1e6), settings, state_path=out / "search_state.json",
                       fingerprint=fingerprint, quiet=quiet)
    best = search.run()
    rows = [{**{k: r[k] for k in CANDIDATE_FIELDS if k != "choices"}, "choices": search.encode(r["genes"])}
            for r in search.rows]
    write_csv(out / "candidates.csv", rows, CANDIDATE_FIELDS)
    n = len(search.rows)
    result = {
        "stage": "search", **run.to_dict(), "budget_m": budget_m, "ranks": size.get("ranks"), "weights": str(weights),
        "val_split": SPLITS[run.family]["val"], "val_images": len(val_set), "settings": settings.__dict__,
        "candidates_scored": n, "best_index": best["index"], "best_generation": best["generation"],
        "val_acc": best["val_acc"], "params": best["params"], "params_m": round(best["params"] / 1e6, 4),
        "space_size": str(space.size()), "space_params": [space.min_params(), space.max_params()],
        "choices": search.choices(best["genes"]),
        "provenance": provenance(config, seed=settings.seed, device=device),
    }
    write_json(out / "best.json", result)
    (out / "search_state.json").unlink(missing_ok=True)
    per = max(timing["count"], 1)
    log.info("search %s %s: %d candidates in %.1f s (%.4f s merging and %.4f s scoring each, this process)",
             run.method, run.task, n, time.perf_counter() - began, timing["merge_s"] / per, timing["eval_s"] / per)
    return result
