"""The search's validation score (Sec. 3.2): multiple-choice accuracy on 5% of the four evaluation sets.

"For the evolutionary search, we use 5% random data sampled from the 4 given datasets for model validation."
Running lm-eval for every candidate subnet would rebuild its tasks each time, so the prompts are built once
with lm-eval's own task objects (the YAMLs of :mod:`glora.llm.tasks`: identical prompts, choices, targets and
per-document metrics) and only the log-likelihoods are computed here, as lm-eval's HF model computes them:

    ll(choice) = Σ_t log p(continuation_t | context, continuation_<t)     (context + " " + choice, tokenised
                                                                            whole and split after the context)

A candidate's score is the mean over the four benchmarks of their Table 2 metric on the held-out sample
(ARC and HellaSwag acc_norm, MMLU acc, TruthfulQA mc2). Requests that share a context and have one-token
continuations (MMLU's letters) cost one forward together.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from glora.errors import ConfigError


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Token ids of (context, continuation) the way lm-eval's HF model splits them: trailing spaces of the context
    move to the continuation, the whole string is encoded once, and the continuation is what follows the
    separately encoded context."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tokenizer(context + continuation)["input_ids"]
    if not context:
        prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        return [prefix], tokenizer(continuation, add_special_tokens=False)["input_ids"]
    ctx = tokenizer(context)["input_ids"]
    return ctx, whole[len(ctx):]


@dataclass
class _Row:
    """One forward sequence: ``ids`` and the requests it scores, each (request index, continuation ids)."""

    ids: list[int]
    requests: list[tuple[int, list[int]]] = field(default_factory=list)


def plan_rows(pairs: Sequence[tuple[list[int], list[int]]], max_length: int) -> list[_Row]:
    """Forward sequences for (context, continuation) id pairs: ``(ctx + cont)[:-1]`` left-truncated to
    ``max_length``; pairs with the same context and one-token continuations share one sequence."""
    rows: list[_Row] = []
    shared: dict[tuple[int, ...], _Row] = {}
    for i, (ctx, cont) in enumerate(pairs):
        if not cont:
            raise ValueError("an empty continuation has no log-likelihood")
        ids = (ctx + cont)[:-1][-max_length:]
        if len(cont) == 1:
            key = tuple(ids)
            if key not in shared:
                shared[key] = _Row(ids)
                rows.append(shared[key])
            shared[key].requests.append((i, cont))
        else:
            rows.append(_Row(ids, [(i, cont)]))
    return rows


@torch.no_grad()
def loglikelihoods(model: nn.Module, pairs: Sequence[tuple[list[int], list[int]]], *, batch_size: int = 8,
                   max_length: int = 2048, pad_id: int = 0, device: torch.device | str = "cpu",
                   amp: bool = False) -> list[tuple[float, bool]]:
    """(log-likelihood, is_greedy) of every continuation given its context, in the order of ``pairs``.

    Rows are batched longest first, right-padded; the continuation's log-probabilities are read from the last
    ``len(cont)`` positions of its row (float32 log-softmax over the vocabulary).
    """
    device = torch.device(device)
    rows = sorted(plan_rows(pairs, max_length), key=lambda r: -len(r.ids))
    out: list[tuple[float, bool] | None] = [None] * len(pairs)
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        width = len(chunk[0].ids)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for j, row in enumerate(chunk):
            ids[j, :len(row.ids)] = torch.tensor(row.ids)
            mask[j, :len(row.ids)] = 1
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        for j, row in enumerate(chunk):
            for i, cont in row.requests:
                n = len(cont)
                span = logits[j, len(row.ids) - n:len(row.ids)].float().log_softmax(-1)
                target = torch.tensor(cont, device=span.device)
                ll = span.gather(-1, target[:, None]).sum().item()
                out[i] = (ll, bool((span.argmax(-1) == target).all()))
    return out  # type: ignore[return-value]


@dataclass
class _Doc:
    benchmark: str
    task: object           # the lm-eval Task (process_results)
    doc: dict
    requests: list[int]    # indices into HeldOut.pairs, one per choice, in choice order


class HeldOut:
    """The search's validation set: a fixed random ``fraction`` of each benchmark's evaluation documents, with
    their lm-eval requests tokenised once. ``score(model)`` gives the per-benchmark metrics and their mean."""

    def __init__(self, eval_root: str | Path, tokenizer, workdir: str | Path, *, fraction: float = 0.05,
                 shots: Mapping[str, int] | None = None, seed: int = 0, max_length: int = 2048,
                 benchmarks: Sequence[str] | None = None):
        from glora.llm.tasks import BENCHMARKS, load_tasks, task_manager, write_task_configs

        if not 0 < fraction <= 1:
            raise ConfigError(f"llm.search.fraction must be in (0, 1], got {fraction}")
        names = write_task_configs(eval_root, workdir, shots={**{b: 0 for b in BENCHMARKS}, **(shots or {})},
                                   benchmarks=benchmarks)
        tasks = load_tasks(task_manager(workdir), [t for group in names.values() for t in group])
        self.tokenizer, self.max_length = tokenizer, max_length
        self.pairs: list[tuple[list[int], list[int]]] = []
        self.docs: list[_Doc] = []
        self.sampled: dict[str, list[str]] = {}
        rng = random.Random(seed)
        for benchmark, task_names in names.items():
            pool = []  # (task name, doc id, instances) over the benchmark's tasks (MMLU: all subjects)
            for name in task_names:
                task = tasks[name]
                if hasattr(task, "set_fewshot_seed"):
                    task.set_fewshot_seed(seed=1234)
                task.build_all_requests()
                by_doc = defaultdict(list)
                for inst in task.instances:
                    by_doc[inst.doc_id].append(inst)
                pool += [(name, doc_id, by_doc[doc_id]) for doc_id in sorted(by_doc)]
            k = max(1, round(fraction * len(pool)))
            picked = sorted(rng.sample(range(len(pool)), k))
            self.sampled[benchmark] = [f"{pool[i][0]}:{pool[i][1]}" for i in picked]
            for i in picked:
                name, _, instances = pool[i]
                instances = sorted(instances, key=lambda inst: inst.idx)
                first = len(self.pairs)
                self.pairs += [encode_pair(tokenizer, *inst.args) for inst in instances]
                self.docs.append(_Doc(benchmark, tasks[name], instances[0].doc, list(range(first, len(self.pairs)))))
        self.metrics = {b: BENCHMARKS[b].metric for b in names}

    def __len__(self) -> int:
        return len(self.docs)

    def score(self, model: nn.Module, *, batch_size: int = 8, device: torch.device | str = "cpu",
              amp: bool = False) -> dict[str, float]:
        """benchmark -> mean metric on the held-out documents, and ``average`` (the search objective)."""
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        results = loglikelihoods(model, self.pairs, batch_size=batch_size, max_length=self.max_length, pad_id=pad,
                                 device=device, amp=amp)
        per: dict[str, list[float]] = defaultdict(list)
        for d in self.docs:
            metrics = d.task.process_results(d.doc, [results[i] for i in d.requests])
            per[d.benchmark].append(float(metrics[self.metrics[d.benchmark]]))
        scores = {b: sum(v) / len(v) for b, v in per.items()}
        scores["average"] = sum(scores.values()) / len(scores)
        return scores
