"""Drain and rebalance jobs as the Jobs view shows them, and what it can do to them.

Rows come from the jobs' records under the repository's `annex/annextui/jobs/` (operations/
jobs.py), read a few times a second; rates come from successive samples of a job's bytes done.
Pausing sends SIGTERM to the process running the job (it stops after the key in hand and saves
the job paused); resuming runs the job's own command again in the background (it continues the
persisted plan); cancelling marks a job that is not running cancelled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from annextui.backend.repo import Repository
from annextui.operations.jobs import Job, JobState, JobStore

__all__ = ["JobRow", "JobsSampler"]


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


class JobsSampler:
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
        log = self.store.log_path(job.id)  # what the background run says, for a failure
        with open(log, "ab") as out:
            subprocess.Popen(
                [sys.executable, "-m", "annextui", *argv, "-C", str(self.path), "--no-progress"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,  # not stopped with the console
            )
        return f"resumed in the background (output in {log.name})"
