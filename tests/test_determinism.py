"""Identical runs give identical files: the same commands in two separate processes write the same bytes (sha256)
for every artefact of train -> search -> export -> evaluate (GLoRA) and train -> export -> evaluate (a baseline).
The rule, and what is volatile instead, is in docs/troubleshooting.md ("Identical runs, identical files")."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from engine_fixtures import make_world

#: the stages, run in one process per repetition (relative --out: the two runs are the same commands)
DRIVER = """
import sys
from glora.cli import main

common = [a for c in sys.argv[1:] for a in ("--config", c)] + ["--quiet", "--device", "cpu", "--threads", "1",
                                                          "--set", "train.baseline_epochs=2"]
glora = ["--method", "glora", "--size", "tiny", "--task", "toy"]
steps = [
    ["train", *glora, "--out", "glora/train"],
    ["search", "--size", "tiny", "--task", "toy", "--weights", "glora/train/weights.safetensors",
     "--out", "glora/search"],
    ["export", *glora, "--weights", "glora/train/weights.safetensors", "--choices", "glora/search/best.json",
     "--out", "glora/export"],
    ["evaluate", "--model", "glora/export/model.safetensors", "--supernet", "glora/train/weights.safetensors",
     "--out", "glora/evaluate.json"],
    ["train", "--method", "lora", "--task", "toy", "--out", "lora/train"],
    ["export", "--method", "lora", "--task", "toy", "--weights", "lora/train/weights.safetensors", "--out",
     "lora/export"],
    ["evaluate", "--model", "lora/export/model.safetensors", "--out", "lora/evaluate.json"],
]
for argv in steps:
    code = main([argv[0], *common, *argv[1:]])
    if code:
        sys.exit(f"{argv[0]} exited with {code}")
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("world"))


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_two_processes_write_byte_identical_artefacts(world, tmp_path):
    runs = {}
    for name in ("first", "second"):
        cwd = tmp_path / name
        cwd.mkdir()
        done = subprocess.run([sys.executable, "-c", DRIVER, *map(str, world["config"])], cwd=cwd,
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        runs[name] = digests(cwd)
    expected = {f"glora/{f}" for f in ("train/weights.safetensors", "train/metrics.json", "train/epochs.csv",
                                      "search/best.json", "search/candidates.csv", "export/model.safetensors",
                                      "export/card.json", "evaluate.json")}
    assert expected <= set(runs["first"]) and "lora/export/card.json" in runs["first"]
    differ = sorted(k for k in runs["first"].keys() | runs["second"].keys() if runs["first"].get(k) !=
                    runs["second"].get(k))
    assert not differ, f"these files differ between two identical runs: {differ}"
