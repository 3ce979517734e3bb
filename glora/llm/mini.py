"""The mini suite's language-model experiment (Table 2 in miniature), generated on the spot: a word-level
tokenizer, a randomly initialised 2-layer LLaMA, small Alpaca and ShareGPT files, and the four benchmarks in the
layout of :mod:`glora.llm.tasks` (a handful of rows each). ``python -m glora llm-mini --out DIR`` writes them;
the tests use the same builders. Nothing is fetched from a hub.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = ("the a cat dog sun moon red blue green big small runs sits eats sleeps under over near house tree river "
         "water fire stone bird fish happy sad fast slow one two three four five six seven eight nine ten yes no "
         "why how what who when where is are was were has have can will not and or but").split()

ALPACA = [
    {"instruction": "Name the colour of the sun.", "input": "", "output": "The sun is red."},
    {"instruction": "Add the numbers.", "input": "two and three", "output": "five"},
    {"instruction": "Where does the fish sleep?", "input": "", "output": "The fish sleeps under the river."},
    {"instruction": "Say what the cat eats.", "input": "the cat is happy", "output": "The cat eats fish."},
    {"instruction": "Count to three.", "input": "", "output": "one two three"},
    {"instruction": "Is the dog big?", "input": "a big dog runs", "output": "yes the dog is big"},
]

SHAREGPT = [
    {"id": "c0", "conversations": [{"from": "human", "value": "Who sits under the tree?"},
                                   {"from": "gpt", "value": "The small bird sits under the tree."},
                                   {"from": "human", "value": "Why?"},
                                   {"from": "gpt", "value": "The bird is sad."}]},
    {"id": "c1", "conversations": [{"from": "human", "value": "What is blue?"},
                                   {"from": "gpt", "value": "The river water is blue."}]},
    {"id": "c2", "conversations": [{"from": "human", "value": "Can the fish run?"},
                                   {"from": "gpt", "value": "no the fish can not run"}]},
]


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def write_eval_data(root: Path, seed: int = 0) -> Path:
    """The four benchmarks in the expected layout: enough train/dev rows for 25/10/5-shot prompts."""
    rng = random.Random(seed)

    def arc(i):
        labels = ["A", "B", "C", "D"]
        return {"id": f"arc{i}", "question": _sentence(rng, 6) + "?",
                "choices": {"text": [_sentence(rng, 3) for _ in labels], "label": labels},
                "answerKey": rng.choice(labels)}

    def hellaswag(i):
        return {"ind": i, "activity_label": "Cooking", "ctx_a": _sentence(rng, 6) + ".",
                "ctx_b": _sentence(rng, 3), "ctx": "", "endings": [_sentence(rng, 4) for _ in range(4)],
                "source_id": f"s{i}", "split": "val", "split_type": "indomain", "label": str(rng.randrange(4))}

    def mmlu(i, subject):
        return {"question": _sentence(rng, 7) + "?", "subject": subject,
                "choices": [_sentence(rng, 2) for _ in range(4)], "answer": rng.randrange(4)}

    def truthfulqa(i):
        choices = [_sentence(rng, 4) + "." for _ in range(4)]
        return {"question": _sentence(rng, 6) + "?",
                "mc1_targets": {"choices": choices, "labels": [1, 0, 0, 0]},
                "mc2_targets": {"choices": choices, "labels": [1, 1, 0, 0]}}

    files = {
        "arc_challenge/train.jsonl": [arc(i) for i in range(26)],
        "arc_challenge/test.jsonl": [arc(100 + i) for i in range(6)],
        "hellaswag/train.jsonl": [hellaswag(i) for i in range(11)],
        "hellaswag/validation.jsonl": [hellaswag(100 + i) for i in range(6)],
        "mmlu/dev.jsonl": [mmlu(i, s) for s in ("astronomy", "virology") for i in range(5)],
        "mmlu/test.jsonl": [mmlu(100 + i, s) for s in ("astronomy", "virology") for i in range(3)],
        "truthfulqa/validation.jsonl": [truthfulqa(i) for i in range(6)],
    }
    for rel, rows in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def write_instruction_data(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    alpaca, sharegpt = folder / "alpaca.json", folder / "sharegpt.json"
    alpaca.write_text(json.dumps(ALPACA, indent=1))
    sharegpt.write_text(json.dumps(SHAREGPT, indent=1))
    return alpaca, sharegpt


def corpus_texts(eval_root: Path) -> list[str]:
    """Every text the tests feed the tokenizer, so that the word-level vocabulary covers it."""
    from glora.llm.data import ALPACA_PROMPT, ALPACA_PROMPT_NO_INPUT, SHAREGPT_ASSISTANT, SHAREGPT_HUMAN

    texts = [ALPACA_PROMPT, ALPACA_PROMPT_NO_INPUT, SHAREGPT_HUMAN, SHAREGPT_ASSISTANT, " ".join(WORDS),
             "Question Answer A B C D Q The following are multiple choice questions with answers about",
             "astronomy virology Cooking"]
    texts += [json.dumps(r) for r in ALPACA + SHAREGPT]
    for path in sorted(eval_root.rglob("*.jsonl")):
        texts.append(path.read_text())
    from glora.llm.tasks import HERE

    texts.append((HERE / "glora_truthfulqa_mc2.yaml").read_text())
    return texts


def write_tokenizer(folder: Path, texts: list[str]) -> Path:
    """A word-level tokenizer trained on ``texts``, saved as a Hugging Face fast tokenizer (BOS added)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=specials, min_frequency=1))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B",
                                                       special_tokens=[("<s>", tok.token_to_id("<s>"))])
    tok.decoder = decoders.WordPiece()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>")
    fast.save_pretrained(folder)
    return folder


def write_tiny_llama(folder: Path, vocab_size: int, seed: int = 0, *, layers: int = 2) -> Path:
    """A randomly initialised LLaMA: hidden 32, 4 heads with 2 key/value heads (q, o: 32x32; k, v: 16x32)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         bos_token_id=1, eos_token_id=2, pad_token_id=3, tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    return folder


def build_all(root: Path) -> dict[str, Path]:
    """Model folder (weights + tokenizer), instruction files and evaluation data under ``root``."""
    from transformers import AutoTokenizer

    eval_root = write_eval_data(root / "eval")
    alpaca, sharegpt = write_instruction_data(root / "instructions")
    model = root / "tiny-llama"
    write_tokenizer(model, corpus_texts(eval_root))
    write_tiny_llama(model, len(AutoTokenizer.from_pretrained(model)))
    return {"model": model, "eval": eval_root, "alpaca": alpaca, "sharegpt": sharegpt}
