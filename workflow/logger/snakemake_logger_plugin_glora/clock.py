"""Job timings of one Snakemake run, and the time left they imply.

Pure bookkeeping (no Snakemake import), fed with the timestamps of the log records:

- ``plan``: the per-rule job counts of RUN_INFO (what this run will execute);
- ``start``: a job began (JOB_STARTED or JOB_INFO, whichever comes first);
- ``finish`` / ``fail``: it ended (JOB_FINISHED / JOB_ERROR), giving its duration.

``eta`` estimates the seconds left: every job not yet ended costs the mean duration of the finished jobs of its
rule in this run (the mean over all finished jobs for a rule not seen yet), a running job less the time it has
already run; the sum is divided by the number of jobs that run at once (the most seen running together, at most
``cores``). Until ``min_jobs`` jobs have finished there is no estimate (None).
"""

from __future__ import annotations

from collections import Counter, defaultdict


class RunClock:
    def __init__(self, min_jobs: int = 3) -> None:
        self.min_jobs = min_jobs
        self.t0: float | None = None  # start of the run
        self.cores: int | None = None
        self.planned: dict[str, int] = {}  # rule -> jobs of this run (RUN_INFO)
        self.durations: defaultdict[str, list[float]] = defaultdict(list)  # rule -> durations of finished jobs
        self.ended: Counter[str] = Counter()  # rule -> finished or failed jobs
        self.running: dict[int, tuple[str | None, float]] = {}  # jobid -> (rule, start)
        self.peak = 0  # most jobs seen running at once

    def plan(self, per_rule: dict[str, int], now: float) -> None:
        self.planned = dict(per_rule)
        if self.t0 is None:
            self.t0 = now

    def start(self, jobid: int, now: float, rule: str | None = None) -> None:
        """Record a job's start; a second call (JOB_INFO after JOB_STARTED) only adds its rule."""
        if self.t0 is None:
            self.t0 = now
        known_rule, t = self.running.get(jobid, (None, now))
        self.running[jobid] = (rule or known_rule, t)
        self.peak = max(self.peak, len(self.running))

    def _end(self, jobid: int, now: float, rule: str | None) -> float | None:
        known_rule, t = self.running.pop(jobid, (None, None))
        rule = rule or known_rule
        if rule is not None:
            self.ended[rule] += 1
        return None if t is None else max(0.0, now - t)

    def finish(self, jobid: int, now: float, rule: str | None = None) -> float | None:
        """A job finished: returns its duration (None if its start was not seen)."""
        rule = rule or self.running.get(jobid, (None, 0.0))[0]
        duration = self._end(jobid, now, rule)
        if rule is not None and duration is not None:
            self.durations[rule].append(duration)
        return duration

    def fail(self, jobid: int, now: float, rule: str | None = None) -> float | None:
        """A job failed: it no longer counts as left, but its duration is no estimate of the others."""
        return self._end(jobid, now, rule)

    def elapsed(self, now: float) -> float:
        return 0.0 if self.t0 is None else max(0.0, now - self.t0)

    def parallel(self) -> int:
        """How many jobs run at once: the most seen together, at most the cores (when known)."""
        peak = max(1, self.peak)
        return min(peak, self.cores) if self.cores else peak

    def eta(self, now: float, total: int | None = None) -> float | None:
        """Seconds left, or None while fewer than ``min_jobs`` jobs have finished.

        ``total`` is Snakemake's current job count (PROGRESS); jobs beyond the planned ones (a checkpoint grew
        the DAG) cost the overall mean.
        """
        finished = [d for ds in self.durations.values() for d in ds]
        if len(finished) < self.min_jobs:
            return None
        overall = sum(finished) / len(finished)

        def mean(rule: str | None) -> float:
            ds = self.durations.get(rule) if rule is not None else None
            return sum(ds) / len(ds) if ds else overall

        work = sum(max(0, n - self.ended[rule]) * mean(rule) for rule, n in self.planned.items())
        if total is not None:
            work += max(0, total - sum(self.planned.values())) * overall
        work -= sum(min(now - t, mean(rule)) for rule, t in self.running.values())
        return max(0.0, work) / self.parallel()
