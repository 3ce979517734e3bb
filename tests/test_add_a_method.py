"""Adding a PEFT method as CONTRIBUTING.md walks through it: one new file, ``glora/methods/lntune.py`` (its options,
its record and its implementation), and one registration line in ``glora/methods/registry.py``. In a copy of the
package, the new method then trains, exports and evaluates through the stages, its options are checked like every
method's, and the Snakemake plan runs it -- with nothing else touched."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from engine_fixtures import ROOT, make_world

#: the new file, as CONTRIBUTING.md shows it
LNTUNE = '''"""LN-Tune (a toy): train the affine parameters of every LayerNorm, and the head."""

from __future__ import annotations

from dataclasses import dataclass

from glora.methods.record import Method, option


@dataclass(frozen=True)
class LnTuneOptions:
    final_norm: bool = option(True, "also train the LayerNorm before the head")


def apply_lntune(model, *, final_norm: bool) -> list[str]:
    """Freeze the backbone but its LayerNorms' scales and shifts (and the head), in place."""
    from torch import nn

    from glora.methods.base import freeze_backbone, head_modules, trained_names

    freeze_backbone(model)
    head = head_modules(model)
    for name, module in model.named_modules():
        if isinstance(module, nn.LayerNorm) and name not in head and (final_norm or name != "norm"):
            module.requires_grad_(True)
    return trained_names(model)


def merge_lntune(model, **_):
    """Nothing to fold: the tuned norms are the plain model's norms."""
    return model


LNTUNE = Method(name="lntune", display="LN-Tune", description="the affine parameters of every LayerNorm",
                options=LnTuneOptions, apply_fn="glora.methods.lntune:apply_lntune",
                merge_fn="glora.methods.lntune:merge_lntune")
'''
REGISTRATION = '    "glora.methods.lntune:LNTUNE",\n'


@pytest.fixture(scope="module")
def house(tmp_path_factory):
    """A copy of the package with the method added: the new file and the line in registry.py, nothing else."""
    root = tmp_path_factory.mktemp("house")
    shutil.copytree(ROOT / "glora", root / "glora", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "glora" / "methods" / "lntune.py").write_text(LNTUNE)
    registry = root / "glora" / "methods" / "registry.py"
    text = registry.read_text()
    anchor = '    "glora.methods.glora:GLORA",\n'
    assert anchor in text
    registry.write_text(text.replace(anchor, anchor + REGISTRATION))
    return root


def run(house: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(house), "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
           f"{os.environ['PATH']}"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)


def test_the_new_method_trains_exports_and_evaluates(house, tmp_path):
    world = make_world(tmp_path / "world")
    overlay = tmp_path / "lntune.yaml"
    overlay.write_text(yaml.safe_dump({"methods": {"lntune": {"final_norm": False}}}))
    configs = [a for p in [*world["config"], overlay] for a in ("--config", str(p))]
    stage = [sys.executable, "-m", "glora"]
    common = [*configs, "--quiet", "--device", "cpu", "--threads", "1"]
    run_args = ["--method", "lntune", "--task", "toy"]
    out = tmp_path / "runs"
    for argv in (["train", *common, *run_args, "--out", str(out / "train")],
                 ["export", *common, *run_args, "--weights", str(out / "train/weights.safetensors"),
                  "--out", str(out / "export")],
                 ["evaluate", *common, "--model", str(out / "export/model.safetensors"), "--out",
                  str(out / "eval.json")]):
        done = run(house, [*stage, *argv], tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "train/metrics.json").read_text())
    # 4 blocks x 2 LayerNorms x (128 + 128) of the tiny ViT; the final norm left out (final_norm: false)
    assert metrics["method"] == "lntune" and metrics["method_kwargs"] == {"final_norm": False}
    assert metrics["trainable_params"] == 4 * 2 * 2 * 128
    card = json.loads((out / "export/card.json").read_text())
    assert card["merged"] is True and card["added_biases"] == []
    result = json.loads((out / "eval.json").read_text())
    assert result["method"] == "lntune" and 0 <= result["test"]["top1"] <= 100

    overlay.write_text(yaml.safe_dump({"methods": {"lntune": {"final_nrom": False}}}))  # a typo: refused
    done = run(house, [*stage, "train", *common, *run_args, "--out", str(out / "typo")], tmp_path)
    assert done.returncode == 2 and not (out / "typo").exists()
    assert f"error: {overlay}:3: methods.lntune has unknown key(s) ['final_nrom']; lntune takes ['final_norm']" \
        in done.stderr


def test_the_plan_runs_the_new_method_and_checks_its_options(house, tmp_path):
    for item in ("Snakefile", "config.yaml", "config", "workflow", "envs", "assets"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / item)
    overlay = tmp_path / "lntune.yaml"
    overlay.write_text(yaml.safe_dump({"experiments": {"vtab": {"methods": ["lntune", "lora"],
                                                                "tasks": ["digits", "faces"]}},
                                       "methods": {"lntune": {"final_norm": False}}}))
    snakemake = [str(Path(sys.executable).with_name("snakemake")), "-n", "-p", "--cores", "1", "--configfile",
                 "config/mini.yaml", str(overlay)]
    done = run(house, snakemake, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "python -m glora train " in done.stdout and "--method lntune --task faces --seed 0" in done.stdout
    assert "results/mini/vtab/evaluate/lntune/digits/seed0.json" in done.stdout
    overlay.write_text(yaml.safe_dump({"methods": {"lntune": {"final_norm": "no"}}}))  # the wrong type: refused
    done = run(house, snakemake, tmp_path)
    assert done.returncode != 0
    assert "methods.lntune.final_norm: 'no' is not of type bool" in done.stdout + done.stderr
