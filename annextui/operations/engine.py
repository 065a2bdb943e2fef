"""Running a job's plan: one step (one key) after another, resumable, pausable, observable.

The job's record is saved when its state changes and at most every `SAVE_EVERY` seconds while
it runs; each finished step is appended to the done-log at once (jobs.py). So after a ``kill
-9`` the same job runs again from its first step not logged done, and a step that ran but was
not logged finds its copies present (`transfer.copy_key`'s PUT is answered ALREADY-HAVE, and
a node of ours then logs its own copy if the killed step did not) and its drops done.

Pausing: `pause()` (from a signal handler or another thread) lets the current step finish,
then the job is saved as paused. A key that fails (its copy could not be verified, too few
copies could be locked to drop it) is recorded with its reason and left in place; the job goes
on and ends failed. A node that cannot be reached ends the job at once (failed, resumable).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

from annextui.backend.keys import KeyError_, parse_key
from annextui.backend.uuids import is_cluster_uuid
from annextui.operations.jobs import Job, JobState, JobStore, Step
from annextui.operations.nodes import GatewayNodes, NodeUnreachable
from annextui.operations.transfer import MoveFailed, Throttle, copy_key, drop_key
from annextui.proxycore.peer import PeerFatal

__all__ = ["JobRunner", "pause_on_signals"]

SAVE_EVERY = 0.5  # seconds between saves of the record while steps finish

JobProgress = Callable[[Job], None]


class JobRunner:
    def __init__(
        self,
        store: JobStore,
        job: Job,
        nodes: GatewayNodes,
        *,
        needed: int,
        throttle: Throttle | None = None,
        on_progress: JobProgress | None = None,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.job = job
        self.nodes = nodes
        self.needed = max(1, needed)
        self.throttle = throttle
        self.on_progress = on_progress
        self.on_bytes = on_bytes
        self._pause = threading.Event()

    def pause(self) -> None:
        self._pause.set()

    def run(self) -> Job:
        """Run the remaining steps; returns the job as saved (done, failed or paused)."""
        job, store = self.job, self.store
        steps = store.read_plan(job.id)
        done = store.done_steps(job.id)
        job.done_steps = len(done)
        job.done_bytes = sum(s.size * len(s.copies) for i, s in enumerate(steps) if i in done)
        job.state = JobState.RUNNING
        job.error = None
        job.runs += 1
        job.pid = os.getpid()
        store.save(job)
        saved = time.monotonic()
        with store.done_log(job.id) as log:
            for i, step in enumerate(steps):
                if i in done:
                    continue
                if self._pause.is_set():
                    job.state = JobState.PAUSED
                    break
                try:
                    self._execute(step)
                except MoveFailed as exc:
                    job.failures[step.key] = str(exc)
                except (NodeUnreachable, PeerFatal, OSError) as exc:
                    job.state = JobState.FAILED
                    job.error = f"{step.key}: {exc}"
                    break
                log.add(i)
                job.done_steps += 1
                job.done_bytes += step.size * len(step.copies)
                if self.on_progress is not None:
                    self.on_progress(job)
                if time.monotonic() - saved >= SAVE_EVERY:
                    store.save(job)
                    saved = time.monotonic()
            else:
                job.state = JobState.FAILED if job.failures else JobState.DONE
                if job.failures:
                    job.error = f"{len(job.failures)} key(s) left in place"
        job.pid = None
        store.save(job)
        return job

    def _execute(self, step: Step) -> None:
        try:
            key = parse_key(step.key)
        except KeyError_ as exc:
            raise MoveFailed(str(exc)) from exc
        nodes, job = self.nodes, self.job
        for src, dst in step.copies:
            copied = copy_key(
                key,
                nodes.peer(src),
                nodes.peer(dst),
                records=nodes.records,
                throttle=self.throttle,
                progress=self.on_bytes,
            )
            if copied.made:
                job.transferred_keys += 1
                job.transferred_bytes += copied.bytes
        for src in step.drops:
            holders = []
            for u in sorted(nodes.records.locations(key) - {src}):
                if is_cluster_uuid(u) or nodes.remote_of(u) is None:
                    continue  # not reachable from here: it cannot be locked, so it does not count
                with contextlib.suppress(NodeUnreachable):
                    holders.append(nodes.peer(u))
            drop_key(key, nodes.peer(src), holders, self.needed, records=nodes.records)
            job.dropped_keys += 1


@contextlib.contextmanager
def pause_on_signals(runner: JobRunner) -> Iterator[None]:
    """SIGINT and SIGTERM pause the job (after the current key) instead of killing it."""

    def handler(signum: int, frame: FrameType | None) -> None:
        runner.pause()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
