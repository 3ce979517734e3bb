"""The supernet's learning rate is a setting of its own, and with ``train.supernet_lr_grid`` it is chosen per
task on val200 (Table 5 as the paper made it): one supernet and one search per rate, the rate whose searched
subnet scores best on val200 is kept, never a test score."""

import json
import re

import pytest
from test_cli_and_workflow import job_counts, snakemake, workflow_copy  # noqa: F401  (fixture)

from glora.cli import main
from glora.config import load_config, train_settings
from glora.workflow import Job, lr_candidates, lr_grid, stage_args, train_params

MINI = ["config.yaml", "config/mini.yaml"]


def test_the_supernet_rate_differs_from_the_fixed_methods_rate():
    config = load_config(["config.yaml"], ["train.lr=0.003", "train.supernet_lr=0.0007", "train.lr_per_task={}"])
    assert train_settings(config, "glora", "digits")["lr"] == 0.0007  # a supernet
    assert train_settings(config, "glora", "digits", supernet=False)["lr"] == 0.003  # a fixed GLoRA subnet
    assert train_settings(config, "glora", "digits", supernet=False)["epochs"] == config["train"]["baseline_epochs"]
    # the methods' own rates win: NOAH's supernet and retraining, LoRA
    assert train_settings(config, "noah", "digits")["lr"] == config["train"]["overrides"]["noah"]["lr"] == 1e-3
    assert train_settings(config, "lora", "digits")["lr"] == config["train"]["overrides"]["lora"]["lr"] == 5e-3
    # Table 5's per-task rates are the supernets'
    config = load_config(["config.yaml"], ["train.supernet_lr=0.0007", "train.lr_per_task={digits: 0.0001}"])
    assert train_settings(config, "glora", "digits")["lr"] == 0.0001
    assert train_settings(config, "glora", "textures")["lr"] == 0.0007
    assert train_settings(config, "glora", "digits", supernet=False)["lr"] == config["train"]["lr"]
    # without supernet_lr, supernets fall back to lr (the paper configuration: 5e-4)
    paper = load_config(["config.yaml"])
    assert paper["train"]["supernet_lr"] is None
    assert train_settings(paper, "glora", "svhn")["lr"] == paper["train"]["lr"] == 5e-4


def test_grid_runs_carry_their_rate_and_only_glora_on_vtab_has_a_grid():
    config = load_config(MINI, ["train.supernet_lr_grid=[0.001, 0.0002]"])
    job = Job("vtab", "glora_large", "digits", "seed0")
    runs = [j.run for j in lr_candidates(config, job)]
    assert runs == ["seed0_lr0.001", "seed0_lr0.0002"]
    assert "--set train.lr_per_task.digits=0.0002" in stage_args(config, "vtab", "glora_large", "digits", runs[1])
    assert train_params(config, "vtab", "glora_large", "digits", runs[1])["settings"]["lr"] == 0.0002
    assert train_params(config, "vtab", "glora_large", "digits", runs[0])["settings"]["lr"] == 0.001
    assert lr_grid(config, "vtab", "lora") == [] and lr_grid(config, "vtab", "noah") == []
    assert lr_grid(config, "fewshot", "glora_large") == [] and lr_grid(config, "dg", "glora_large") == []


def candidate(tmp_path, lr: float, val_acc: float, supernet_val_acc: float, **run) -> str:
    """A grid run's train folder (metrics.json, weights, epochs.csv) and search folder (best.json, candidates)."""
    name = f"seed0_lr{lr:g}"
    train, search = tmp_path / "train" / name, tmp_path / "search" / name
    train.mkdir(parents=True)
    search.mkdir(parents=True)
    (train / "weights.safetensors").write_bytes(f"weights at {lr}".encode())
    (train / "epochs.csv").write_text(f"epoch,lr\n1,{lr}\n")
    (train / "metrics.json").write_text(json.dumps({"settings": {"lr": lr}, "final_val_acc": supernet_val_acc,
                                                    "test_top1_never_read": 100.0}))
    identity = {"method": "glora", "size": "glora_large", "task": "digits", "seed": 0, "family": "vtab",
                "shot": None, **run}
    (search / "best.json").write_text(json.dumps({**identity, "val_acc": val_acc, "params": 1000,
                                                  "weights": str(train / "weights.safetensors"), "choices": {}}))
    (search / "candidates.csv").write_text(f"index,val_acc\n0,{val_acc}\n")
    return str(search / "best.json")


def select(tmp_path, *candidates: str) -> int:
    return main(["select", "--candidates", *candidates, "--train-out", str(tmp_path / "train/seed0"),
                 "--search-out", str(tmp_path / "search/seed0"), "--out", str(tmp_path / "select/seed0.json")])


def test_select_keeps_the_rate_whose_searched_subnet_scores_best_on_val200(tmp_path):
    # 1e-3's supernet validates better with a random path, but 2e-4's searched subnet is the better one on val200
    a = candidate(tmp_path, 1e-3, val_acc=0.80, supernet_val_acc=0.70)
    b = candidate(tmp_path, 2e-4, val_acc=0.85, supernet_val_acc=0.50)
    assert select(tmp_path, a, b) == 0
    record = json.loads((tmp_path / "select/seed0.json").read_text())
    assert record["lr"] == 2e-4 and record["chosen"] == 1 and record["val_acc"] == 0.85
    assert [g["lr"] for g in record["grid"]] == [1e-3, 2e-4] and record["criterion"].startswith("val200")
    chosen = tmp_path / "train/seed0_lr0.0002"
    for name in ("weights.safetensors", "metrics.json", "epochs.csv"):
        assert (tmp_path / "train/seed0" / name).read_bytes() == (chosen / name).read_bytes()
    best = json.loads((tmp_path / "search/seed0/best.json").read_text())
    assert best["val_acc"] == 0.85 and best["selected"]["lr"] == 2e-4


def test_select_breaks_ties_towards_the_first_rate_and_refuses_mixed_runs(tmp_path, capsys):
    a = candidate(tmp_path, 1e-3, val_acc=0.80, supernet_val_acc=0.1)
    b = candidate(tmp_path, 2e-4, val_acc=0.80, supernet_val_acc=0.9)
    assert select(tmp_path, a, b) == 0
    assert json.loads((tmp_path / "select/seed0.json").read_text())["lr"] == 1e-3
    c = candidate(tmp_path, 5e-4, val_acc=0.99, supernet_val_acc=0.9, task="textures")
    assert select(tmp_path, a, c) == 2
    assert "different runs" in capsys.readouterr().err


def test_the_mini_dry_run_plans_a_supernet_and_a_search_per_rate(workflow_copy):  # noqa: F811
    config = load_config(MINI)
    grid, tasks = config["train"]["supernet_lr_grid"], 10
    assert len(grid) >= 2
    run = snakemake(workflow_copy, "--dry-run", "--printshellcmds", "--cores", "2", "--configfile",
                    "config/mini.yaml")
    assert run.returncode == 0, run.stderr + run.stdout
    counts = job_counts(run.stdout)
    assert counts["select_lr"] == tasks and counts["standalone"] == tasks
    for lr in grid:
        assert len(re.findall(rf"glora train .*--size glora_large --set train.lr_per_task.\w+={lr:g} ", run.stdout)) \
            == tasks
        assert len(re.findall(rf"glora search .*--set train.lr_per_task.\w+={lr:g} ", run.stdout)) == tasks
    assert not re.search(r"glora train .*--family fewshot .*lr_per_task", run.stdout)  # few-shot: a fixed rate


@pytest.mark.parametrize("grid", ["[0]", "[0.001, 0.001]"])
def test_a_bad_grid_is_refused_naming_the_key(grid):
    with pytest.raises(ValueError, match="supernet_lr_grid"):
        load_config(MINI, [f"train.supernet_lr_grid={grid}"])
