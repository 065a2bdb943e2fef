"""Drain and rebalance jobs as the Jobs view shows them, and what it can do to them.

Rows come from the jobs' records under the repository's `annex/annextui/jobs/` (operations/
jobs.py), read a few times a second; rates come from successive samples of a job's bytes done.
A job's detail is its plan's figures (kept in the record when it was planned) and, for a
rebalance, the proof of that plan (kept beside it). Pausing sends SIGTERM to the process running
the job (it stops after the key in hand and saves the job paused); resuming runs the job's own
command again in the background (it continues the persisted plan), as a staged drain starts
one; cancelling marks a job that is not running cancelled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from annextui.backend.repo import Repository
from annextui.operations.drain import drain_lines
from annextui.operations.jobs import Job, JobBusy, JobState, JobStore
from annextui.operations.rebalance import rebalance_lines

__all__ = [
    "Job",
    "JobBusy",
    "JobControl",
    "JobDetail",
    "JobRow",
    "JobState",
    "JobsSampler",
    "plan_lines",
    "start_job",
]

LOG_TAIL = 6  # lines of a background run's output shown with a failed job


@dataclass(frozen=True, slots=True)
class JobRow:
    job: Job
    rate: float | None  # bytes per second between the last two samples

    @property
    def fraction(self) -> float | None:
        j = self.job
        if j.total_bytes:
            return j.done_bytes / j.total_bytes
        return j.done_steps / j.steps if j.steps else None

    @property
    def eta(self) -> float | None:
        j = self.job
        if not self.rate or j.state is not JobState.RUNNING:
            return None
        return max(0, j.total_bytes - j.done_bytes) / self.rate


@dataclass(frozen=True, slots=True)
class JobDetail:
    """What the Jobs view shows of the selected job: every line is data, shown literally."""

    job: Job
    plan: tuple[str, ...]  # the plan's figures
    proof: tuple[str, ...] | None  # a rebalance's convergence proof (None: none kept)
    log: tuple[str, ...] = ()  # the end of a background run's output


class JobControl(Protocol):
    """The jobs of one repository as the console sees and steers them (a fixed one in the
    snapshot tests). Methods block: call them from workers."""

    def sample(self) -> tuple[JobRow, ...]: ...

    def detail(self, job_id: str, name: Callable[[str], str]) -> JobDetail | None:
        """The job's plan (UUIDs shown by `name`) and proof; None if there is no such job."""
        ...

    def pause(self, job_id: str) -> str: ...

    def resume(self, job_id: str) -> str: ...

    def cancel(self, job_id: str) -> str:
        """JobBusy (operations/jobs.py) while a process runs the job."""
        ...


def plan_lines(job: Job, name: Callable[[str], str]) -> list[str]:
    """The figures the command printed when it planned the job (its --dry-run line)."""
    if job.kind == "drain":
        return drain_lines(job.params, name)
    return rebalance_lines(job.params)


def start_job(path: Path, argv: Sequence[str], log: Path) -> None:
    """Run `annextui ARGV -C PATH` detached from the console (a job outlives it), its output
    appended to `log` (what a failed background run said)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        subprocess.Popen(
            [sys.executable, "-m", "annextui", *argv, "-C", str(path), "--no-progress"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,  # not stopped with the console
        )


class JobsSampler(JobControl):
    """The jobs of one repository, sampled; keeps the previous sample for rates."""

    def __init__(self, path: Path) -> None:
        self.store = JobStore(Repository(path))
        self.path = path
        self._last: dict[str, tuple[float, int]] = {}

    def sample(self) -> tuple[JobRow, ...]:
        now = time.monotonic()
        rows = []
        for job in self.store.all():
            prev = self._last.get(job.id)
            rate = None
            if prev is not None and now > prev[0] and job.done_bytes >= prev[1]:
                rate = (job.done_bytes - prev[1]) / (now - prev[0])
            if prev is None or job.done_bytes != prev[1]:
                self._last[job.id] = (now, job.done_bytes)
            rows.append(JobRow(job, rate))
        return tuple(rows)

    def detail(self, job_id: str, name: Callable[[str], str]) -> JobDetail | None:
        job = self.store.load(job_id)
        if job is None:
            return None
        proof = self.store.read_proof(job_id)
        log: tuple[str, ...] = ()
        if job.state is JobState.FAILED or job.error:
            try:
                text = self.store.log_path(job_id).read_text(encoding="utf-8", errors="replace")
            except OSError:
                text = ""
            log = tuple(text.splitlines()[-LOG_TAIL:])
        return JobDetail(
            job, tuple(plan_lines(job, name)), tuple(proof) if proof is not None else None, log
        )

    def pause(self, job_id: str) -> str:
        job = self.store.load(job_id)
        if job is None or job.state is not JobState.RUNNING or not job.pid:
            return "not running"
        try:
            os.kill(job.pid, signal.SIGTERM)
        except ProcessLookupError:
            return "its process is gone; resume it"
        return "pausing after the key in hand"

    def cancel(self, job_id: str) -> str:
        job = self.store.cancel(job_id)  # JobBusy while a process runs it
        return f"{job.id}: {job.state}"

    def resume(self, job_id: str) -> str:
        job = self.store.load(job_id)
        if job is None or (job.state.finished and job.state is not JobState.FAILED):
            return "nothing to resume"
        if job.kind == "drain":
            argv = ["cluster", "drain", job.target]
        else:
            argv = ["rebalance", str(job.params.get("target", job.target))]
        log = self.store.log_path(job.id)
        start_job(self.path, argv, log)
        return f"resumed in the background (output in {log.name})"
