"""Instruction data for the LLM experiment (Sec. 3.2): Alpaca and ShareGPT from local JSON files.

Alpaca: a JSON list of ``{"instruction", "input", "output"}``, in Stanford Alpaca's prompt (with and without
input); ShareGPT: a JSON list of ``{"conversations": [{"from": "human"|"gpt", "value"}, ...]}`` in a plain
multi-turn ``### Human: ... ### Assistant: ...`` template. Every response ends with the tokenizer's EOS.

An :class:`Example` holds ``input_ids`` (T,) and ``labels`` (T,): the token ids, and the same ids with -100 on
every prompt token (instruction, input, human turns, role markers, BOS), so the causal-LM loss covers the
responses only. Tokens are labelled from character spans through the fast tokenizer's offsets: the text is
tokenised once, as the model will see it, with no re-tokenisation at segment boundaries.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from glora.errors import ConfigError, DataError, WeightsError

log = logging.getLogger(__name__)

IGNORE_INDEX = -100

ALPACA_PROMPT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)
ALPACA_PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:"
)
SHAREGPT_HUMAN = "### Human: "
SHAREGPT_ASSISTANT = "### Assistant: "

#: ShareGPT speaker names -> role (the common exports use human/gpt; user/assistant/chatgpt/bing also occur)
ROLES = {"human": "human", "user": "human", "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant",
         "bing": "assistant", "system": "system"}

FORMATS = ("alpaca", "sharegpt")


@dataclass(frozen=True)
class Segment:
    """A piece of a training text; ``train`` marks response text (labelled), the rest is prompt (-100)."""

    text: str
    train: bool


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]

    @property
    def trained_tokens(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)


# ---------------------------------------------------------------------------------------------
# Records -> segments
# ---------------------------------------------------------------------------------------------

def _where(path, index: int) -> str:
    return f"{path}: record {index}"


def alpaca_prompt(instruction: str, input: str = "") -> str:
    """Stanford Alpaca's prompt (with input when it is not empty); the response follows it directly, as in
    Stanford Alpaca's training code."""
    if input != "":
        return ALPACA_PROMPT.format(instruction=instruction, input=input)
    return ALPACA_PROMPT_NO_INPUT.format(instruction=instruction)


def alpaca_segments(record, eos: str, where: str = "") -> list[Segment]:
    """``{"instruction", "input" (optional), "output"}`` -> prompt + (output + EOS)."""
    if not isinstance(record, dict):
        raise DataError(f"{where}: an Alpaca record must be an object with instruction/input/output, "
                        f"got {type(record).__name__}")
    for key in ("instruction", "output"):
        if key not in record:
            raise DataError(f"{where}: missing key {key!r} (an Alpaca record has instruction, input, output)")
    for key in ("instruction", "input", "output"):
        if key in record and not isinstance(record[key], str):
            raise DataError(f"{where}: {key!r} must be a string, got {type(record[key]).__name__}")
    return [Segment(alpaca_prompt(record["instruction"], record.get("input", "")), False),
            Segment(record["output"] + eos, True)]


def sharegpt_segments(record, eos: str, where: str = "") -> list[Segment]:
    """``{"conversations": [{"from", "value"}, ...]}`` -> ``### Human: ...\\n### Assistant: `` prompts and
    (answer + EOS) responses; a system turn is a prompt prefix, a leading assistant turn is dropped."""
    if not isinstance(record, dict) or "conversations" not in record:
        raise DataError(f"{where}: a ShareGPT record must be an object with a 'conversations' list")
    turns = record["conversations"]
    if not isinstance(turns, list):
        raise DataError(f"{where}: 'conversations' must be a list of {{from, value}} turns")
    segments: list[Segment] = []
    for t, turn in enumerate(turns):
        if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
            raise DataError(f"{where}, turn {t}: a turn needs 'from' and 'value', got {turn!r:.80}")
        if turn["from"] not in ROLES:
            raise DataError(f"{where}, turn {t}: unknown speaker {turn['from']!r}; known: {sorted(ROLES)}")
        if not isinstance(turn["value"], str):
            raise DataError(f"{where}, turn {t}: 'value' must be a string")
        role = ROLES[turn["from"]]
        if role == "system":
            segments.append(Segment(turn["value"].strip() + "\n", False))
        elif role == "human":
            segments.append(Segment(f"{SHAREGPT_HUMAN}{turn['value']}\n{SHAREGPT_ASSISTANT}", False))
        elif segments and not segments[-1].train:  # an answer to the prompt before it
            if not segments[-1].text.endswith(SHAREGPT_ASSISTANT):
                segments.append(Segment(SHAREGPT_ASSISTANT, False))
            segments.append(Segment(turn["value"] + eos, True))
            segments.append(Segment("\n", False))
        elif segments:  # two assistant turns in a row: the second one gets its own marker
            segments.append(Segment(SHAREGPT_ASSISTANT, False))
            segments.append(Segment(turn["value"] + eos, True))
            segments.append(Segment("\n", False))
        # else: an assistant turn before any prompt (some exports start with the bot's greeting): dropped
    while segments and not segments[-1].train:  # a trailing unanswered prompt teaches nothing
        segments.pop()
    return segments


def read_records(path: str | Path) -> list:
    """The JSON list of a file; a ``ValueError`` names the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"instruction data file {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(data, list):
        raise DataError(f"{path} must hold a JSON list of records, got {type(data).__name__}")
    return data


def record_segments(path: str | Path, fmt: str, eos: str) -> Iterator[tuple[int, list[Segment]]]:
    """(index, segments) of every record of ``path`` in format ``fmt`` (alpaca or sharegpt)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown instruction format {fmt!r}; expected one of {FORMATS}")
    build = alpaca_segments if fmt == "alpaca" else sharegpt_segments
    for i, record in enumerate(read_records(path)):
        yield i, build(record, eos, _where(path, i))


# ---------------------------------------------------------------------------------------------
# Segments -> token ids and labels
# ---------------------------------------------------------------------------------------------

def tokenize_segments(tokenizer, segments: Sequence[Segment], max_length: int) -> Example:
    """Token ids of the joined text (BOS as the tokenizer adds it) and labels -100 outside the responses.

    A token is a response token when any of its characters lies in a ``train`` segment (SentencePiece's
    ``▁The`` starts at the space that ends the prompt). Truncated to ``max_length`` tokens from the right.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise WeightsError("the LLM data pipeline needs a fast tokenizer (tokenizer.json) for character offsets")
    text, spans, start = "", [], 0
    for seg in segments:
        text += seg.text
        if seg.train:
            spans.append((start, start + len(seg.text)))
        start += len(seg.text)
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=True, truncation=True,
                    max_length=max_length)
    ids, labels = enc["input_ids"], []
    for token, (lo, hi) in zip(ids, enc["offset_mapping"]):
        trained = hi > lo and any(lo < b and hi > a for a, b in spans)
        labels.append(token if trained else IGNORE_INDEX)
    return Example(list(ids), labels)


def load_examples(path: str | Path, fmt: str, tokenizer, max_length: int) -> tuple[list[Example], dict]:
    """Tokenised examples of an instruction file and a summary (records, kept, skipped, tokens).

    Records whose responses are cut away entirely by ``max_length`` (or that have none) are skipped.
    """
    eos = tokenizer.eos_token
    if not eos:
        raise WeightsError("the tokenizer has no EOS token; responses must end with one")
    examples, skipped = [], 0
    records = 0
    for _, segments in record_segments(path, fmt, eos):
        records += 1
        example = tokenize_segments(tokenizer, segments, max_length) if segments else None
        if example is None or not example.trained_tokens:
            skipped += 1
            continue
        examples.append(example)
    if not examples:
        raise DataError(f"{path}: none of the {records} records has a response within max_length={max_length}")
    if skipped:
        log.warning("%s: skipped %d of %d records without response tokens (max_length %d)", path, skipped, records,
                    max_length)
    summary = {"path": str(path), "format": fmt, "records": records, "examples": len(examples), "skipped": skipped,
               "tokens": sum(len(e.input_ids) for e in examples),
               "trained_tokens": sum(e.trained_tokens for e in examples)}
    return examples, summary


def collate(examples: Sequence[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``, ``attention_mask``, ``labels``: (B, T) int64, T the longest example."""
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        labels[i, :n] = torch.tensor(e.labels)
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
