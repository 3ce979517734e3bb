"""Killing Snakemake itself in the middle of a training job loses nothing: after ``--unlock`` and
``--rerun-incomplete`` (what docs/troubleshooting.md tells a user) the run finishes, the training resumes from its
checkpoint, and every table is byte-identical to the uninterrupted run's.

The smallest workflow that trains something: the paper's rules (data check, checkpoint check, train, export,
evaluate, tables) on the engine fixtures' 4-class task and tiny ViT, a linear probe."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from engine_fixtures import ROOT, make_world

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
RUN = Path("results/resume")
TRAIN_OUT = RUN / "vtab/train/linear/toy/seed0"


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def workdir(tmp_path):
    """A copy of the workflow and an overlay that points it at the fixture world (no data generation, no
    pre-training: the checks, then one linear probe long enough to be killed in the middle)."""
    for item in ("Snakefile", "config.yaml", "workflow", "envs"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / item)
    world = make_world(tmp_path / "world")
    overlay = {
        "name": "resume", "backbone": "vit_mini",
        "paths": {"checkpoint": str(world["checkpoint"]), "vtab": str(world["root"] / "vtab")},
        "train": {"baseline_epochs": 25, "checkpoint_every": 1, "warmup_epochs": 1, "batch_size": 16,
                  "overrides": {"linear": {"lr": 1.0e-3}}},
        "experiments": {"vtab": {"tasks": ["toy"], "methods": ["linear"]},
                        **{e: {"enabled": False} for e in ("fewshot", "domain_generalization", "swin", "llm")}},
        "efficiency": {"enabled": False},
        "resources": {"gpu": 0, "threads": 1},
    }
    (tmp_path / "resume.yaml").write_text(yaml.safe_dump(overlay))
    return tmp_path


def snakemake(workdir: Path, *args: str, background: bool = False):
    command = [SNAKEMAKE, str(RUN / "tables"), "--cores", "1", "--configfile", "resume.yaml", *args]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    if background:
        return subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, check=False)


def test_snakemake_killed_mid_training_resumes_to_the_same_tables(workdir):
    first = snakemake(workdir)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    tables = digests(workdir / RUN / "tables")
    trained = digests(workdir / TRAIN_OUT)
    assert "table1_vtab.csv" in tables and not (workdir / TRAIN_OUT / "resume.pt").exists()

    # the run again from the training on (its outputs and everything after them gone, as before a first run),
    # and Snakemake killed with its job (SIGKILL to the process group: kill -9, a node that dies) once the job
    # has written its first resume checkpoint
    for made in (RUN / "vtab", RUN / "tables"):
        shutil.rmtree(workdir / made)
    run = snakemake(workdir, background=True)
    deadline = time.monotonic() + 300
    while not (workdir / TRAIN_OUT / "resume.pt").exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert run.returncode == -signal.SIGKILL, "the run ended before it could be killed; train longer"
    assert (workdir / TRAIN_OUT / "resume.pt").exists() and not (workdir / TRAIN_OUT / "weights.safetensors").exists()

    locked = snakemake(workdir)  # what the user meets first: the lock of the killed run
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    assert snakemake(workdir, "--unlock").returncode == 0
    second = snakemake(workdir, "--rerun-incomplete")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    log = (workdir / RUN / "logs/vtab/train/linear/toy/seed0.log").read_text()
    assert "resuming" in log, "the training started again from epoch 0"
    assert not (workdir / TRAIN_OUT / "resume.pt").exists()
    assert digests(workdir / TRAIN_OUT) == trained
    assert digests(workdir / RUN / "tables") == tables
