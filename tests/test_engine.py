"""The engine stages (pretrain, train, search, export, evaluate) on a fixture task: outputs, numerics, resume
after a kill, determinism, and clear errors on bad input."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from engine_fixtures import make_world
from safetensors.torch import load_file

from glora.cli import main
from glora.config import load_config


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("world"))


def cfg_args(world, *extra_overlays):
    args = []
    for path in [*world["config"], *extra_overlays]:
        args += ["--config", str(path)]
    return args


def overlay(tmp_path, name, data) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def rows(path: Path, drop=("seconds",)) -> list[dict]:
    with open(path) as f:
        return [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(f)]


def stage(world, *argv, extra=()) -> int:
    return main([argv[0], *cfg_args(world, *extra), "--quiet", "--device", "cpu", *argv[1:]])


def train_glora(world, out, extra=()):
    assert stage(world, "train", "--method", "glora", "--size", "tiny", "--task", "toy", "--out", str(out),
                 extra=extra) == 0


def test_all_stages_end_to_end(world, tmp_path, capsys):
    ckpt = tmp_path / "pre" / "vit_mini.safetensors"
    assert stage(world, "pretrain", "--data", str(world["root"]), "--out", str(ckpt)) == 0
    pre = json.loads((tmp_path / "pre" / "vit_mini.metrics.json").read_text())
    assert pre["upstream_classes"] == 4 and pre["train_images"] == 32 and 0 <= pre["final_val_acc"] <= 1
    assert len(rows(tmp_path / "pre" / "vit_mini.epochs.csv")) == 2
    use_pre = overlay(tmp_path, "pre", {"paths": {"checkpoint": str(ckpt)}})  # downstream loads the pre-trained file

    train = tmp_path / "train"
    train_glora(world, train, extra=[use_pre])
    metrics = json.loads((train / "metrics.json").read_text())
    assert metrics["train_split"] == "train800" and metrics["train_images"] == 48
    assert metrics["head_params"] == 4 * 128 + 4 and metrics["provenance"]["config_hash"]
    assert [r["epoch"] for r in rows(train / "epochs.csv")] == ["1", "2", "3"]
    assert not (train / "resume.pt").exists()

    search = tmp_path / "search"
    assert stage(world, "search", "--size", "tiny", "--task", "toy", "--weights", str(train / "weights.safetensors"),
                 "--out", str(search), extra=[use_pre]) == 0
    best = json.loads((search / "best.json").read_text())
    candidates = rows(search / "candidates.csv", drop=())
    assert len(candidates) == best["candidates_scored"] and 6 < len(candidates) <= 6 * 3
    assert all(int(c["params"]) <= 30_000 for c in candidates) and best["params"] <= 30_000
    assert len({c["choices"] for c in candidates}) == len(candidates)  # nothing scored twice
    assert best["val_acc"] == max(float(c["val_acc"]) for c in candidates)

    export = tmp_path / "export"
    assert stage(world, "export", "--method", "glora", "--size", "tiny", "--task", "toy", "--weights",
                 str(train / "weights.safetensors"), "--choices", str(search / "best.json"), "--out", str(export),
                 extra=[use_pre]) == 0
    card = json.loads((export / "card.json").read_text())
    assert card["merged"] and card["adapter_params"] == best["params"] and card["max_abs_logit_diff"] < 1e-4
    assert card["choices"] == best["choices"]
    plain = load_file(export / "model.safetensors")
    assert not any(k.endswith(("A_d", "B_u", "E")) for k in plain) and "blocks.0.attn.qkv.weight" in plain

    capsys.readouterr()
    result_path = tmp_path / "eval.json"
    assert stage(world, "evaluate", "--model", str(export / "model.safetensors"), "--supernet",
                 str(train / "weights.safetensors"), "--out", str(result_path), extra=[use_pre]) == 0
    result = json.loads(result_path.read_text())
    assert result["test"]["images"] == 32 and len(result["test"]["per_class"]) == 4
    assert result["supernet"]["top1"] == result["test"]["top1"] and result["supernet"]["same_predictions"] == 1.0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["top1"] == result["test"]["top1"]


def test_linear_probe_trains_on_train800val200_and_exports_unchanged(world, tmp_path):
    out = tmp_path / "linear"
    assert stage(world, "train", "--method", "linear", "--task", "toy", "--out", str(out)) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_split"] == "train800val200" and metrics["train_images"] == 64
    assert metrics["trainable_params"] == 0 and metrics["final_val_acc"] is None  # val200 is inside train
    assert set(load_file(out / "weights.safetensors")) == {"head.weight", "head.bias"}
    assert stage(world, "export", "--method", "linear", "--task", "toy", "--weights", str(out / "weights.safetensors"),
                 "--out", str(tmp_path / "export")) == 0
    assert json.loads((tmp_path / "export" / "card.json").read_text())["max_abs_logit_diff"] == 0.0


def test_few_shot_training_uses_the_shot_list_augmentation_and_mixup(world, tmp_path):
    out = tmp_path / "fewshot"
    assert stage(world, "train", "--method", "glora", "--size", "tiny", "--task", "toyshot", "--family", "fewshot",
                 "--shot", "2", "--out", str(out)) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_images"] == 8 and metrics["shot"] == 2 and metrics["final_val_acc"] is not None
    assert metrics["final_train_loss"] > 0.1  # soft (mixed, smoothed) targets keep the loss away from 0


def test_same_command_twice_gives_identical_results(world, tmp_path):
    for name in ("a", "b"):
        train_glora(world, tmp_path / name)
        assert stage(world, "search", "--size", "tiny", "--task", "toy", "--weights",
                     str(tmp_path / name / "weights.safetensors"), "--out", str(tmp_path / name / "search")) == 0
    a, b = load_file(tmp_path / "a" / "weights.safetensors"), load_file(tmp_path / "b" / "weights.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert rows(tmp_path / "a" / "epochs.csv") == rows(tmp_path / "b" / "epochs.csv")
    assert (tmp_path / "a" / "search" / "candidates.csv").read_text() == \
        (tmp_path / "b" / "search" / "candidates.csv").read_text()


def run_until_killed(argv: list[str], state: Path, cwd: Path) -> None:
    """Start ``python -m glora argv`` and SIGKILL it as soon as its resume ``state`` file appears."""
    proc = subprocess.Popen([sys.executable, "-m", "glora", *argv], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed; make it longer"


@pytest.mark.parametrize("stage_name", ["train", "search"])
def test_a_killed_run_resumes_to_the_same_result(world, tmp_path, stage_name):
    longer = overlay(tmp_path, "longer", {"train": {"epochs": 30, "checkpoint_every": 2},
                                          "search": {"iterations": 12}})
    common = ["--quiet", "--device", "cpu", *cfg_args(world, longer)]
    weights = tmp_path / "supernet" / "weights.safetensors"
    if stage_name == "search":
        train_glora(world, tmp_path / "supernet")
    argv = {"train": ["train", "--method", "glora", "--size", "tiny", "--task", "toy"],
            "search": ["search", "--size", "tiny", "--task", "toy", "--weights", str(weights)]}[stage_name]
    state = {"train": "resume.pt", "search": "search_state.json"}[stage_name]
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    run_until_killed([*argv, *common, "--out", str(killed)], killed / state, tmp_path)
    assert (killed / state).exists() and not (killed / "metrics.json").exists() and not (killed / "best.json").exists()
    assert main([*argv, *common, "--out", str(killed), "--log", str(tmp_path / "resumed.log")]) == 0  # resumes
    assert main([*argv, *common, "--out", str(clean)]) == 0   # uninterrupted
    assert not (killed / state).exists()
    assert "resuming" in (tmp_path / "resumed.log").read_text()  # said in the log, not in the results
    if stage_name == "train":
        a, b = load_file(killed / "weights.safetensors"), load_file(clean / "weights.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in b)
        for name in ("weights.safetensors", "metrics.json", "epochs.csv"):  # nothing tells them apart
            assert (killed / name).read_bytes() == (clean / name).read_bytes(), name
    else:
        assert (killed / "candidates.csv").read_text() == (clean / "candidates.csv").read_text()
        best = [json.loads((d / "best.json").read_text()) for d in (killed, clean)]
        assert best[0]["choices"] == best[1]["choices"] and best[0]["val_acc"] == best[1]["val_acc"]


def test_nan_loss_aborts_with_epoch_and_step_and_keeps_the_checkpoint(world, tmp_path, monkeypatch, capsys):
    import glora.fit

    real = glora.fit.F.cross_entropy
    calls = {"n": 0}

    def poisoned(logits, target):
        calls["n"] += 1
        loss = real(logits, target)
        return loss * float("nan") if calls["n"] == 2 * 3 + 2 else loss  # 3 steps per epoch: epoch 3, step 2

    monkeypatch.setattr(glora.fit.F, "cross_entropy", poisoned)
    out = tmp_path / "nan"
    assert stage(world, "train", "--method", "glora", "--size", "tiny", "--task", "toy", "--out", str(out)) == 3
    err = capsys.readouterr().err
    assert "loss is nan at epoch 3 step 2" in err and f"{out / 'resume.pt'} (epoch 2)" in err
    assert torch.load(out / "resume.pt", weights_only=True)["epoch"] == 2
    assert not (out / "weights.safetensors").exists()


@pytest.mark.parametrize("argv, extra, message", [
    (["train", "--method", "glora", "--size", "tiny", "--task", "toy"], {"paths": {"checkpoint": "/nope/ViT-B_16.npz"}},
     "/nope/ViT-B_16.npz"),
    (["train", "--method", "glora", "--size", "tiny", "--task", "cifar"], {}, "unknown VTAB task 'cifar'"),
    (["train", "--method", "glora", "--task", "toy"], {}, "GLoRA needs --size, one of ['tiny']"),
    (["train", "--method", "glora", "--size", "huge", "--task", "toy"], {}, "unknown GLoRA size 'huge'"),
    (["train", "--method", "lora99", "--task", "toy"], {}, "unknown method 'lora99'"),
    (["train", "--method", "linear", "--task", "toy"], {"train": {"epoch": 3}}, "train: Additional properties"),
    (["search", "--size", "tiny", "--task", "toy", "--weights", "/nope/w.safetensors"], {}, "/nope/w.safetensors"),
])
def test_bad_input_is_one_clear_error(world, tmp_path, capsys, argv, extra, message):
    extra_files = [overlay(tmp_path, "bad", extra)] if extra else []
    assert stage(world, *argv, "--out", str(tmp_path / "out"), extra=extra_files) == 2
    err = capsys.readouterr().err
    assert "\nerror: " in "\n" + err and message in err[err.index("error: "):], err  # log lines may come first


def test_budget_below_the_smallest_subnet_is_refused(world, tmp_path, capsys):
    train_glora(world, tmp_path / "t")
    assert stage(world, "search", "--size", "tiny", "--task", "toy", "--weights",
                 str(tmp_path / "t" / "weights.safetensors"), "--budget", "0", "--out", str(tmp_path / "s")) == 2
    assert "below the smallest subnet" in capsys.readouterr().err


def test_weights_of_another_run_are_refused(world, tmp_path, capsys):
    train_glora(world, tmp_path / "t")
    assert stage(world, "export", "--method", "linear", "--task", "toy", "--weights",
                 str(tmp_path / "t" / "weights.safetensors"), "--out", str(tmp_path / "e")) == 2
    assert "does not fit this model" in capsys.readouterr().err


def test_config_defaults_overlays_and_learning_rate_precedence(tmp_path):
    from glora.config import train_settings

    root = Path(__file__).resolve().parents[1]
    paper = load_config([root / "config.yaml"])
    assert paper["train"]["epochs"] == 500 and paper["search"]["population"] == 50
    assert train_settings(paper, "glora", "clevr_count")["lr"] == 1e-4  # Table 5
    assert train_settings(paper, "glora", "cifar")["lr"] == 5e-4
    over = overlay(tmp_path, "o", {"train": {"overrides": {"linear": {"lr": 1e-2, "lr_per_task": {"dtd": 3e-3}}}}})
    both = load_config([root / "config.yaml", over])
    assert train_settings(both, "linear", "clevr_count")["lr"] == 1e-2
    assert train_settings(both, "linear", "dtd")["lr"] == 3e-3
    assert train_settings(both, "glora", "clevr_count")["lr"] == 1e-4
    mini = load_config([root / "config.yaml", root / "config" / "mini.yaml"])
    assert mini["backbone"] == "vit_mini" and mini["search"]["mutation_prob"] == 0.2  # overlay keeps the rest
    with pytest.raises(ValueError, match=r"search: Additional properties are not allowed \('popsize'"):
        load_config([root / "config.yaml", overlay(tmp_path, "p", {"search": {"popsize": 3}})])


def test_set_overrides_a_setting_after_the_files(tmp_path):
    from glora.config import parse_override

    root = Path(__file__).resolve().parents[1]
    assert parse_override("paths.checkpoint=ckpt/swin.pth") == {"paths": {"checkpoint": "ckpt/swin.pth"}}
    config = load_config([root / "config.yaml"], ["backbone=swin_mini", "train.epochs=7", "search.seed=3"])
    assert config["backbone"] == "swin_mini" and config["train"]["epochs"] == 7 and config["search"]["seed"] == 3
    with pytest.raises(ValueError, match="--set expects KEY=VALUE"):
        parse_override("train.epochs")
    with pytest.raises(ValueError, match=r"(?s)--set train.epochs=many.*'many' is not of type 'integer'"):
        load_config([root / "config.yaml"], ["train.epochs=many"])


def test_checkpoint_stage_reports_a_loadable_file_and_names_a_missing_one(world, tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["checkpoint", "--backbone", "vit_mini", "--path", str(world["checkpoint"]), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["format"] == "safetensors" and report["skipped_head"] == ["head.weight", "head.bias"]
    assert main(["checkpoint", "--backbone", "vit_mini", "--path", str(tmp_path / "nope.safetensors")]) == 2
    assert "nope.safetensors" in capsys.readouterr().err


def test_swin_reductions_merged_with_a_bias_export_and_evaluate(world, tmp_path):
    """Swin's patch-merging reductions have no bias; a merged C/E term adds one, which the card lists."""
    from safetensors.torch import save_model

    import glora
    from glora.models import create_backbone

    ckpt = tmp_path / "swin_mini.safetensors"
    save_model(create_backbone("swin_mini", num_classes=7), str(ckpt))
    swin = overlay(tmp_path, "swin", {"backbone": "swin_mini", "paths": {"checkpoint": str(ckpt)},
                                      "train": {"epochs": 1, "warmup_epochs": 0}})
    train = tmp_path / "train"
    train_glora(world, train, extra=[swin])
    model = create_backbone("swin_mini", num_classes=4)
    glora.apply_glora(model, ranks=(4, 2))
    choices = {n: {"A": "none", "B": "lora2", "C": "vector", "D": "none", "E": "vector"}
               for n in glora.glora_layers(model)}
    (tmp_path / "choices.json").write_text(json.dumps(choices))
    assert stage(world, "export", "--method", "glora", "--size", "tiny", "--task", "toy", "--weights",
                 str(train / "weights.safetensors"), "--choices", str(tmp_path / "choices.json"), "--out",
                 str(tmp_path / "export"), extra=[swin]) == 0
    card = json.loads((tmp_path / "export" / "card.json").read_text())
    assert card["added_biases"] == ["layers.1.downsample.reduction", "layers.2.downsample.reduction"]
    assert stage(world, "evaluate", "--model", str(tmp_path / "export" / "model.safetensors"), "--supernet",
                 str(train / "weights.safetensors"), "--out", str(tmp_path / "eval.json"), extra=[swin]) == 0
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["supernet"]["same_predictions"] == 1.0
