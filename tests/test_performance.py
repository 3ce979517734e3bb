"""Issue 20 without timing anything: the fast paths are bit-identical to the operations they replaced, --help
imports no torch, Table 4's measurement records its load and spread and runs alone, and `glora plan` counts the
jobs the Snakefile plans and estimates from measured rows only."""

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import glora
from glora.config import load_config
from glora.errors import ConfigError
from glora.plan_cost import FIELDS, Calibration, render, report

ROOT = Path(__file__).resolve().parents[1]


def previous_lora_a_forward(layer, x, choice):
    """The LoRA-type A path as it was before issue 20 (autograd through addcmul, a dense B and an add)."""
    bias = layer._bias(choice)
    a = layer._factor(choice["A"], layer.A_d, layer.A_u)
    weight = torch.addcmul(layer.weight, layer.weight, a[0] @ a[1])
    b = layer._dense(choice["B"], layer.B_d, layer.B_u)
    return F.linear(x, weight if b is None else weight + b, bias)


def previous_forward(layer, x, choice):
    """The whole fast forward as it was before issue 20: the LoRA-A path above, and the other paths with autograd
    through ``addcmul`` and an in-place ``addmm_`` on a view of the (3-D) output."""
    if choice["A"].startswith("lora"):
        return previous_lora_a_forward(layer, x, choice)
    bias = layer._bias(choice)
    a = layer._factor(choice["A"], layer.A_d, layer.A_u)
    y = F.linear(x, layer.weight, bias)
    if a is not None:
        a = a.squeeze(-1)
        y = y * (1 + a) if bias is None else torch.addcmul(-(a * bias), y, 1 + a)
    b = layer._factor(choice["B"], layer.B_d, layer.B_u)
    if b is None:
        return y
    flat_x = x.reshape(-1, layer.in_features)
    if isinstance(b, tuple):
        down, up = flat_x @ b[1].T, b[0].T
    else:
        down, up = flat_x.sum(-1, keepdim=True), b.reshape(1, -1).expand(1, layer.out_features)
    y.view(-1, layer.out_features).addmm_(down, up)
    return y


def outputs_and_grads(layer, forward, x, choice, grad=None):
    layer.zero_grad(set_to_none=True)
    xx = x.clone().requires_grad_(True)
    out = forward(layer, xx, choice)
    out.backward(torch.linspace(-1, 1, out.numel()).reshape(out.shape) if grad is None else grad.to(out.dtype))
    return [out.detach(), xx.grad, *(p.grad for p in layer.support_tensors().values())]


@pytest.mark.parametrize("bias", [True, False])
def test_every_path_is_bit_identical_to_the_previous_operations(bias):
    """Every choice of a layer: output, input gradient and every support tensor's gradient equal bit for bit to
    the operations the fast path replaced (so the golden tables do not move)."""
    from tests.conftest import all_choices

    torch.manual_seed(0)
    layer = glora.GLoRALinear(nn.Linear(48, 80, bias=bias), ranks=(8, 4))
    with torch.no_grad():
        for p in layer.support_tensors().values():
            p.normal_(0, 0.05)
    x = torch.randn(3, 7, 48)
    choices = all_choices(layer.options)
    assert len(choices) == (5 * 5 * 4 * (3 if bias else 1) * 3)
    for choice in choices:
        old = outputs_and_grads(layer, previous_forward, x, choice)
        new = outputs_and_grads(layer, lambda lay, x, ch: lay.fast_forward(x, ch), x, choice)
        for before, after in zip(old, new):
            assert (before is None and after is None) or torch.equal(before, after), choice


def test_under_autocast_the_composed_path_runs_and_stays_close():
    """bf16 autocast (CPU here, CUDA on a GPU) takes the composed LoRA-A path: finite, and near float32."""
    from tests.conftest import all_choices

    torch.manual_seed(0)
    layer = glora.GLoRALinear(nn.Linear(48, 80), ranks=(8, 4))
    with torch.no_grad():
        for p in layer.support_tensors().values():
            p.normal_(0, 0.05)
    x, grad = torch.randn(3, 7, 48), torch.randn(3, 7, 80)
    for choice in all_choices(layer.options)[::7]:
        forward = lambda lay, x, ch: lay.fast_forward(x, ch)  # noqa: E731
        exact = outputs_and_grads(layer, forward, x, choice, grad)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = outputs_and_grads(layer, forward, x, choice, grad)
        for e, h in zip(exact, half):
            assert (e is None) == (h is None), choice
            if e is not None:  # bf16 keeps 8 bits: a few per cent of the tensor's norm
                assert torch.isfinite(h).all() and (h.float() - e).norm() <= 0.03 * e.norm(), choice


def test_a_training_step_is_bit_identical(vit_mini):
    """Two supernet steps (random paths, every kind of path among them) with the new and the old operations."""
    from tests.conftest import randomize_support

    glora.apply_glora(vit_mini, ranks=(8, 4))
    randomize_support(vit_mini)
    start = {k: v.clone() for k, v in vit_mini.state_dict().items()}
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 7, (8,))
    after = []
    for old in (False, True):
        vit_mini.load_state_dict(start)
        for layer in glora.glora_layers(vit_mini).values():
            layer.set_choice(None)
            layer.generator = torch.Generator().manual_seed(5)
            if old:
                layer.fast_forward = (lambda lay: lambda x, ch: previous_forward(lay, x, ch))(layer)
        params = [p for p in vit_mini.parameters() if p.requires_grad]
        optim = torch.optim.AdamW(params, lr=1e-2)
        for _ in range(2):
            optim.zero_grad()
            F.cross_entropy(vit_mini.train()(x), y).backward()
            optim.step()
        after.append({k: v.clone() for k, v in vit_mini.state_dict().items()})
        for layer in glora.glora_layers(vit_mini).values():
            layer.__dict__.pop("fast_forward", None)
    assert all(torch.equal(after[0][k], after[1][k]) for k in after[0])
    assert any(not torch.equal(after[0][k], start[k]) for k in start)  # the steps did change the support tensors


def test_help_imports_no_torch():
    for argv in (["--help"], ["export", "--help"], ["evaluate", "--help"], ["plan", "--help"]):
        out = subprocess.run([sys.executable, "-X", "importtime", "-m", "glora", *argv], capture_output=True,
                             text=True, cwd=ROOT)
        assert out.returncode == 0, out.stderr[-2000:]
        assert not re.search(r"\|\s+torch$", out.stderr, re.M), argv


def test_package_attributes_load_lazily():
    # the method records and the search space are torch-free; a layer of the implementation loads it
    code = ("import sys, glora; assert 'torch' not in sys.modules; glora.SearchSpace; glora.methods.names(); "
            "assert 'torch' not in sys.modules; glora.GLoRALinear; assert 'torch' in sys.modules; "
            "print(sorted(glora.__all__)[:2])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        glora.nope  # noqa: B018


def test_measure_rotates_and_reports_paired_ratios():
    from glora.efficiency import LoadMeter, measure, spread

    model = nn.Linear(8, 8).eval()
    with LoadMeter() as load:
        result = measure([model, model, model], torch.randn(4, 8), warmup=1, passes=5, min_sample_s=0.001)
    assert len(result["images_per_s"]) == 3 and result["reps"] >= 1
    assert all(len(r) == 5 for r in result["ratios"]) and result["ratios"][0] == [1.0] * 5
    s = spread(result["ratios"][1])
    assert s["min"] <= s["q1"] <= s["median"] <= s["q3"] <= s["max"]
    assert {"loadavg_1m_start", "loadavg_1m_end", "cpus", "seconds"} <= set(load.record)
    if Path("/proc/stat").exists():
        assert load.record["other_processes_cores"] >= 0 and isinstance(load.record["alone"], bool)


def test_efficiency_json_records_load_spread_and_control(tmp_path):
    from glora.efficiency import run_efficiency

    config = load_config([ROOT / "config.yaml", ROOT / "config/mini.yaml"],
                         ["efficiency.methods=[lora]", "efficiency.passes=3", "efficiency.warmup=1",
                          "efficiency.batch_sizes=[2]"])
    run_efficiency(config, tmp_path / "t4.csv", device="cpu")
    meta = json.loads((tmp_path / "t4.json").read_text())
    assert set(meta["spread"]) >= {"backbone", "lora", "control (untouched copy)", "reps_per_sample", "what"}
    assert meta["spread"]["backbone"]["bs2"]["median"] == 1.0
    assert "loadavg_1m_start" in meta["load"]
    with open(tmp_path / "t4.csv") as f:
        assert [r["method"] for r in csv.DictReader(f)] == ["backbone", "lora"]


def test_efficiency_rule_holds_every_core_and_keeps_the_configured_torch_threads(tmp_path):
    import shutil

    for item in ("Snakefile", "config.yaml", "config", "workflow", "envs", "assets"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / item)
    run = subprocess.run([str(Path(sys.executable).with_name("snakemake")), "--dry-run", "--directory", str(tmp_path),
                          "--snakefile", str(tmp_path / "Snakefile"), "-p", "--cores", "3",
                          "--configfile", str(tmp_path / "config/mini.yaml"), str(tmp_path / "config/quick.yaml"),
                          "--", "results/mini/efficiency/table4_efficiency.csv"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr + run.stdout
    block = run.stdout[run.stdout.index("rule efficiency:"):]
    assert re.search(r"threads: 3\n", block) and "--threads 1 " in block


def calibration_file(tmp_path, devices=("cpu (test)",), skip=()):
    rows = []
    for device in devices:
        for backbone in ("vit_base_patch16_224.orig_in21k", "swin_base_patch4_window7_224.ms_in22k", "vit_mini"):
            for kind in ("glora", "lora", "full", "linear", "noah", "inference", "search"):
                if kind not in skip:
                    rows.append({"backbone": backbone, "kind": kind, "device": device, "dtype": "float32",
                                 "batch": 8, "images_per_s": 10.0 if device.startswith("cpu") else 1000.0,
                                 "threads": 2, "where": "a test", "command": "none"})
    path = tmp_path / "calibration.csv"
    with open(path, "w", newline="") as f:
        f.write("# a comment line\n")
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_plan_counts_the_jobs_the_snakefile_plans(tmp_path):
    """The counts of the dry runs asserted in test_cli_and_workflow (paper, mini, quick)."""
    cal = Calibration.read(calibration_file(tmp_path))
    paper = report(load_config([ROOT / "config.yaml"]), cal)
    assert {k: paper["jobs"][k] for k in ("train", "search", "retrain", "export", "evaluate", "efficiency")} == \
        {"train": 399, "search": 171, "retrain": 19, "export": 399, "evaluate": 399, "efficiency": 1}
    mini = report(load_config([ROOT / "config.yaml", ROOT / "config/mini.yaml"]), cal)["jobs"]
    assert (mini["train"], mini["select_lr"], mini["standalone"], mini["search"], mini["retrain"]) == \
        (10 * 15 + 2 * 3 + 1, 10, 10, 10 * 3 + 2 * 3 + 1, 10)
    assert (mini["llm_mini"], mini["llm_train"], mini["llm_search"], mini["llm_export"], mini["llm_evaluate"]) == \
        (1, 3, 2, 3, 4)
    quick = report(load_config([ROOT / "config.yaml", ROOT / "config/mini.yaml", ROOT / "config/quick.yaml"]), cal)
    assert (quick["jobs"]["train"], quick["jobs"]["select_lr"], quick["jobs"]["retrain"]) == (21, 3, 3)


def test_plan_hours_come_from_the_rows_and_say_which(tmp_path):
    config = load_config([ROOT / "config.yaml"])
    plan = report(config, Calibration.read(calibration_file(tmp_path, devices=("cpu (test)", "NVIDIA X"))))
    assert plan["device"] == "NVIDIA X" and plan["unit"] == "GPU-hours"  # a GPU's rows win
    # a supernet job: 500 epochs x train800 + 51 val200 passes at 1000 images/s
    assert plan["total_hours"] > 0 and plan["hours_per_rule"]["train"] > plan["hours_per_rule"]["evaluate"]
    cpu = report(config, Calibration.read(calibration_file(tmp_path, devices=("cpu (test)", "NVIDIA X"))), "cpu (test)")
    assert cpu["unit"] == "CPU-hours" and cpu["total_hours"] == pytest.approx(100 * plan["total_hours"], rel=0.01)
    assert any("adapter" in p for p in plan["proxies"])  # no adapter row: estimated from lora's, and said so
    text = render(cpu)
    assert "no GPU row measured yet" in text and "a test" in text
    with pytest.raises(ConfigError, match="no calibration rows for device 'TPU'"):
        report(config, Calibration.read(calibration_file(tmp_path)), "TPU")
    gaps = report(config, Calibration.read(calibration_file(tmp_path, skip=("search",))))
    assert "search" not in gaps["hours_per_rule"] and any("search on" in m for m in gaps["not_estimated"])


def test_calibration_rows_name_where_they_were_measured(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(FIELDS) + "\nvit_mini,glora,cpu,float32,8,3.0,2,,cmd\n")
    with pytest.raises(ConfigError, match="lacks \\['where'\\]"):
        Calibration.read(bad)
    committed = Calibration.read(ROOT / "config/calibration.csv")
    assert committed.rows and all(r["where"] and r["command"] for r in committed.rows)
    # GPU rows only from a GPU: every committed row's device is the CPU of this project's machines or a GPU that
    # make gpu-check measured (its command says so)
    for r in committed.rows:
        assert r["device"].startswith("cpu") or "gpu_check" in r["command"], r


def test_plan_command_prints_the_paper_total(capsys):
    from glora.cli import main

    assert main(["plan", "--config", str(ROOT / "config.yaml"), "--calibration",
                 str(ROOT / "config/calibration.csv")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^total\s+\d+\s+[\d.]+$", out, re.M) and "calibration rows used" in out
