"""The ``glora`` Snakemake logger plugin: one plain line per finished job, with the progress and an ETA.

Select it with ``snakemake --logger glora``. Instead of Snakemake's ten-line block for every job and its
"N of M steps (X%) done", a run prints Snakemake's job table once and then one line per finished job::

    [ 37/92  40%]  03:12 elapsed  ~04:40 left      train  vtab/glora_large/digits/seed0 (48 s)

and, for a job that fails, a line naming its rule, wildcards and log file(s), followed by Snakemake's own error
block::

    [ 37/92  40%]  03:15 elapsed  FAILED           train  vtab/glora_large/digits/seed1 (3.1 s)  log: results/...

The counts are Snakemake's (its PROGRESS events); the time left comes from ``clock.RunClock`` and reads
"ETA: estimating" until a few jobs have finished. Everything Snakemake says that is not a job block or a progress
line still reaches the user unchanged (warnings, errors and their hints, "Nothing to be done", the log file and
the elapsed time), except a few lines of chatter: "Assuming unrestricted shared filesystem usage.", "Using
shell: ...", "Select jobs to execute...", "Execute N jobs...", "Rules claiming more threads will be scaled
down." and the start-of-workflow banner (all of it stays in Snakemake's log file under .snakemake/log/).

Options of Snakemake that it follows: ``--quiet`` (Snakemake's own filter is attached, as for its default
output), ``--printshellcmds`` (the command of each job, on one line, as it starts), ``--verbose`` (a line as each
job starts, and the debug messages), ``--show-failed-logs`` (the failed job's log under its error block),
``--nocolor``. Colours are used only on a terminal (never when the output is a file or a pipe, e.g. CI logs)
and not when NO_COLOR is set or TERM=dumb.

Dry runs (``-n``) print Snakemake's job table once (not its ten-line block per job; with ``--verbose`` one
line per job that would run), its summary of the reasons and its closing note.

Output goes where Snakemake's default output goes: stderr, or stdout in a dry run.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import textwrap

from snakemake_interface_logger_plugins.base import LogHandlerBase
from snakemake_interface_logger_plugins.common import LogEvent

from snakemake_logger_plugin_glora.clock import RunClock

__all__ = ["LogHandler"]

# Plain info messages of Snakemake that say nothing to someone watching a run.
CHATTER = re.compile(
    r"^(Assuming unrestricted shared filesystem usage\.|Using shell: |Select jobs to execute\.\.\."
    r"|Rules claiming more threads will be scaled down\.)"
)
TIMESTAMP = re.compile(r"\[\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4}\]")  # the time.asctime() Snakemake puts first
RED, YELLOW, GREEN, RESET = "\033[31m", "\033[33m", "\033[32m", "\033[0m"


def clock_time(seconds: float) -> str:
    """03:12, or 1:02:03 from an hour on."""
    s = round(seconds)
    h, m, s = s // 3600, s // 60 % 60, s % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def duration(seconds: float | None) -> str:
    """0.2 s, 48 s, 3 min 12 s, 1 h 05 min."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.1f} s"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s // 60 % 60:02d} min"


def wildcard_label(wildcards) -> str:
    """The wildcard values joined by '/', e.g. vtab/glora_large/digits/seed0."""
    try:
        return "/".join(str(v) for v in dict(wildcards).values())
    except (TypeError, ValueError):
        return str(wildcards or "")


class LogHandler(LogHandlerBase):
    """Writes the lines described in the module docstring; Snakemake attaches its own filter and formatter."""

    def __post_init__(self) -> None:
        s = self.common_settings
        self.stream = sys.stdout if s.stdout else sys.stderr
        self.dryrun = bool(s.dryrun)
        self.verbose = bool(s.verbose)
        isatty = getattr(self.stream, "isatty", lambda: False)
        self.color = not s.nocolor and isatty() and os.environ.get("TERM") != "dumb" and "NO_COLOR" not in os.environ
        self.clock = RunClock()
        self.jobs: dict[int, tuple[str, str]] = {}  # jobid -> (rule, wildcard label)
        self.pending: list[tuple[int, float | None]] = []  # finished jobs waiting for Snakemake's count
        self.done, self.total = 0, 0
        self.last_job: int | None = None  # the job of a following SHELLCMD record
        self.last_table: str | None = None
        self.rule_width = 0  # the longest rule name of the run: the wildcards line up
        self.closed = False

    # The interface of snakemake-interface-logger-plugins.
    @property
    def writes_to_stream(self) -> bool:
        return True

    @property
    def writes_to_file(self) -> bool:
        return False

    @property
    def has_filter(self) -> bool:
        return False  # Snakemake's DefaultFilter: --quiet, --printshellcmds, --debug-dag

    @property
    def has_formatter(self) -> bool:
        return False  # Snakemake's DefaultFormatter, for the messages passed on as Snakemake writes them

    @property
    def needs_rulegraph(self) -> bool:
        return False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.handle_event(record)
        except Exception:  # noqa: BLE001 (a bug here must not hide Snakemake's message)
            self.handleError(record)
            self.write(record.getMessage())

    def close(self) -> None:
        if not self.closed:  # Snakemake may close a handler twice
            self.closed = True
            self.flush_finished(self.done + len(self.pending), self.total, None)
        super().close()

    # Output.
    def paint(self, text: str, color: str | None) -> str:
        return f"{color}{text}{RESET}" if color and self.color and text else text

    def write(self, text: str, color: str | None = None) -> None:
        if text:
            self.stream.write(self.paint(text, color) + "\n")
            self.stream.flush()

    def snakemake_text(self, record: logging.LogRecord) -> str:
        """The record as Snakemake's default output writes it, without the timestamp line it puts first."""
        text = self.format(record) if self.formatter else record.getMessage()
        first, _, rest = text.partition("\n")
        return rest if TIMESTAMP.fullmatch(first) and rest else text

    def counter(self, done: int, total: int) -> str:
        width = len(str(total))
        percent = int(100 * done / total) if total else 0
        return f"[{done:>{width}}/{total}  {percent:>3}%]"

    def job_label(self, jobid: int, rule: str | None = None) -> str:
        known_rule, wildcards = self.jobs.get(jobid, (rule or f"job {jobid}", ""))
        return f"{rule or known_rule:<{self.rule_width}}  {wildcards}".rstrip()

    # Events.
    def handle_event(self, record: logging.LogRecord) -> None:
        event = getattr(record, "event", None)
        now = record.created
        if event == LogEvent.WORKFLOW_STARTED:
            return  # the banner: in the log file
        if event == LogEvent.RESOURCES_INFO:
            if getattr(record, "cores", None):
                self.clock.cores = int(record.cores)
            if not CHATTER.match(record.getMessage()):
                self.write(record.getMessage())
        elif event == LogEvent.RUN_INFO:
            self.on_run_info(record, now)
        elif event == LogEvent.JOB_STARTED:
            for jobid in getattr(record, "jobs", None) or []:
                self.clock.start(jobid, now)
        elif event == LogEvent.JOB_INFO:
            self.on_job_info(record, now)
        elif event == LogEvent.SHELLCMD:
            self.on_shellcmd(record)
        elif event == LogEvent.JOB_FINISHED:
            self.on_job_finished(record, now)
        elif event == LogEvent.PROGRESS:
            self.flush_finished(record.done, record.total, now)
        elif event == LogEvent.JOB_ERROR:
            self.on_job_error(record, now)
        elif event in (LogEvent.ERROR, LogEvent.GROUP_ERROR):
            self.write(self.snakemake_text(record), RED)
        elif event is not None:  # GROUP_INFO, DEBUG_DAG, RULEGRAPH and any later ones: as Snakemake writes them
            self.write(self.snakemake_text(record))
        else:
            self.on_message(record)

    def on_run_info(self, record: logging.LogRecord, now: float) -> None:
        stats = dict(getattr(record, "stats", None) or {})
        self.total = int(stats.pop("total", self.total) or 0)
        table = record.getMessage()
        if table != self.last_table:  # a dry run sends the same table before and after its job list
            self.write(table)
            self.last_table = table
        self.rule_width = max(map(len, stats), default=0)
        if not self.dryrun:
            self.clock.plan({rule: int(n) for rule, n in stats.items()}, now)

    def on_job_info(self, record: logging.LogRecord, now: float) -> None:
        jobid = record.jobid
        self.jobs[jobid] = (record.rule_name, wildcard_label(getattr(record, "wildcards", None)))
        self.last_job = jobid
        if self.dryrun:
            if self.verbose:
                reason = getattr(record, "reason", None)
                self.write(f"would run  {self.job_label(jobid)}" + (f"  ({reason})" if reason else ""))
            return
        self.clock.start(jobid, now, record.rule_name)
        if self.verbose:
            self.write(f"{'':>{len(self.counter(self.done, self.total))}}  started  {self.job_label(jobid)}")

    def on_shellcmd(self, record: logging.LogRecord) -> None:
        cmd = textwrap.dedent(getattr(record, "shellcmd", None) or "").strip()
        if cmd:
            label = self.job_label(self.last_job) if self.last_job is not None else ""
            self.write(f"  {label}  $ " + cmd.replace("\n", "\n      "))

    def on_job_finished(self, record: logging.LogRecord, now: float) -> None:
        jobid = record.job_id
        if jobid not in self.jobs:  # its JOB_INFO was filtered out (--quiet rules): the rule is in the message
            named = re.search(r"\(Rule: (\S+)\)", record.getMessage())
            self.jobs[jobid] = (named[1] if named else f"job {jobid}", "")
        self.pending.append((jobid, self.clock.finish(jobid, now, self.jobs[jobid][0])))

    def flush_finished(self, done: int, total: int, now: float | None) -> None:
        """Print the finished jobs waiting for Snakemake's count (``done`` includes them all)."""
        pending, self.pending = self.pending, []
        self.done, self.total = done, total
        for i, (jobid, took) in enumerate(pending):
            n = done - (len(pending) - 1 - i)
            if now is None:
                times = ""
            else:
                eta = 0.0 if n >= total else self.clock.eta(now, total)
                left = "ETA: estimating" if eta is None else f"~{clock_time(eta)} left"
                times = f"  {clock_time(self.clock.elapsed(now))} elapsed  {left:<15}"
            took = f" ({duration(took)})" if took is not None else ""
            self.write(f"{self.paint(self.counter(n, total), GREEN)}{times}  {self.job_label(jobid)}{took}")

    def on_job_error(self, record: logging.LogRecord, now: float) -> None:
        jobid = getattr(record, "jobid", None)
        rule = getattr(record, "rule_name", None)
        took = self.clock.fail(jobid, now, rule)
        logs = [str(f) for f in getattr(record, "log", None) or []]
        where = f"log: {', '.join(logs)}" if logs else "no log file: see Snakemake's error below"
        times = f"  {clock_time(self.clock.elapsed(now))} elapsed  {'FAILED':<15}"
        took = f" ({duration(took)})" if took is not None else ""
        self.write(f"{self.counter(self.done, self.total)}{times}  {self.job_label(jobid, rule)}{took}  {where}", RED)
        self.write(self.snakemake_text(record), RED)

    def on_message(self, record: logging.LogRecord) -> None:
        """A plain message of Snakemake: passed on, apart from the chatter (info only) of the docstring."""
        message = self.snakemake_text(record)
        if not message or message == "None":
            return
        if record.levelno >= logging.ERROR:
            self.write(message, RED)
        elif record.levelno >= logging.WARNING:
            self.write(message, YELLOW)
        elif not CHATTER.match(message):
            if message.startswith("Reasons:") and not (self.dryrun and self.verbose):
                message = message.replace("\n    (check individual jobs above for details)", "")
            self.write(message)
