"""Document processing of the local benchmark tasks (loaded by lm-eval through ``!function utils.<name>``).

The same transformations as lm-eval's own hellaswag and truthfulqa_mc2 tasks, so scores are comparable.
"""

from __future__ import annotations

import math
import re


def clean_hellaswag(text: str) -> str:
    """HellaSwag's WikiHow artefacts: ``" [title]"`` becomes ``". "``, other ``[...]`` tags and double spaces go."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def hellaswag_doc(doc: dict) -> dict:
    """One HellaSwag row -> ``query`` (activity label: context), ``choices`` (the 4 endings), ``gold``."""
    context = doc["ctx_a"] + " " + doc["ctx_b"].capitalize()
    return {"query": clean_hellaswag(doc["activity_label"] + ": " + context),
            "choices": [clean_hellaswag(ending) for ending in doc["endings"]],
            "gold": int(doc["label"])}


def process_hellaswag(dataset):
    """``process_docs`` of glora_hellaswag (a ``datasets.Dataset`` in, the same with the fields above)."""
    return dataset.map(hellaswag_doc)


def process_results_mc2(doc: dict, results) -> dict:
    """TruthfulQA MC2: the probability mass of the true answers, normalised over all answers.

    ``results``: one ``(loglikelihood, is_greedy)`` per choice of ``mc2_targets``; ``labels`` 1 marks a true one.
    """
    lls = [ll for ll, _ in results]
    top = max(lls)
    probs = [math.exp(ll - top) for ll in lls]  # the common factor exp(top) cancels in the ratio
    true = sum(p for p, label in zip(probs, doc["mc2_targets"]["labels"]) if label == 1)
    return {"acc": true / sum(probs)}
