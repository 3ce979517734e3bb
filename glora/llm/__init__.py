"""GLoRA for large language models (Sec. 3.2, Table 2): one module per stage of the experiment.

    data.py       Alpaca / ShareGPT JSON -> token ids and labels (-100 on prompts)
    model.py      local Hugging Face causal LMs; GLoRA or LoRA on q/k/v/o_proj
    train.py      supernet / LoRA instruction tuning (lr 2e-5, cosine, batch 32 by accumulation)
    scoring.py    log-likelihood multiple-choice scores on 5% held-out benchmark data (the search's objective)
    search.py     the evolutionary search (glora.search.Evolution) over the supernet
    export.py     merge to a plain model folder (save_pretrained) and verify it
    evaluate.py   lm-evaluation-harness on local benchmark files: ARC 25, HellaSwag 10, MMLU 5, TruthfulQA 0 shots
    tasks/        the lm-eval task YAMLs and the local data layout
    config.py     the settings (config.yaml's ``llm:`` section) and their defaults

Stages: ``python -m glora llm-train | llm-search | llm-export | llm-evaluate``. Models and data come from local
folders only: importing this package sets ``HF_HUB_OFFLINE`` and ``HF_DATASETS_OFFLINE`` unless already set.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
