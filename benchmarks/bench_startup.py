"""Per-job overhead of the pipeline: process start-up of ``python -m glora <stage>``; prints seconds and shares.

Every Snakemake job is a fresh process, so every job pays the interpreter, torch, timm (which imports
torchvision, whose ``ops/roi_align.py`` imports ``torch._dynamo``) and the package before it does any work.

- ``--help``: the whole process, per stage (no torch may be imported);
- start-up to the first line of real work: the time from starting ``python -m glora <stage> ...`` (the mini
  suite's own command line) to the moment it first opens its input (export: the weights; evaluate: the card
  beside the model; train: the data or the checkpoint; search: the supernet). An audit hook (PEP 578) in the
  child reports that moment and ends the process there, so nothing is written;
- what the imports cost alone (``import torch``, ``import torch._dynamo``, ``import timm``);
- the share of the mini suite's job time spent in start-up: for every Snakemake benchmark file of the run
  (``results/mini/benchmarks/**.tsv``, one per job), the start-up of its stage over the job's wall time.

With ``--worker`` the same command lines are also started through a start-up worker (``glora/worker.py``, what
``make run``/``mini``/``ci`` use): a worker of the code under test, with the same audit hook, forks per command,
and the time is again from starting ``python -m glora`` to the fork's first open of its input. The share then
uses those times: give it the benchmark files of a run made with a worker.

Every number is the median of ``--runs`` runs, interleaved; the load average is printed beside it.

    python benchmarks/bench_startup.py --results results/mini            # inside the repository, after a run
    python benchmarks/bench_startup.py --results results/mini --worker   # ... a run made by make run/mini
    python benchmarks/bench_startup.py --ratios                           # only the summary lines (make bench)

Targets (issue 20): ``--help`` <= 0.5 s without torch; export/evaluate start-up <= 2.0 s; the start-up share of
the mini suite halved.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: child code: report the first open() of a path starting with one of the prefixes, then end the process
PROBE = r"""
import os, sys, time
prefixes = tuple(os.environ["GLORA_PROBE_PREFIXES"].split(os.pathsep))
def hook(event, args):
    if event == "open" and isinstance(args[0], str) and os.path.abspath(args[0]).startswith(prefixes):
        sys.stderr.write(f"GLORA_PROBE {time.time():.6f}\n")
        sys.stderr.flush()
        os._exit(0)
sys.addaudithook(hook)
import runpy
sys.argv = ["python -m glora", *sys.argv[1:]]
runpy.run_module("glora", run_name="__main__", alter_sys=True)
"""


#: a worker (glora.worker) whose forked children report their first open the same way
WORKER_PROBE = r"""
import os, sys, time
from pathlib import Path
def hook(event, args):  # in the worker's forks: their environment (the client's) names the prefixes
    prefixes = os.environ.get("GLORA_PROBE_PREFIXES")
    if event == "open" and prefixes and isinstance(args[0], str) and \
            os.path.abspath(args[0]).startswith(tuple(prefixes.split(os.pathsep))):
        sys.stderr.write(f"GLORA_PROBE {time.time():.6f}\n")
        sys.stderr.flush()
        os._exit(0)
sys.addaudithook(hook)
from glora.worker import serve
serve(Path(sys.argv[1]), idle=float(sys.argv[2]))
"""


def load() -> float:
    return os.getloadavg()[0]


CODE = [ROOT]


def env() -> dict:
    """The checkout under test first on the path; PYTHONSAFEPATH keeps ``-m``/``-c`` from putting the working
    directory (the run's repository) in front of it."""
    return {**os.environ, "PYTHONSAFEPATH": "1",
            "PYTHONPATH": os.pathsep.join([str(CODE[0]), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


def whole(argv: list[str], cwd: Path) -> float:
    """Seconds from starting ``python argv`` to its exit."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *argv], cwd=cwd, env=env(), check=True, capture_output=True)
    return time.perf_counter() - t0


def to_first_open(args: list[str], prefixes: list[Path], cwd: Path, worker: Path | None = None) -> float:
    """Seconds from starting ``python -m glora args`` to its first open of a path under ``prefixes`` (in its own
    process, or in the fork of ``worker``, whose probe hook reports it)."""
    e = {**env(), "GLORA_PROBE_PREFIXES": os.pathsep.join(str(p.resolve()) for p in prefixes)}
    argv = [sys.executable, "-c", PROBE, *args]
    if worker is not None:
        e["GLORA_WORKER"], argv = str(worker), [sys.executable, "-m", "glora", *args]
    t0 = time.time()
    out = subprocess.run(argv, cwd=cwd, env=e, capture_output=True, text=True)
    mark = re.search(r"GLORA_PROBE (\S+)", out.stderr)
    if not mark:
        raise RuntimeError(f"python -m glora {' '.join(args)} never opened {prefixes}:\n{out.stderr[-2000:]}")
    return float(mark.group(1)) - t0


def start_worker(path: Path, cwd: Path) -> tuple[Path, subprocess.Popen]:
    """A worker of the code under test with the probe hook, listening on ``path``."""
    import socket

    process = subprocess.Popen([sys.executable, "-c", WORKER_PROBE, str(path), "600"], cwd=cwd, env=env())
    for _ in range(1200):
        probe = socket.socket(socket.AF_UNIX)
        try:
            probe.connect(str(path))
            return path, process
        except OSError:
            time.sleep(0.1)
        finally:
            probe.close()
    raise RuntimeError(f"the worker did not listen on {path}")


def imports_torch(argv: list[str], cwd: Path) -> bool:
    out = subprocess.run([sys.executable, "-X", "importtime", *argv], cwd=cwd, env=env(), capture_output=True,
                         text=True)
    return bool(re.search(r"\|\s+torch$", out.stderr, re.M))


def mini_probes(results: Path, tmp: Path) -> dict[str, tuple[list[str], list[Path]]]:
    """The mini suite's command lines (as its rules write them) for one GLoRA run, with what each opens first."""
    cfg = results / "config.resolved.yaml"
    run = ["--method", "glora", "--task", "digits", "--seed", "0", "--size", "glora_large"]
    opts = ["--config", str(cfg), "--quiet", "--device", "cpu", "--threads", "1"]
    train = results / "vtab/train/glora_large/digits/seed0"
    export = results / "vtab/export/glora_large/digits/seed0"
    data = [results / "data", results.parent.parent / "assets"]
    return {
        "train": (["train", *opts, *run, "--out", str(tmp / "train")], data),
        "search": (["search", *opts, *run, "--weights", str(train / "weights.safetensors"), "--out",
                    str(tmp / "search")], [train / "weights.safetensors"]),
        "export": (["export", *opts, *run, "--weights", str(train / "weights.safetensors"), "--choices",
                    str(results / "vtab/search/glora_large/digits/seed0/best.json"), "--out", str(tmp / "export")],
                   [train / "weights.safetensors"]),
        "evaluate": (["evaluate", *opts, "--model", str(export / "model.safetensors"), "--supernet",
                      str(train / "weights.safetensors"), "--out", str(tmp / "evaluate.json")],
                     [export / "card.json"]),
    }


def job_times(benchmarks: Path, like: Path | None = None) -> dict[str, list[float]]:
    """Wall seconds of every job of a run, by stage (the folder after the experiment: train, export, ...); with
    ``like`` (another run's benchmark folder) only the jobs that run has too, for a before/after on one job set."""
    out: dict[str, list[float]] = {}
    for tsv in sorted(benchmarks.rglob("*.tsv")):
        if like is not None and not (like / tsv.relative_to(benchmarks)).is_file():
            continue
        parts = tsv.relative_to(benchmarks).parts
        stage = parts[1] if len(parts) > 2 else parts[0]
        lines = tsv.read_text().splitlines()
        if len(lines) >= 2:
            out.setdefault(stage, []).append(float(lines[1].split("\t")[0]))
    return out


#: benchmark folder -> the stage whose start-up it pays (llm_* jobs import torch and transformers: at least this)
STAGE_OF = {"train": "train", "retrain": "train", "search": "search", "export": "export", "evaluate": "evaluate",
            "standalone": "train", "select": "help", "mini.tsv": "help"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results/mini"),
                        help="a finished mini run (its inputs are read, nothing is written there)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose glora is measured (default: "
                        "this one; another one gives the before/after numbers)")
    parser.add_argument("--ratios", action="store_true", help="print only the summary lines")
    parser.add_argument("--same-jobs-as", type=Path, metavar="RUN", help="the share over the jobs that this other "
                        "run (its results folder) has too, e.g. the quick subset's jobs within a whole mini run")
    parser.add_argument("--worker", action="store_true", help="also measure the stages started through a worker "
                        "(GLORA_WORKER, glora/worker.py); the share then uses those (give it a run made with one)")
    args = parser.parse_args()
    say = (lambda *a: None) if args.ratios else print
    CODE[0] = args.code.resolve()
    results = args.results.resolve()
    cwd = results.parent.parent  # the repository the run's relative paths start from
    say(f"python {sys.version.split()[0]}, code under test: {CODE[0]}, run: {results}; load {load():.2f} at start")

    samples: dict[str, list[float]] = {}
    helps = ["-m glora --help"] + [f"-m glora {s} --help" for s in ("train", "export", "evaluate", "search")]
    imports = {"import torch": ["-c", "import torch"], "import torch._dynamo": ["-c", "import torch._dynamo"],
               "import timm": ["-c", "import timm"], "import glora.experiment": ["-c", "import glora.experiment"]}
    with tempfile.TemporaryDirectory() as tmp:
        probes = mini_probes(results, Path(tmp)) if (results / "config.resolved.yaml").is_file() else {}
        if not probes:
            say(f"no finished mini run at {results}: start-up to real work and the share are skipped")
        worker = start_worker(Path(tmp) / "w.sock", cwd) if args.worker and probes else None
        loads = []
        for _ in range(args.runs):
            loads.append(load())
            for h in helps:
                samples.setdefault(h, []).append(whole(h.split(), cwd))
            for name, argv in imports.items():
                samples.setdefault(name, []).append(whole(argv, cwd))
            for stage, (argv, prefixes) in probes.items():
                samples.setdefault(f"{stage} to first input", []).append(to_first_open(argv, prefixes, cwd))
                if worker:
                    samples.setdefault(f"{stage} to first input, worker", []).append(
                        to_first_open(argv, prefixes, cwd, worker[0]))
        loads.append(load())
        if worker:
            worker[1].terminate()
            worker[1].wait()
    med = {k: statistics.median(v) for k, v in samples.items()}
    torch_in_help = imports_torch("-m glora export --help".split(), cwd)
    say(f"\n{'what':32} {'median s':>9} {'min s':>7} {'max s':>7}   ({args.runs} runs, load {min(loads):.2f}-"
        f"{max(loads):.2f})")
    for k, v in samples.items():
        say(f"{k:32} {med[k]:9.3f} {min(v):7.3f} {max(v):7.3f}")
    tag = f"[load {min(loads):.2f}-{max(loads):.2f}, {os.cpu_count()} cores, median of {args.runs}]"
    print(f"help: {max(med[h] for h in helps):.3f} s at most over {len(helps)} commands, imports torch: "
          f"{torch_in_help}  (target <= 0.5 s, no torch) {tag}")
    if probes:
        mode = ", worker" if args.worker else ""
        for stage in ("export", "evaluate"):
            alone = f", {med[f'{stage} to first input']:.3f} s in its own process" if mode else ""
            print(f"{stage}: {med[f'{stage} to first input{mode}']:.3f} s to the first input{mode and ' (worker)'}"
                  f"{alone} (target <= 2.0 s) {tag}")
        startup = {"help": max(med[h] for h in helps),
                   **{s: med[f"{s} to first input{mode}"] for s in ("train", "search", "export", "evaluate")}}
        times = job_times(results / "benchmarks", args.same_jobs_as and args.same_jobs_as.resolve() / "benchmarks")
        total = sum(sum(v) for v in times.values())
        paid = 0.0
        for stage, walls in times.items():
            s = startup[STAGE_OF.get(stage, "evaluate")]
            paid += s * len(walls)
            say(f"  {stage:10} {len(walls):4d} jobs, {sum(walls):8.1f} s of job time, start-up {s:.2f} s each")
        print(f"start-up share of the run's job time: {paid / total:.3f} ({paid:.0f} s of {total:.0f} s over "
              f"{sum(len(v) for v in times.values())} jobs with a benchmark file) {tag}")
        say(json.dumps({"startup_s": {k: round(v, 3) for k, v in startup.items()}}))


if __name__ == "__main__":
    main()
