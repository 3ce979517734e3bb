"""The start-up worker (glora/worker.py): a stage run through it prints, writes and exits as it does in its own
process; the client's signals reach it and a client killed outright ends it; without a worker, inside a SLURM
job, for another checkout or after a change of the package, the stage runs in its own process."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.http_server import FileServer

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--config", "config.yaml", "--config", "config/mini.yaml", "--config", "config/quick.yaml"]


def glora_cmd(args, worker=None, extra_env=None, **kw):
    env = {**os.environ, "GLORA_WORKER": str(worker or ""), **(extra_env or {})}
    return subprocess.run([sys.executable, "-m", "glora", *args], cwd=kw.pop("cwd", ROOT), env=env,
                          capture_output=True, text=True, timeout=300, **kw)


def jobs_in(log: Path) -> list[tuple[int, str]]:
    return [(int(m.group(1)), m.group(2)) for m in re.finditer(r"job (\d+): ([^{\n].*)", log.read_text())]


def wait_for(predicate, seconds=60.0, what="the condition"):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def start_worker(sock: Path, extra_env=None, cwd=ROOT) -> int:
    """``python -m glora.worker --detach``: prints the socket once it listens; the worker's pid from its log."""
    out = subprocess.run([sys.executable, "-m", "glora.worker", "--socket", str(sock), "--idle", "300", "--detach"],
                         cwd=cwd, env={**os.environ, "GLORA_WORKER": "", **(extra_env or {})}, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == str(sock), out.stderr
    return int(re.search(r"worker (\d+) on", sock.with_suffix(".log").read_text()).group(1))


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    sock = tmp_path_factory.mktemp("worker") / "w.sock"
    pid = start_worker(sock)
    yield sock, sock.with_suffix(".log")
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not sock.exists(), 30, "the worker to remove its socket")


def test_a_stage_run_by_the_worker_prints_writes_and_exits_as_in_its_own_process(worker, tmp_path):
    sock, log = worker
    for args in (["space", "--backbone", "vit_mini", "--ranks", "4", "2"],  # torch and timm: a model is built
                 ["plan", *QUICK],
                 ["plan", "--config", "no-such.yaml"]):  # bad input: one error line, exit 2
        own, forked = glora_cmd(args), glora_cmd(args, worker=sock)
        assert (forked.returncode, forked.stdout, forked.stderr) == (own.returncode, own.stdout, own.stderr), args
        assert jobs_in(log)[-1][1] == " ".join(args) and own.returncode == (2 if "no-such.yaml" in args else 0)
    assert own.stderr.startswith("error: ") and "no-such.yaml" in own.stderr
    assert f"job {jobs_in(log)[-1][0]}: {{'exit': 2}}" in log.read_text()
    # a Snakemake rule's log: redirection is the client's descriptor, which the stage writes to
    with open(tmp_path / "job.log", "w") as out:
        subprocess.run([sys.executable, "-m", "glora", "space", "--backbone", "vit_mini"], cwd=tmp_path, stdout=out,
                       env={**os.environ, "GLORA_WORKER": str(sock)}, check=True)
    assert '"max_params": 169088' in (tmp_path / "job.log").read_text()
    assert jobs_in(log)[-1][1] == "space --backbone vit_mini"
    # the files the stage creates follow the client's umask, not the worker's
    logged = tmp_path / "plan.log"
    args = ["plan", *QUICK, "--log", str(logged)]
    subprocess.run([sys.executable, "-m", "glora", *args], cwd=ROOT, env={**os.environ, "GLORA_WORKER": str(sock)},
                   capture_output=True, check=True, preexec_fn=lambda: os.umask(0o077))
    assert jobs_in(log)[-1][1] == " ".join(args) and (logged.stat().st_mode & 0o777) == 0o600


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_stopped_or_killed_client_ends_its_stage(worker, tmp_path, how):
    """A stage blocked on a mirror that never answers: SIGTERM to the client is passed on (exit 143, as a stage in
    its own process); a client killed outright closes its socket and the stage terminates itself."""
    sock, log = worker
    sources = yaml.safe_load((ROOT / "config" / "sources.yaml").read_text())
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "vtab-1k.zip").write_bytes(b"PK")
    with FileServer(tmp_path / "www") as server:
        server.faults["vtab-1k.zip"] = "hang"
        sources["vtab"]["archive"]["urls"] = [server.url("vtab-1k.zip")]
        (tmp_path / "sources.yaml").write_text(yaml.safe_dump(sources))
        before = len(jobs_in(log))
        client = subprocess.Popen(
            [sys.executable, "-m", "glora", "prepare", "vtab", "--quiet", "--set",
             f"paths.sources={tmp_path}/sources.yaml", "--set", f"paths.vtab={tmp_path}/vtab", "--set",
             f"paths.downloads={tmp_path}/dl"],
            cwd=ROOT, env={**os.environ, "GLORA_WORKER": str(sock)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for(lambda: len(jobs_in(log)) > before and server.requests_for("vtab-1k.zip"), 120, "the download")
        child = jobs_in(log)[-1][0]
        assert not gone(child)
        client.send_signal(getattr(signal, how))
        client.wait(60)
        wait_for(lambda: gone(child), 60, f"the stage {child} to end")
        server.release.set()
    assert client.returncode == (128 + signal.SIGTERM if how == "SIGTERM" else -signal.SIGKILL)
    assert f"job {child}: {{'exit': 143}}" in log.read_text()  # both ways the stage unwound from its SIGTERM handler


def test_without_a_worker_or_inside_a_slurm_job_the_stage_runs_in_its_own_process(worker, tmp_path):
    sock, log = worker
    args = ["space", "--backbone", "vit_mini"]
    expected = glora_cmd(args).stdout
    before = log.read_text()
    assert glora_cmd(args, worker=tmp_path / "nobody.sock").stdout == expected
    assert glora_cmd(args, worker=sock, extra_env={"SLURM_JOB_ID": "1"}).stdout == expected
    assert log.read_text() == before


def test_another_checkout_is_refused_and_a_changed_package_stops_the_worker(tmp_path):
    """A worker started from a copy of the package: this checkout's client is refused (and runs the stage itself);
    the copy's client is served; after a file of the copy changes the next client is refused and the worker ends."""
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "glora", copy / "glora", ignore=shutil.ignore_patterns("__pycache__"))
    sock, path_env = tmp_path / "w.sock", {"PYTHONPATH": str(copy)}  # and run in the copy: -m puts cwd first
    pid = start_worker(sock, extra_env=path_env, cwd=copy)
    log = sock.with_suffix(".log")
    args = ["space", "--backbone", "vit_mini"]
    expected = glora_cmd(args).stdout
    assert glora_cmd(args, worker=sock).stdout == expected
    assert f"this worker runs {copy / 'glora'}" in log.read_text() and not jobs_in(log)
    assert glora_cmd(args, worker=sock, extra_env=path_env, cwd=copy).stdout == expected
    assert [job for _, job in jobs_in(log)] == [" ".join(args)]
    changed = copy / "glora" / "worker.py"
    os.utime(changed, (changed.stat().st_atime, changed.stat().st_mtime + 10))
    assert glora_cmd(args, worker=sock, extra_env=path_env, cwd=copy).stdout == expected
    assert "stale: a file of the package changed" in log.read_text()
    wait_for(lambda: gone(pid) or not sock.exists(), 30, "the stale worker to stop")
    assert len(jobs_in(log)) == 1
