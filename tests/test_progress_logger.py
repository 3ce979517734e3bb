"""The `glora` Snakemake logger plugin (workflow/logger): `snakemake --logger glora` on throwaway Snakefiles.

The plugin is a distribution of its own, found by Snakemake only when installed non-editable
(`pip install ./workflow/logger`); without it these tests are skipped.
"""

import pkgutil
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
PLUGIN = "snakemake_logger_plugin_glora"

pytestmark = pytest.mark.skipif(
    not any(m.name == PLUGIN for m in pkgutil.iter_modules()),
    reason="the glora logger plugin is not installed (Snakemake finds it only as a non-editable install: "
    "pip install ./workflow/logger)",
)

# One line per finished job: [ 7/10  70%]  00:02 elapsed  ~00:01 left      summarise  c (0.2 s)
JOB_LINE = re.compile(r"^\[\s*(\d+)/(\d+)\s+(\d+)%\]  \d\d:\d\d elapsed  (ETA: estimating|~\d\d:\d\d left)\s+(\S+)")

# 4 `make` and 4 `summarise` jobs (0.2 s each), `report` and `all`: 10 jobs.
PIPELINE = """
SAMPLES = ["a", "b", "c", "d"]
rule all:
    input: expand("out/{s}.sum", s=SAMPLES), "out/report.txt"
rule make:
    output: "out/{s}.txt"
    log: "logs/make/{s}.log"
    shell: "sleep 0.2; echo {wildcards.s} > {output} 2> {log}"
rule summarise:
    input: "out/{s}.txt"
    output: "out/{s}.sum"
    log: "logs/summarise/{s}.log"
    shell: "sleep 0.2; wc -c < {input} > {output} 2> {log}"
rule report:
    input: expand("out/{s}.sum", s=SAMPLES)
    output: "out/report.txt"
    shell: "cat {input} > {output}"
"""

# `make a` succeeds, then `broken x` (which needs it) fails: 3 jobs, 1 finished, 1 failed.
FAILING = """
rule all:
    input: "out/x.broken"
rule make:
    output: "out/{s}.txt"
    shell: "sleep 0.2; echo {wildcards.s} > {output}"
rule broken:
    input: "out/a.txt"
    output: "out/{s}.broken"
    log: "logs/broken/{s}.log"
    shell: "sleep 0.2; echo 'something went wrong' > {log}; exit 3"
"""


def run_snakemake(tmp_path: Path, snakefile: str, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "Snakefile").write_text(textwrap.dedent(snakefile))
    return subprocess.run(
        [SNAKEMAKE, "--logger", "glora", "--cores", "2", *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )


def job_lines(output: str) -> list[re.Match]:
    return [m for m in map(JOB_LINE.match, output.splitlines()) if m]


def test_one_line_per_finished_job_with_progress_and_eta(tmp_path):
    result = run_snakemake(tmp_path, PIPELINE)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "\x1b[" not in out, "colours although the output is not a terminal"

    lines = job_lines(result.stderr)
    assert len(lines) == 10, out
    assert [int(m[1]) for m in lines] == list(range(1, 11)) and {m[2] for m in lines} == {"10"}
    assert lines[-1][0].startswith("[10/10  100%]")
    assert [m[5] for m in lines].count("make") == 4 and [m[5] for m in lines].count("summarise") == 4
    assert re.search(r"summarise +[abcd] \(\d+\.\d s\)$", result.stderr, re.MULTILINE), out  # wildcards and duration
    # no estimate from the first jobs, an estimate once a few have finished
    assert lines[0][4] == "ETA: estimating"
    assert any(m[4].endswith(" left") for m in lines[3:-1]), out

    # Snakemake's job table once; its per-job blocks and "N of M steps" lines not at all
    assert out.count("Job stats:") == 1 and re.search(r"^total +10$", out, re.MULTILINE)
    assert "localrule make:" not in out and "steps (" not in out and "Finished jobid" not in out
    assert "Complete log(s):" in out


def test_a_failed_job_names_its_rule_and_log_and_snakemake_still_reports(tmp_path):
    result = run_snakemake(tmp_path, FAILING)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out

    assert len(job_lines(result.stderr)) == 1 and "[1/3   33%]" in out, out
    failed = [line for line in out.splitlines() if "FAILED" in line]
    assert len(failed) == 1, out
    assert re.search(r"FAILED\s+broken  x \(\d+\.\d s\)  log: logs/broken/x\.log$", failed[0]), failed[0]

    # Snakemake's own error report, unchanged
    assert "Error in rule broken:" in out and "exit status 3" in out
    assert "Exiting because a job execution failed" in out
    assert "At least one job did not complete successfully." in out


def test_a_dry_run_prints_the_job_table_not_the_job_blocks(tmp_path):
    result = run_snakemake(tmp_path, FAILING, "--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout  # as Snakemake's own dry-run output: stdout
    assert out.count("Job stats:") == 1 and re.search(r"^broken +1$", out, re.MULTILINE), out
    assert "Reasons:" in out and "This was a dry-run" in out
    assert "rule broken:" not in out and not job_lines(out) and not (tmp_path / "out").exists()


def test_eta_from_the_mean_duration_of_each_rule():
    from snakemake_logger_plugin_glora.clock import RunClock

    clock = RunClock(min_jobs=3)
    clock.cores = 2
    clock.plan({"make": 4, "train": 4, "all": 1}, now=0.0)
    clock.start(0, now=0.0)  # JOB_STARTED first, JOB_INFO (with the rule) next
    clock.start(0, now=0.5, rule="make")
    clock.start(1, now=0.0, rule="make")
    clock.finish(0, now=10.0)
    clock.finish(1, now=10.0)
    assert clock.eta(now=10.0) is None  # 2 finished jobs: still estimating
    clock.start(2, now=10.0, rule="make")
    clock.finish(2, now=20.0)
    clock.start(3, now=20.0, rule="train")
    clock.finish(3, now=50.0)
    assert clock.peak == 2 and clock.parallel() == 2
    # make: 1 job left x 10 s; train: 3 x 30 s; all (not seen yet): 1 x the mean of all, 15 s; on 2 cores
    assert clock.eta(now=50.0) == pytest.approx((10 + 90 + 15) / 2)
    clock.start(4, now=50.0, rule="train")  # a running job counts for what it has left
    assert clock.eta(now=62.0) == pytest.approx((10 + 90 - 12 + 15) / 2)
