"""Device resolution and GPU claiming: spec parsing, and flock claims across real processes."""

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from glora import devices

# A holder process: loads glora/devices.py by path (no torch import, so it starts fast), claims one of
# 4 simulated GPUs, prints the index (or the error) and keeps the claim until stdin closes.
HOLDER = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("glora_devices_holder", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = mod
spec.loader.exec_module(mod)
try:
    claim = mod.claim_gpu(4, sys.argv[2])
except RuntimeError as e:
    print("ERROR", e, flush=True)
    sys.exit(3)
print(claim.index, flush=True)
sys.stdin.readline()
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No scheduler variables, no claims of earlier tests; whatever a test sets is undone."""
    for key in ("SLURM_JOB_ID", "CUDA_VISIBLE_DEVICES", "GLORA_GPU_LOCK_DIR"):
        monkeypatch.setenv(key, "")  # recorded, so the delenv (and later writes) are undone
        monkeypatch.delenv(key)
    monkeypatch.setattr(devices, "_OWN_VISIBLE", None)
    monkeypatch.setattr(devices, "_HOW", None)
    held = []
    monkeypatch.setattr(devices, "_HELD", held)
    yield
    for fh in held:
        fh.close()


def start_holders(n, lock_dir):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", HOLDER, devices.__file__, str(lock_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    return procs, [p.stdout.readline().strip() for p in procs]


def stop(procs):
    for p in procs:
        if p.poll() is None:
            p.stdin.close()
        p.wait(timeout=10)
        p.stdout.close()


@pytest.mark.parametrize("spec", ["gpu", "cuda:", "cuda:x", "CPU", "mps", ""])
def test_bad_spec(spec):
    with pytest.raises(ValueError, match=r"auto, cpu, cuda or cuda:N") as e:
        devices.resolve_device(spec)
    assert repr(spec) in str(e.value)


def test_cpu_and_auto_on_cpu_machine():
    assert devices.resolve_device("cpu", count=4) == torch.device("cpu")
    assert devices.resolve_device("auto", count=0) == torch.device("cpu")
    if devices._cuda_count() == 0:
        assert devices.resolve_device() == torch.device("cpu")
        with pytest.raises(ValueError, match="--device cuda but no CUDA device is visible.*use --device cpu or auto"):
            devices.resolve_device("cuda")
    with pytest.raises(ValueError, match="no CUDA device"):
        devices.resolve_device("cuda:0", count=0)
    assert os.environ.get("CUDA_VISIBLE_DEVICES") is None


def test_explicit_index(tmp_path):
    assert devices.resolve_device("cuda:2", count=4, lock_dir=tmp_path) == torch.device("cuda:2")
    with pytest.raises(ValueError, match="only 4 CUDA"):
        devices.resolve_device("cuda:4", count=4)
    assert list(tmp_path.iterdir()) == []


def test_claims_across_processes(tmp_path):
    lock_dir = tmp_path / "locks"
    procs, indices = start_holders(4, lock_dir)
    try:
        assert sorted(indices) == ["0", "1", "2", "3"]
        # A 5th claimer (another process, and this one) finds every GPU taken.
        fifth, out = start_holders(1, lock_dir)
        assert fifth[0].wait(timeout=10) == 3 and out[0].startswith("ERROR")
        stop(fifth)
        with pytest.raises(RuntimeError) as e:
            devices.claim_gpu(4, lock_dir, wait_s=0.2, poll_s=0.05)
        msg = str(e.value)
        assert str(lock_dir) in msg and "all 4 GPU locks" in msg and "lower --resources gpu=N" in msg
        for p in procs:
            assert f"pid={p.pid}" in msg
        # SIGKILL one holder: the OS drops its flock, and a new claim gets exactly its GPU.
        victim = procs[1]
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        claim = devices.claim_gpu(4, lock_dir)
        assert claim.index == int(indices[1])
        assert claim.lock_path.read_text().startswith(f"pid={os.getpid()} ")
        # release() frees it for the next claimer.
        claim.release()
        assert devices.claim_gpu(4, lock_dir).index == int(indices[1])
    finally:
        stop(procs)


def test_claim_waits_for_a_free_gpu(tmp_path):
    first = devices.claim_gpu(1, tmp_path)
    with pytest.raises(RuntimeError, match="after waiting 0.1s"):
        devices.claim_gpu(1, tmp_path, wait_s=0.1, poll_s=0.02)
    first.release()
    assert devices.claim_gpu(1, tmp_path, wait_s=0.1).index == 0


def test_default_lock_dir(monkeypatch, tmp_path):
    assert devices.default_lock_dir().name == f"glora-gpu-locks-{os.getuid()}"
    monkeypatch.setenv("GLORA_GPU_LOCK_DIR", str(tmp_path / "env"))
    assert devices.default_lock_dir() == tmp_path / "env"


def test_multi_gpu_without_scheduler_claims_and_narrows(monkeypatch, tmp_path):
    monkeypatch.setattr(devices, "_cuda_count", lambda: 4)
    procs, indices = start_holders(2, tmp_path)
    try:
        assert devices.resolve_device("auto", lock_dir=tmp_path) == torch.device("cuda")
        expected = min({"0", "1", "2", "3"} - set(indices))  # the first GPU the holders left free
        assert os.environ["CUDA_VISIBLE_DEVICES"] == expected
        # A second call in the same process keeps its claim rather than taking another GPU.
        assert devices.resolve_device("cuda", lock_dir=tmp_path) == torch.device("cuda")
        assert os.environ["CUDA_VISIBLE_DEVICES"] == expected
        assert len(devices._HELD) == 1
        assert devices._HOW == f"lock {tmp_path / f'gpu{expected}.lock'}"
    finally:
        stop(procs)


@pytest.mark.parametrize("env", [{"SLURM_JOB_ID": "123"}, {"CUDA_VISIBLE_DEVICES": "2,3"}])
def test_scheduler_allocation_is_used_as_is(monkeypatch, tmp_path, env):
    monkeypatch.setattr(devices, "_cuda_count", lambda: 4)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    lock_dir = tmp_path / "locks"
    assert devices.resolve_device("auto", lock_dir=lock_dir) == torch.device("cuda")
    assert devices.resolve_device("cuda", lock_dir=lock_dir, count=4) == torch.device("cuda")
    assert os.environ.get("CUDA_VISIBLE_DEVICES") == env.get("CUDA_VISIBLE_DEVICES")
    assert not lock_dir.exists() and devices._HELD == []
    assert devices._HOW == ("slurm allocation" if "SLURM_JOB_ID" in env else "CUDA_VISIBLE_DEVICES as set")


def test_single_gpu_needs_no_claim(monkeypatch, tmp_path):
    assert devices.resolve_device("cuda", lock_dir=tmp_path / "locks", count=1) == torch.device("cuda")
    assert not (tmp_path / "locks").exists() and "CUDA_VISIBLE_DEVICES" not in os.environ


def test_describe_cpu():
    d = devices.describe("cpu")
    assert d["device"] == "cpu" and d["name"] and d["cuda_visible_devices"] is None
    assert d["gpu_claim"] is None and d["slurm_job_id"] is None
    assert d["torch_threads"] == torch.get_num_threads()


CLAIM_AND_HOLD = """
import importlib.util, json, sys, time
spec = importlib.util.spec_from_file_location("glora_devices_job", sys.argv[1])
devices = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = devices
spec.loader.exec_module(devices)
claim = devices.claim_gpu(4, sys.argv[2], wait_s=60, poll_s=0.05)
start = time.time()
time.sleep(1.0)
print(json.dumps({"gpu": claim.index, "start": start, "end": time.time()}))
"""


def test_eight_concurrent_jobs_on_four_simulated_gpus_never_share_one(tmp_path):
    """What `snakemake --resources gpu=...` can't promise on one machine: each running job its own GPU."""
    procs = [subprocess.Popen([sys.executable, "-c", CLAIM_AND_HOLD, devices.__file__, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True) for _ in range(8)]
    claims = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert {c["gpu"] for c in claims} == {0, 1, 2, 3}
    overlapping = max(sum(c["start"] <= t < c["end"] for c in claims) for t in (c["start"] for c in claims))
    assert overlapping == 4  # four ran at once, the others waited for a free GPU
    for gpu in range(4):
        held = sorted((c["start"], c["end"]) for c in claims if c["gpu"] == gpu)
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(held, held[1:]))  # never shared
