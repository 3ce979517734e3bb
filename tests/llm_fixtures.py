"""Tiny local stand-ins for the LLM experiment: the mini suite's builders (:mod:`glora.llm.mini`)."""

from glora.llm.mini import (  # noqa: F401
                            ALPACA,
                            SHAREGPT,
                            WORDS,
                            build_all,
                            corpus_texts,
                            write_eval_data,
                            write_instruction_data,
                            write_tiny_llama,
                            write_tokenizer,
)
