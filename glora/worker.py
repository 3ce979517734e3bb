"""A start-up worker: one process that has imported torch, timm and the stages once, and forks per job.

Every Snakemake job is a fresh ``python -m glora <stage>``, and every one pays the interpreter, torch, timm
(which pulls in ``torch._dynamo`` through torchvision) and the package -- about 3.5 s on a small CPU, for jobs
that often last a few seconds. With ``GLORA_WORKER=<socket>`` in the environment, ``python -m glora`` hands its
command line, working directory, environment and standard streams (the descriptors themselves, so Snakemake's
``log:`` redirections hold) to the worker listening there; the worker forks, the child runs the stage exactly
as the process would have (:func:`glora.cli.main`), and the exit status comes back. The results are the same
computations in the same libraries: the golden tables do not move.

The worker is used only where that is sure to be the same process:

- opt-in (``make run``/``mini``/``ci`` start one and set the variable; a plain ``snakemake`` run does not);
- never inside a SLURM job (its cgroup and GPUs are the job's, not the worker's);
- the worker refuses a client of another checkout or interpreter, and shuts down when a file of its package
  changes; a refused or absent worker means the command runs in its own process, as without one;
- it forks only while it has not initialised CUDA nor started a thread since its imports (an OpenMP pool
  does not survive a fork; the BLAS thread numpy starts on import registers its own fork handlers).

A client killed with SIGTERM/SIGINT passes the signal on; a client that dies outright closes its socket, and
the child terminates itself (SIGTERM: temporary files are removed as in any stage). The worker exits after
``--idle`` seconds without a job. Snakemake's ``benchmark:`` files keep the job's wall time; their memory and
CPU columns count the client only.

    python -m glora.worker --socket /tmp/w.sock --detach     # start one in the background, return when ready
    GLORA_WORKER=/tmp/w.sock python -m glora export ...       # this stage runs in a fork of it
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

ENV = "GLORA_WORKER"
PACKAGE = Path(__file__).resolve().parent
#: what a stage imports before its first line of real work; loaded once by the worker
PRELOAD = ("torch", "timm", "glora.train", "glora.search", "glora.export", "glora.evaluate", "glora.select",
           "glora.standalone")
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def default_socket() -> Path:
    """A socket path for this checkout and user, short enough for AF_UNIX (108 bytes)."""
    import hashlib
    import tempfile

    tag = hashlib.sha256(str(PACKAGE).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"glora-worker-{os.getuid()}-{tag}.sock"


def _send(conn: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode() + b"\n"
    if fds:
        socket.send_fds(conn, [data], fds)
    else:
        conn.sendall(data)


def _lines(conn: socket.socket):
    """The newline-separated JSON messages of ``conn`` until it closes."""
    buffer = b""
    while True:
        while b"\n" not in buffer:
            chunk = conn.recv(65536)
            if not chunk:
                return
            buffer += chunk
        line, buffer = buffer.split(b"\n", 1)
        yield json.loads(line)


# -- the client: python -m glora, before anything heavy is imported ----------------------------------------
def forward(argv: list[str]) -> int | None:
    """Run ``argv`` in the worker named by ``$GLORA_WORKER``; its exit status, or None to run it here."""
    path = os.environ.get(ENV)
    if not path or os.environ.get("SLURM_JOB_ID"):
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
        umask = os.umask(0o022)
        os.umask(umask)
        request = {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), "umask": umask,
                   "package": str(PACKAGE), "executable": sys.executable}
        _send(conn, request, [0, 1, 2])
        messages = _lines(conn)
        reply = next(messages, None)
    except OSError:
        conn.close()
        return None
    if not reply or "pid" not in reply:
        conn.close()
        return None  # refused (another checkout, a stale package, CUDA or threads in the worker): run here
    child = reply["pid"]

    def pass_on(signum, frame):
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for sig in _FORWARDED:
        signal.signal(sig, pass_on)
    status = next(messages, None) or {"lost": True}
    conn.close()
    if "exit" in status:
        return status["exit"]
    if "signal" in status:
        print(f"error: the stage (pid {child} in the worker {path}) ended by signal {status['signal']}",
              file=sys.stderr)
        return 128 + status["signal"]
    print(f"error: lost the worker {path} while the stage ran (pid {child})", file=sys.stderr)
    return 1


# -- the worker ------------------------------------------------------------------------------------------
def _package_state() -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in sorted(PACKAGE.rglob("*.py"))}


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def _refusal(request: dict, state: dict[str, float], threads: int) -> str | None:
    if request.get("package") != str(PACKAGE) or request.get("executable") != sys.executable:
        return f"this worker runs {PACKAGE} with {sys.executable}"
    if _package_state() != state:
        return "stale: a file of the package changed since the worker started"
    if _threads() > threads:  # numpy's BLAS pool stops at a fork (its own handler) and is not restarted here
        return f"the worker has {_threads()} threads, {threads} after its imports; forking it is not safe"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return "the worker has initialised CUDA"
    return None


def _child(conn: socket.socket, others: list[socket.socket], request: dict, fds: list[int]) -> None:
    """In the fork: become the client's process (streams, directory, environment, umask, argv) and run the stage.
    ``others``: the worker's listening socket and its other jobs' connections, which this process must not hold."""
    import threading

    for sock in others:
        sock.close()
    for target, fd in zip((0, 1, 2), fds):
        os.dup2(fd, target)
        os.close(fd)
    for sig in (*_FORWARDED, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.stdout.reconfigure(line_buffering=os.isatty(1), write_through=bool(os.environ.get("PYTHONUNBUFFERED")))
    sys.argv = ["python -m glora", *request["argv"]]

    def watch():  # the client gone (killed outright): stop like a terminated job
        try:
            while conn.recv(1):
                pass
        except OSError:
            pass
        signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)  # interrupts a blocking call there

    threading.Thread(target=watch, daemon=True).start()
    code = 1
    try:
        from glora.cli import main

        code = main(request["argv"])
    except SystemExit as err:
        code = err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


def _request(conn: socket.socket) -> tuple[dict | None, list[int]]:
    """The client's request and its three descriptors (None for a connection closed without one)."""
    conn.settimeout(10)
    data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
    while data and not data.endswith(b"\n"):
        chunk = conn.recv(1 << 16)
        if not chunk:
            break
        data += chunk
    conn.settimeout(None)
    return (json.loads(data) if data.strip() else None), list(fds)


def serve(path: Path, idle: float = 120.0, log=None) -> None:
    """Listen on ``path`` until ``idle`` seconds pass without a job (or SIGTERM), forking one child per job."""
    import importlib
    import selectors

    say = (lambda text: print(f"{time.strftime('%H:%M:%S')} {text}", file=log, flush=True)) if log else (
        lambda text: None)
    t0 = time.perf_counter()
    for name in PRELOAD:
        importlib.import_module(name)
    state, threads = _package_state(), _threads()
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(64)
    say(f"worker {os.getpid()} on {path}: {len(PRELOAD)} modules loaded in {time.perf_counter() - t0:.1f} s")
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    children: dict[int, socket.socket] = {}
    last = time.monotonic()
    try:
        while not stop and (children or time.monotonic() - last < idle):
            for _ in selector.select(timeout=0.1):
                conn, _ = listener.accept()
                last = time.monotonic()
                try:
                    request, fds = _request(conn)
                except (OSError, ValueError) as err:
                    say(f"bad request: {err}")
                    conn.close()
                    continue
                if request is None:  # a probe (start, tests): connected and closed
                    conn.close()
                    continue
                refusal = _refusal(request, state, threads) if len(fds) == 3 else "expected three descriptors"
                if refusal:
                    say(f"refused {request.get('argv')}: {refusal}")
                    _send(conn, {"refused": refusal})
                    conn.close()
                    for fd in fds:
                        os.close(fd)
                    if refusal.startswith("stale"):
                        stop.append(True)
                    continue
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    _child(conn, [listener, *children.values()], request, fds)
                for fd in fds:
                    os.close(fd)
                children[pid] = conn
                _send(conn, {"pid": pid})
                say(f"job {pid}: {' '.join(request['argv'])}")
            while children:
                pid, status = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    break
                conn = children.pop(pid)
                last = time.monotonic()
                message = ({"exit": os.waitstatus_to_exitcode(status)} if os.WIFEXITED(status)
                           else {"signal": os.WTERMSIG(status)})
                say(f"job {pid}: {message}")
                try:
                    _send(conn, message)
                except OSError:
                    pass
                conn.close()
    finally:
        listener.close()
        path.unlink(missing_ok=True)
        say(f"worker {os.getpid()} stopped")


def start(path: Path, idle: float, log_path: Path, timeout: float = 120.0) -> int:
    """Start a worker in the background unless one answers on ``path``; return when it listens."""
    import subprocess

    if _answers(path):
        return 0
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:
        process = subprocess.Popen([sys.executable, "-m", "glora.worker", "--socket", str(path), "--idle",
                                    str(idle), "--log", str(log_path)], stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=log, start_new_session=True, env={**os.environ, ENV: ""})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            print(f"error: the worker exited with {process.returncode}; see {log_path}", file=sys.stderr)
            return 1
        if _answers(path):
            return 0
        time.sleep(0.1)
    print(f"error: the worker did not listen on {path} within {timeout:.0f} s; see {log_path}", file=sys.stderr)
    return 1


def _answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m glora.worker``: serve in the foreground, or start one in the background (``--detach``)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m glora.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--socket", type=Path, help="the socket to listen on (default: one per checkout in the "
                                                    "temporary directory; printed by --detach)")
    parser.add_argument("--idle", type=float, default=120.0, help="exit after this many seconds without a job "
                                                                  "(default: %(default)s)")
    parser.add_argument("--detach", action="store_true", help="start in the background (unless one answers on "
                                                              "the socket), return when it listens, print the socket")
    parser.add_argument("--log", type=Path, help="append the worker's log here (default with --detach: beside "
                                                 "the socket)")
    args = parser.parse_args(argv)
    path = args.socket or default_socket()
    if args.detach:
        code = start(path, args.idle, args.log or path.with_suffix(".log"))
        if code == 0:
            print(path)
        return code
    if args.log:
        with open(args.log, "a") as log:
            serve(path, args.idle, log)
    else:
        serve(path, args.idle)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
