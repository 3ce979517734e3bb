"""GLoRA on LLMs (Table 2) on a tiny random LLaMA: data, adaptation, training, search, export, lm-eval.

Everything is local: a word-level tokenizer and a 2-layer LLaMA written by the tests, tiny Alpaca/ShareGPT
files and a handful of rows of each benchmark (tests/llm_fixtures.py). Nothing is fetched from a hub.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("lm_eval")

import llm_fixtures  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from torch import nn  # noqa: E402

import glora  # noqa: E402
from glora.cli import main  # noqa: E402
from glora.llm import data as llm_data  # noqa: E402
from glora.llm.config import DEFAULTS, llm_settings  # noqa: E402
from glora.llm.model import adapt, load_causal_lm, load_tokenizer  # noqa: E402
from glora.llm.tasks import BENCHMARKS, write_task_configs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

#: settings small enough for 2 CPU cores: a few optimizer steps, a two-generation search
TINY = {
    "max_length": 128,
    "train": {"lr": 3.0e-3, "batch_size": 4, "micro_batch_size": 2, "epochs": {"glora": 3, "lora": 2},
              "checkpoint_every": 1, "log_every": 1},
    "search": {"population": 4, "parents": 2, "mutations": 2, "crossovers": 2, "iterations": 1, "fraction": 0.5},
    "export": {"verify_tokens": 16},
}


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """Model folder (tiny LLaMA + tokenizer), instruction files and evaluation data."""
    return llm_fixtures.build_all(tmp_path_factory.mktemp("llm"))


@pytest.fixture(scope="module")
def tokenizer(local):
    return load_tokenizer(local["model"])


def _run_config(tmp_path: Path, overlay: dict) -> list[str]:
    path = tmp_path / "llm.yaml"
    path.write_text(yaml.safe_dump({"llm": overlay}))
    return ["--config", str(ROOT / "config.yaml"), "--config", str(path)]


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------

def test_defaults_are_the_papers_hyperparameters():
    s = llm_settings()
    assert s["train"]["lr"] == 2e-5 and s["train"]["schedule"] == "cosine" and s["train"]["batch_size"] == 32
    assert s["train"]["epochs"] == {"lora": 3, "glora": 15}
    assert s["search"]["iterations"] == 5 and s["search"]["fraction"] == 0.05 and s["search"]["population"] == 50
    assert s["evaluate"]["shots"] == {"arc": 25, "hellaswag": 10, "mmlu": 5, "truthfulqa": 0}
    assert s["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
    merged = llm_settings({"train": {"epochs": {"glora": 1}}, "search": {"shots": {"arc": 25}}})
    assert merged["train"]["epochs"] == {"lora": 3, "glora": 1} and merged["search"]["shots"]["arc"] == 25
    assert DEFAULTS["train"]["epochs"]["glora"] == 15  # not modified by the overlay
    with pytest.raises(ValueError, match=r"unknown setting llm\.train\.learning_rate"):
        llm_settings({"train": {"learning_rate": 1}})
    with pytest.raises(ValueError, match="multiple of micro_batch_size"):
        llm_settings({"train": {"batch_size": 30, "micro_batch_size": 4}})


# ---------------------------------------------------------------------------------------------
# Data: templates, label masking, errors
# ---------------------------------------------------------------------------------------------

def _labelled_text(tokenizer, example) -> str:
    return tokenizer.decode([t for t, y in zip(example.input_ids, example.labels) if y != -100])


def test_alpaca_template_and_label_masking(tokenizer):
    record = {"instruction": "Add the numbers.", "input": "two and three", "output": "five"}
    segments = llm_data.alpaca_segments(record, tokenizer.eos_token)
    assert segments[0].text == (
        "Below is an instruction that describes a task, paired with an input that provides further context. "
        "Write a response that appropriately completes the request.\n\n### Instruction:\nAdd the numbers.\n\n"
        "### Input:\ntwo and three\n\n### Response:")
    assert segments[1].text == "five</s>" and segments[1].train and not segments[0].train
    no_input = llm_data.alpaca_segments({"instruction": "Count to three.", "input": "", "output": "one two three"},
                                        "</s>")
    assert no_input[0].text == ("Below is an instruction that describes a task. Write a response that appropriately "
                                "completes the request.\n\n### Instruction:\nCount to three.\n\n### Response:")
    example = llm_data.tokenize_segments(tokenizer, segments, max_length=256)
    assert example.input_ids[0] == tokenizer.bos_token_id and example.labels[0] == -100
    whole = tokenizer(segments[0].text + segments[1].text)["input_ids"]
    assert example.input_ids == whole
    prompt_len = len(tokenizer(segments[0].text)["input_ids"])
    assert example.labels[:prompt_len] == [-100] * prompt_len
    assert example.labels[prompt_len:] == example.input_ids[prompt_len:]
    assert example.input_ids[-1] == tokenizer.eos_token_id and _labelled_text(tokenizer, example) == "five </s>"


def test_sharegpt_template_and_label_masking(tokenizer):
    record = llm_fixtures.SHAREGPT[0]
    segments = llm_data.sharegpt_segments(record, tokenizer.eos_token)
    text = "".join(s.text for s in segments)
    assert text == ("### Human: Who sits under the tree?\n### Assistant: The small bird sits under the tree.</s>\n"
                    "### Human: Why?\n### Assistant: The bird is sad.</s>")
    example = llm_data.tokenize_segments(tokenizer, segments, max_length=256)
    answers = [t for t, y in zip(example.input_ids, example.labels) if y != -100]
    expected = (tokenizer("The small bird sits under the tree.</s>", add_special_tokens=False)["input_ids"]
                + tokenizer("The bird is sad.</s>", add_special_tokens=False)["input_ids"])
    assert answers == expected
    assert example.trained_tokens == len(expected) < len(example.input_ids)
    # truncation keeps the prompt's masking and cuts the responses
    short = llm_data.tokenize_segments(tokenizer, segments, max_length=12)
    assert len(short.input_ids) == 12 and short.labels == example.labels[:12]


def test_collate_pads_right_and_masks_padding(tokenizer, local):
    examples, summary = llm_data.load_examples(local["alpaca"], "alpaca", tokenizer, max_length=64)
    assert summary["records"] == summary["examples"] == len(llm_fixtures.ALPACA) and summary["skipped"] == 0
    batch = llm_data.collate(examples[:3], pad_id=tokenizer.pad_token_id)
    width = max(len(e.input_ids) for e in examples[:3])
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape == (3, width)
    for i, e in enumerate(examples[:3]):
        assert batch["attention_mask"][i].sum() == len(e.input_ids)
        assert (batch["labels"][i, len(e.input_ids):] == -100).all()


def test_malformed_instruction_records_are_named(tmp_path, tokenizer):
    bad = tmp_path / "alpaca.json"
    bad.write_text(json.dumps([{"instruction": "a", "input": "", "output": "b"}, {"instruction": "c", "input": ""}]))
    with pytest.raises(ValueError, match=rf"{bad}: record 1: missing key 'output'"):
        llm_data.load_examples(bad, "alpaca", tokenizer, 64)
    bad.write_text(json.dumps([{"instruction": ["not", "text"], "output": "b"}]))
    with pytest.raises(ValueError, match=rf"{bad}: record 0: 'instruction' must be a string"):
        llm_data.load_examples(bad, "alpaca", tokenizer, 64)
    chat = tmp_path / "sharegpt.json"
    turns = [{"from": "human", "value": "hi"}, {"from": "robot", "value": "x"}]
    chat.write_text(json.dumps([{"conversations": turns}]))
    with pytest.raises(ValueError, match=rf"{chat}: record 0, turn 1: unknown speaker 'robot'"):
        llm_data.load_examples(chat, "sharegpt", tokenizer, 64)
    chat.write_text(json.dumps([{"conversations": [{"from": "human"}]}]))
    with pytest.raises(ValueError, match=rf"{chat}: record 0, turn 0: a turn needs 'from' and 'value'"):
        llm_data.load_examples(chat, "sharegpt", tokenizer, 64)
    chat.write_text(json.dumps({"conversations": []}))
    with pytest.raises(ValueError, match=rf"{chat} must hold a JSON list of records"):
        llm_data.load_examples(chat, "sharegpt", tokenizer, 64)
    chat.write_text("[{")
    with pytest.raises(ValueError, match=rf"{chat} is not valid JSON"):
        llm_data.load_examples(chat, "sharegpt", tokenizer, 64)


# ---------------------------------------------------------------------------------------------
# Adaptation: parameter counts, search space, merge
# ---------------------------------------------------------------------------------------------

def _glora_params(out: int, inp: int, r: int) -> int:
    """Trainable GLoRA tensors of one bias-free linear: A_d, A_u, B_d, B_u, C_d, C_u, E (D is unused)."""
    return 2 * (out * r + r * inp) + (inp * r + r) + out


def test_trainable_parameter_counts_glora_and_lora(local):
    # q, o: 32 -> 32; k, v: 32 -> 16 (2 key/value heads of 8); 2 layers
    shapes = [(32, 32), (16, 32), (16, 32), (32, 32)]
    model = load_causal_lm(local["model"])
    names = adapt(model, "glora", llm_settings())
    assert names == [f"model.layers.{i}.self_attn.{p}_proj" for i in range(2) for p in "qkvo"]
    assert all(isinstance(model.get_submodule(n), glora.GLoRALinear) for n in names)
    expected = 2 * sum(_glora_params(o, i, 8) for o, i in shapes)
    assert expected == 9472
    assert glora.methods.count_trainable(model) == expected
    assert all(".self_attn." in n for n, p in model.named_parameters() if p.requires_grad)
    assert not model.lm_head.weight.requires_grad and not model.model.embed_tokens.weight.requires_grad

    lora = load_causal_lm(local["model"])
    glora.methods.apply("lora", lora, rank=8, alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    expected_lora = 2 * sum(8 * (o + i) for o, i in shapes)
    assert expected_lora == 3584 and glora.methods.count_trainable(lora) == expected_lora


def test_lora_default_targets_are_unchanged_on_vits(vit_mini):
    # the LLM's target_modules is an extension: without it LoRA still adapts the ViT's fused qkv only
    from glora.methods.lora.layer import LoRALinear

    glora.methods.apply("lora", vit_mini, rank=4)
    assert {n for n, m in vit_mini.named_modules() if isinstance(m, LoRALinear)} == {
        f"blocks.{i}.attn.qkv" for i in range(len(vit_mini.blocks))}


def test_glora_on_bias_free_linears_search_space_and_merge(local):
    torch.manual_seed(0)
    model = load_causal_lm(local["model"])
    adapt(model, "glora", llm_settings())
    for layer in glora.glora_layers(model).values():  # move off the all-zero start so every term matters
        for p in layer.support_tensors().values():
            if p.requires_grad:
                p.data.normal_(0, 0.05)
        assert layer.bias is None and layer.options["D"] == ("none",)
    space = glora.SearchSpace.from_model(model)
    assert len(space) == 8 and space.size() == (5 * 5 * 4 * 1 * 3) ** 8
    assert space.max_params() == glora.methods.count_trainable(model)  # every trainable tensor is reachable
    ids = torch.randint(0, model.config.vocab_size, (2, 9))
    for seed in range(4):
        choices = space.sample(seed)
        glora.set_choices(model, choices)
        with torch.no_grad():
            adapted = model(input_ids=ids).logits
            plain = glora.merge_glora(model, choices)(input_ids=ids).logits
        assert not any(isinstance(m, glora.GLoRALinear) for m in glora.merge_glora(model, choices).modules())
        torch.testing.assert_close(plain, adapted, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# The lm-eval tasks: same prompts and metrics as lm-eval's own, local files, shots
# ---------------------------------------------------------------------------------------------

class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")


def _lm_eval_yaml(path: Path) -> dict:
    data = yaml.load(path.read_text(), Loader=_Loader)
    include = data.pop("include", None)
    return {**(_lm_eval_yaml(path.parent / include) if include else {}), **data}


def test_local_tasks_have_lm_evals_prompts_and_metrics():
    import lm_eval

    tasks = Path(lm_eval.__file__).parent / "tasks"
    twins = {"arc": tasks / "arc" / "arc_challenge.yaml", "hellaswag": tasks / "hellaswag" / "hellaswag.yaml",
             "mmlu": tasks / "mmlu" / "default" / "mmlu_astronomy.yaml",
             "truthfulqa": tasks / "truthfulqa" / "truthfulqa_mc2.yaml"}
    for name, path in twins.items():
        ours, theirs = _lm_eval_yaml(BENCHMARKS[name].yaml_path), _lm_eval_yaml(path)
        assert ours["dataset_path"] == "json" and "data_files" in ours["dataset_kwargs"]
        for key in ("output_type", "doc_to_text", "doc_to_target", "doc_to_choice", "fewshot_config"):
            assert ours.get(key) == theirs.get(key), (name, key)
        assert [m["metric"] for m in ours["metric_list"]] == [m["metric"] for m in theirs["metric_list"]]
        assert BENCHMARKS[name].metric in [m["metric"] for m in ours["metric_list"]]
    assert _lm_eval_yaml(twins["mmlu"])["fewshot_split"] == "dev" == _lm_eval_yaml(BENCHMARKS["mmlu"].yaml_path)[
        "fewshot_split"]


def test_hellaswag_and_mc2_processing_equal_lm_evals():
    from lm_eval.tasks.hellaswag import utils as hs_theirs
    from lm_eval.tasks.truthfulqa import utils as tqa_theirs

    from glora.llm.tasks import utils as ours

    doc = {"activity_label": "Making a cake", "ctx_a": "A woman [title] mixes  flour.", "ctx_b": "she then",
           "endings": [" bakes it [step] well.", "eats  it", "runs [header] away", "sleeps"], "label": "2"}
    import datasets

    theirs = hs_theirs.process_docs(datasets.Dataset.from_list([doc]))[0]
    mine = ours.hellaswag_doc(doc)
    assert {k: theirs[k] for k in mine} == mine
    results = [(-1.5, False), (-0.2, True), (-3.0, False), (-2.2, False)]
    doc = {"mc2_targets": {"choices": list("abcd"), "labels": [1, 1, 0, 0]}}
    assert math.isclose(ours.process_results_mc2(doc, results)["acc"],
                        tqa_theirs.process_results_mc2(doc, results)["acc"], rel_tol=1e-12)


def test_task_configs_register_with_lm_eval_and_use_the_shots(local, tmp_path):
    from glora.llm.tasks import load_tasks, task_manager

    names = write_task_configs(local["eval"], tmp_path / "tasks")
    assert names == {"arc": ["glora_arc_challenge"], "hellaswag": ["glora_hellaswag"],
                     "mmlu": ["glora_mmlu_astronomy", "glora_mmlu_virology"], "truthfulqa": ["glora_truthfulqa_mc2"]}
    tasks = load_tasks(task_manager(tmp_path / "tasks"), [t for group in names.values() for t in group])
    counts = {}
    for name, task in tasks.items():
        task.set_fewshot_seed(seed=1234)
        doc = task.eval_docs[0]
        context = task.fewshot_context(doc, num_fewshot=task.config.num_fewshot)
        counts[name] = (task.config.num_fewshot, len(task.eval_docs), context)
    assert counts["glora_arc_challenge"][:2] == (25, 6) and counts["glora_arc_challenge"][2].count("Question:") == 26
    assert counts["glora_hellaswag"][:2] == (10, 6) and counts["glora_hellaswag"][2].count("Cooking:") == 11
    astronomy = counts["glora_mmlu_astronomy"]
    assert astronomy[:2] == (5, 3) and astronomy[2].count("Answer:") == 6
    assert astronomy[2].startswith("The following are multiple choice questions (with answers) about astronomy.\n\n")
    assert counts["glora_truthfulqa_mc2"][:2] == (0, 6) and counts["glora_truthfulqa_mc2"][2].count("\nQ: ") == 6


def test_missing_eval_file_is_named(local, tmp_path, capsys):
    import shutil

    from glora.llm.evaluate import run_llm_evaluate

    broken = tmp_path / "eval"
    shutil.copytree(local["eval"], broken)
    (broken / "hellaswag" / "train.jsonl").unlink()
    with pytest.raises(ValueError, match=rf"evaluation file {broken / 'hellaswag' / 'train.jsonl'} \(or \.json\) "
                                         "does not exist: HellaSwag acc_norm needs train.jsonl, validation.jsonl"):
        write_task_configs(broken, tmp_path / "tasks")
    with pytest.raises(ValueError, match=r"hellaswag/train\.jsonl"):
        run_llm_evaluate({}, local["model"], broken, tmp_path / "scores.json", device="cpu")
    code = main(["llm-evaluate", "--model", str(local["model"]), "--eval-data", str(broken), "--out",
                 str(tmp_path / "scores.json"), "--device", "cpu", "--config", str(ROOT / "config.yaml")])
    assert code == 2 and "error: evaluation file" in capsys.readouterr().err and not (tmp_path / "scores.json").exists()
    with pytest.raises(ValueError, match=r"evaluation data folder .*nowhere does not exist"):
        write_task_configs(tmp_path / "nowhere", tmp_path / "tasks")
    with pytest.raises(ValueError, match=r"model folder .*no-model does not exist"):
        load_tokenizer(tmp_path / "no-model")


# ---------------------------------------------------------------------------------------------
# The stages end to end, through the CLI
# ---------------------------------------------------------------------------------------------

def test_train_search_export_evaluate_end_to_end(local, tmp_path, capsys):
    from transformers import AutoModelForCausalLM

    from glora.llm.model import load_adapted

    cfg = _run_config(tmp_path, TINY)
    out = tmp_path / "runs"
    # supernet on Alpaca
    assert main(["llm-train", "--method", "glora", "--model", str(local["model"]), "--data", str(local["alpaca"]),
                 "--out", str(out / "glora"), "--device", "cpu", "--quiet", *cfg]) == 0
    metrics = json.loads((out / "glora" / "metrics.json").read_text())
    assert metrics["trainable_params"] == 9472 and metrics["optimizer_steps"] == 3 * 2  # 6 examples / 4 per step
    assert metrics["gradient_accumulation"] == 2 and metrics["data"]["examples"] == 6
    losses = [row["loss"] for row in _csv(out / "glora" / "steps.csv")]
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]
    assert [float(r["lr"]) for r in _csv(out / "glora" / "steps.csv")][0] == pytest.approx(3e-3)
    assert not (out / "glora" / "resume.pt").exists() and metrics["provenance"]["versions"]["lm_eval"]
    supernet, method, meta = load_adapted(local["model"], out / "glora" / "weights.safetensors")
    assert method == "glora" and json.loads(meta["method_kwargs"]) == {"ranks": [8, 4]}
    assert any(p.abs().sum() > 0 for layer in glora.glora_layers(supernet).values() for p in (layer.A_d, layer.E))

    # LoRA on ShareGPT, the same hyperparameters
    assert main(["llm-train", "--method", "lora", "--model", str(local["model"]), "--data", str(local["sharegpt"]),
                 "--out", str(out / "lora"), "--device", "cpu", "--quiet", *cfg]) == 0
    lora_metrics = json.loads((out / "lora" / "metrics.json").read_text())
    assert lora_metrics["trainable_params"] == 3584 and lora_metrics["optimizer_steps"] == 2 * 1
    assert lora_metrics["data"]["format"] == "sharegpt"

    # search: generation 0 (4 random subnets) and one iteration
    assert main(["llm-search", "--model", str(local["model"]), "--weights", str(out / "glora" / "weights.safetensors"),
                 "--eval-data", str(local["eval"]), "--out", str(out / "search"), "--device", "cpu", "--quiet",
                 *cfg]) == 0
    best = json.loads((out / "search" / "best.json").read_text())
    assert best["candidates_scored"] >= 5 and len(best["choices"]) == 8
    assert set(best["val_scores"]) == {"arc", "hellaswag", "mmlu", "truthfulqa", "average"}
    assert all(0 <= v <= 1 for v in best["val_scores"].values())
    assert best["val_score"] == pytest.approx(best["val_scores"]["average"])
    assert best["held_out_docs"] == {"arc": 3, "hellaswag": 3, "mmlu": 3, "truthfulqa": 3}  # 50% of 6 each
    assert len(_csv(out / "search" / "candidates.csv")) == best["candidates_scored"]

    # export: a plain model folder that from_pretrained loads, with the supernet's logits under the choices
    assert main(["llm-export", "--model", str(local["model"]), "--weights", str(out / "glora" / "weights.safetensors"),
                 "--choices", str(out / "search" / "best.json"), "--out", str(out / "export" / "glora"), "--quiet",
                 *cfg]) == 0
    card = json.loads((out / "export" / "glora" / "card.json").read_text())
    plain = AutoModelForCausalLM.from_pretrained(out / "export" / "glora", local_files_only=True).eval()
    assert not any(isinstance(m, glora.GLoRALinear) for m in plain.modules())
    glora.set_choices(supernet, best["choices"])
    ids = torch.randint(0, plain.config.vocab_size, (2, 11), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(plain(input_ids=ids).logits, supernet(input_ids=ids).logits, atol=1e-4, rtol=1e-4)
    uses_bias = any(c["C"] != "none" or c["E"] != "none" for c in best["choices"].values())
    assert plain.config.attention_bias == uses_bias and card["bias_switches"] == (["attention_bias"] if uses_bias
                                                                                   else [])
    assert card["max_abs_logit_diff"] < 1e-4 and card["dtype"] == "float32"
    assert (out / "export" / "glora" / "tokenizer.json").is_file()

    assert main(["llm-export", "--model", str(local["model"]), "--weights", str(out / "lora" / "weights.safetensors"),
                 "--out", str(out / "export" / "lora"), "--quiet", *cfg]) == 0
    lora_plain = AutoModelForCausalLM.from_pretrained(out / "export" / "lora", local_files_only=True)
    assert not lora_plain.config.attention_bias and isinstance(lora_plain.model.layers[0].self_attn.q_proj, nn.Linear)

    # evaluate through lm-eval with the leaderboard's shot counts
    capsys.readouterr()
    assert main(["llm-evaluate", "--model", str(out / "export" / "glora"), "--eval-data", str(local["eval"]),
                 "--out", str(out / "scores" / "glora.json"), "--device", "cpu", "--quiet", *cfg]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    result = json.loads((out / "scores" / "glora.json").read_text())
    assert set(result["scores"]) == {"arc", "hellaswag", "mmlu", "truthfulqa", "average", "mmlu_weighted"}
    assert printed == result["scores"] and all(0 <= v <= 1 for v in result["scores"].values())
    four = [result["scores"][b] for b in ("arc", "hellaswag", "mmlu", "truthfulqa")]
    assert result["scores"]["average"] == pytest.approx(sum(four) / 4)
    assert result["shots"] == {"arc": 25, "hellaswag": 10, "mmlu": 5, "truthfulqa": 0}
    assert result["docs"] == {"arc": 6, "hellaswag": 6, "mmlu": 6, "truthfulqa": 6}
    assert result["method"] == "glora" and result["provenance"]["git_commit"] is not None
    tasks = result["tasks"]
    assert result["scores"]["arc"] == tasks["glora_arc_challenge"]["acc_norm,none"]
    assert result["scores"]["mmlu"] == pytest.approx((tasks["glora_mmlu_astronomy"]["acc,none"]
                                                      + tasks["glora_mmlu_virology"]["acc,none"]) / 2)
    assert result["scores"]["truthfulqa"] == tasks["glora_truthfulqa_mc2"]["acc,none"]


def _csv(path: Path) -> list[dict]:
    import csv

    with open(path) as f:
        return [{k: float(v) if k in ("loss", "lr", "val_acc") else v for k, v in row.items()} for row in
                csv.DictReader(f)]


def test_training_resumes_to_identical_weights(local, tmp_path):
    """A run killed after optimizer step 2 of 6 and restarted ends with the uninterrupted run's adapters."""
    from glora.llm.train import fit_lm, glora_path_sampler

    tokenizer = load_tokenizer(local["model"])
    examples, _ = llm_data.load_examples(local["alpaca"], "alpaca", tokenizer, 64)
    settings = llm_settings(TINY)["train"]

    def run(checkpoint: Path, kill_after: int | None = None):
        torch.manual_seed(0)
        model = load_causal_lm(local["model"])
        adapt(model, "glora", llm_settings())
        sampler, calls = glora_path_sampler(model), []

        def before(generator):
            calls.append(1)
            if kill_after is not None and len(calls) > kill_after:
                raise KeyboardInterrupt
            sampler(generator)

        fit_lm(model, examples, settings, epochs=3, pad_id=tokenizer.pad_token_id, device=torch.device("cpu"),
               checkpoint=checkpoint, fingerprint="f", before_micro=before)
        return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    reference = run(tmp_path / "a.pt")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b.pt", kill_after=4)  # steps of 4 + 2 examples: 3 micro-batches an epoch; dies in step 3
    assert torch.load(tmp_path / "b.pt", weights_only=True)["step"] == 2
    resumed = run(tmp_path / "b.pt")
    for name, tensor in reference.items():
        torch.testing.assert_close(resumed[name], tensor, atol=0, rtol=0)
