"""The CI overlay of the workflow through a real SLURM scheduler (`make test-slurm`; tests/slurm/cluster.sh).

The cluster is one node with 4 GPU slots (character devices, no GPU). The workflow runs with the user-facing
profile workflow/profiles/slurm, deep-merged with tests/slurm/overrides.yaml (what this cluster needs), on the CI
overlay with Table 1 cut to one task and four methods (tests/slurm/subset.yaml: every rule and path of the DAG,
within the 10 minutes the test may take on 2 cores), and every result must equal the local run of the overlay
(results/ci of this checkout, from `make ci`).

The run starts with --retries 0, and the pre-training job is cancelled with scancel while it runs: Snakemake must
report it failed, leave none of its outputs, and a second run (the profile's retries) must finish the workflow.
Deselected from `make test` (marker `slurm`); skipped when no cluster answers.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime
from itertools import combinations
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(1500)]

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
LOCAL = Path(os.environ.get("GLORA_LOCAL_RESULTS", ROOT / "results" / "ci"))
OVERLAY = ("--configfile", "config/mini.yaml", "config/ci.yaml", "subset.yaml")
GPU_RULES = ("pretrain", "train", "search", "retrain", "evaluate", "efficiency")


def slurm(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=30).stdout


def cluster_up() -> bool:
    try:
        return "idle" in slurm("sinfo", "-h", "-N", "-o", "%T") or bool(slurm("squeue", "-h"))
    except (OSError, subprocess.SubprocessError):
        return False


if not cluster_up():
    pytest.skip("no SLURM cluster answers (start one with tests/slurm/cluster.sh up, or run make test-slurm)",
                allow_module_level=True)


def deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def job_times(job_id: str) -> tuple[datetime, datetime]:
    """(start, end) of a finished job, from scontrol (MinJobAge keeps it)."""
    fields = dict(f.split("=", 1) for f in slurm("scontrol", "show", "job", "-o", job_id).split() if "=" in f)
    return datetime.fromisoformat(fields["StartTime"]), datetime.fromisoformat(fields["EndTime"])


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory):
    """Run the CI overlay under SLURM in a copy of the workflow; kill its pre-training once, then finish it."""
    if not (LOCAL / "tables" / "table1_vtab.csv").exists():
        pytest.fail(f"no local run of the CI overlay in {LOCAL}: run `make ci` first (make test-slurm does)")
    work = tmp_path_factory.mktemp("slurm")
    for item in ("Snakefile", "config.yaml", "config", "workflow", "envs"):
        (shutil.copytree if (ROOT / item).is_dir() else shutil.copy)(ROOT / item, work / item)
    shutil.copy(ROOT / "tests/slurm/subset.yaml", work / "subset.yaml")
    profile = work / "profile"
    profile.mkdir()
    user = yaml.safe_load((ROOT / "workflow/profiles/slurm/config.yaml").read_text())
    extra = yaml.safe_load((ROOT / "tests/slurm/overrides.yaml").read_text())
    (profile / "config.yaml").write_text(yaml.safe_dump(deep_merge(user, extra)))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "GLORA_GPU_LOCK_DIR": str(work / "gpu-locks")}
    command = [SNAKEMAKE, "--workflow-profile", str(profile), *OVERLAY]

    # First run: no retries; cancel the pre-training job once it runs.
    first_log = work / "first.log"
    with open(first_log, "w") as log:
        proc = subprocess.Popen([*command, "--retries", "0"], cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
        cancelled = backbone = None
        deadline = time.monotonic() + 300
        while cancelled is None and proc.poll() is None and time.monotonic() < deadline:
            running = [line.split(maxsplit=1) for line in slurm("squeue", "-h", "-t", "R", "-o", "%i %k").splitlines()]
            pretrain = [(job_id, comment) for job_id, comment in running if comment.startswith("rule_pretrain")]
            if pretrain:
                time.sleep(2)
                cancelled, comment = pretrain[0]
                slurm("scancel", cancelled)
                backbone = comment.removeprefix("rule_pretrain_wildcards_")
            time.sleep(0.5)
        first_rc = proc.wait(timeout=300)
    state = slurm("scontrol", "show", "job", cancelled).split("JobState=")[1].split()[0] if cancelled else None
    # the cancelled job's checkpoint (the other backbone's pre-training may well have finished)
    left = (work / "results" / "ci" / "pretrain" / f"{backbone}.safetensors").exists() if cancelled else None
    second = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=900)
    return {"work": work, "first_rc": first_rc, "first_log": first_log.read_text(), "cancelled": cancelled,
            "cancelled_state": state, "left_after_cancel": left,
            "second": second, "results": work / "results" / "ci"}


def test_a_cancelled_job_fails_and_a_rerun_finishes(slurm_run):
    assert slurm_run["cancelled"], "the pre-training job was never seen running"
    assert slurm_run["first_rc"] != 0, "Snakemake did not report the cancelled job"
    log = slurm_run["first_log"]
    assert "Error in rule pretrain" in log and slurm_run["cancelled"] in log, log[-3000:]
    assert slurm_run["cancelled_state"] == "CANCELLED"
    assert slurm_run["left_after_cancel"] is False, "a cancelled pre-training left a checkpoint that looks complete"
    # The rerun had to run pre-training again: its outputs were not left looking complete.
    second = slurm_run["second"]
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-5000:]
    assert "rule pretrain:" in second.stdout + second.stderr


def gpu_results(results: Path) -> list[dict]:
    """The provenance of every GPU-rule result of the run (metrics.json of train/retrain, evaluate JSONs, ...)."""
    found = []
    for path in results.rglob("*.json"):
        try:
            record = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError):
            continue
        device = record.get("provenance", {}).get("device") if isinstance(record, dict) else None
        if device:
            found.append({"path": path, **device})
    return found


def test_gpu_jobs_get_their_own_slot_and_no_lock(slurm_run):
    records = gpu_results(slurm_run["results"])
    assert len(records) > 20
    assert all(r["slurm_job_id"] and r["cuda_visible_devices"] in {"0", "1", "2", "3"} for r in records), \
        [r for r in records if not r["slurm_job_id"] or r["cuda_visible_devices"] is None][:3]
    times = {r["slurm_job_id"]: (*job_times(r["slurm_job_id"]), r["cuda_visible_devices"]) for r in records}
    overlapping = [(a, b) for a, b in combinations(times.values(), 2) if a[0] < b[1] and b[0] < a[1]]
    assert overlapping, "no two GPU jobs ran at the same time"
    assert all(a[2] != b[2] for a, b in overlapping), "two concurrent jobs saw the same CUDA_VISIBLE_DEVICES"
    assert not (slurm_run["work"] / "gpu-locks").exists() or not any((slurm_run["work"] / "gpu-locks").iterdir())


def test_device_claim_defers_to_the_allocation(tmp_path):
    """resolve_device under SLURM uses the allocation; the same call outside it claims a lock (the control)."""
    script = tmp_path / "claim.py"
    script.write_text(
        "import json, os\nfrom glora import devices\n"
        "d = devices.resolve_device('cuda', count=4)\n"
        "print(json.dumps({'device': str(d), 'how': devices._HOW, 'cvd': os.environ.get('CUDA_VISIBLE_DEVICES'),"
        " 'locks': sorted(os.listdir(devices.default_lock_dir())) if devices.default_lock_dir().exists() else []}))\n")
    env = {**os.environ, "GLORA_GPU_LOCK_DIR": str(tmp_path / "locks")}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    out = tmp_path / "job.out"
    subprocess.run(["sbatch", "--wait", "--gpus=1", "-c", "1", "--mem=500", "-o", str(out), "--wrap",
                    f"{sys.executable} {script}"], env=env, check=True, capture_output=True, timeout=120)
    under_slurm = json.loads(out.read_text().strip().splitlines()[-1])
    assert under_slurm == {"device": "cuda", "how": "slurm allocation", "cvd": under_slurm["cvd"], "locks": []}
    assert under_slurm["cvd"] in {"0", "1", "2", "3"}
    local = json.loads(subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                                      check=True).stdout)
    assert local["how"].startswith("lock ") and local["locks"] == ["gpu0.lock"] and local["cvd"] == "0"


def evaluations(results: Path) -> dict[str, dict]:
    return {str(p.relative_to(results)): json.loads(p.read_text())["test"]
            for p in sorted(results.glob("*/evaluate/**/*.json")) if p.relative_to(results).parts[0] != "llm"}


def test_results_equal_the_local_run(slurm_run):
    ours, local = evaluations(slurm_run["results"]), evaluations(LOCAL)
    assert len(ours) == 4 + 1 + 1 + 1 and ours.keys() <= local.keys()  # vtab, few-shot, domain gen., swin
    different = {k: (ours[k].get("top1"), local[k].get("top1")) for k in ours if ours[k] != local[k]}
    assert not different, f"SLURM and local results differ: {different}"
    tables = slurm_run["results"] / "tables"
    table1, local1 = (pd.read_csv(d / "table1_vtab.csv").set_index("method") for d in (tables, LOCAL / "tables"))
    assert len(table1) == 4
    pd.testing.assert_series_equal(table1["digits"], local1.loc[table1.index, "digits"])
    assert (tables / "table6_vtab_swin.csv").read_text() == (LOCAL / "tables" / "table6_vtab_swin.csv").read_text()
