"""A job's state on disk: what it is, how far it got, and its plan.

A job lives under the gateway's annex directory, ``annex/annextui/jobs/``:

* ``ID.json`` -- the job record (kind, target, state, counters, result), replaced atomically
  (written in ``annex/othertmp``, renamed) so a reader or a ``kill -9`` never sees half of it;
* ``ID.plan`` -- the steps, one JSON object a line, written once (atomically) when planned;
* ``ID.done`` -- the index of each finished step, one a line, appended as steps finish. A line
  cut short by a kill is ignored; a step whose line was lost is run again, and finds its work
  done (the copy is present, the drop is done), so nothing is transferred twice;
* ``ID.proof`` -- a rebalance's convergence proof as text, written once with the plan, so the
  console shows the proof of the plan that runs, not of the state it has reached since;
* ``ID.lck`` -- held (``flock``) by the process running the job, so two runs never interleave.

Job IDs are made from UUIDs or a hash of a name (``job_id``), never from free text, so a name
from the git-annex branch never becomes a path.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from annextui.backend.journal import atomic_write
from annextui.backend.repo import Repository

__all__ = ["Job", "JobBusy", "JobState", "JobStore", "Step", "job_id"]

_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}")


class JobState(enum.StrEnum):
    PLANNED = "planned"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


class JobBusy(Exception):
    """Another process is running this job."""


@dataclass(frozen=True, slots=True)
class Step:
    """One key's work: each ``(src, dst)`` copy in order, then each drop from a repository in
    ``drops`` (a drop only with enough other copies locked)."""

    key: str
    size: int
    copies: tuple[tuple[str, str], ...] = ()
    drops: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "size": self.size,
            "copies": [list(c) for c in self.copies],
            "drops": list(self.drops),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Step:
        return cls(
            key=str(d["key"]),
            size=int(d["size"]),
            copies=tuple((str(a), str(b)) for a, b in d.get("copies", ())),
            drops=tuple(str(u) for u in d.get("drops", ())),
        )


@dataclass
class Job:
    id: str
    kind: str  # "drain" or "rebalance"
    target: str  # the drained node's UUID, or the rebalanced cluster/group
    state: JobState = JobState.PLANNED
    params: dict[str, object] = field(default_factory=dict)
    steps: int = 0
    total_bytes: int = 0
    done_steps: int = 0
    done_bytes: int = 0
    transferred_keys: int = 0  # copies actually made (a step finding its copy there adds none)
    transferred_bytes: int = 0
    dropped_keys: int = 0
    failures: dict[str, str] = field(default_factory=dict)  # key -> why it was left in place
    error: str | None = None
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    runs: int = 0
    pid: int | None = None  # the process running it (a monitor can pause it with SIGTERM)

    def to_json(self) -> dict[str, object]:
        d = asdict(self)
        d["state"] = str(self.state)
        return d

    @classmethod
    def from_json(cls, d: dict[str, object]) -> Job:
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in d.items() if k in known}
        kw["state"] = JobState(str(d.get("state", "planned")))
        return cls(**kw)  # type: ignore[arg-type]


def job_id(kind: str, ident: str) -> str:
    """``kind-ident`` when ident is a safe word (a UUID), else ``kind-<hash of ident>``."""
    if _SAFE_ID.fullmatch(ident):
        return f"{kind}-{ident}"
    return f"{kind}-{hashlib.sha256(ident.encode('utf-8', 'surrogateescape')).hexdigest()[:16]}"


class JobStore:
    """The jobs of one repository."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.dir = repo.annexdir / "annextui" / "jobs"
        self._tmp = repo.annexdir / "othertmp"

    def _path(self, job_id_: str, ext: str) -> Path:
        if not _SAFE_ID.fullmatch(job_id_):
            raise ValueError(f"not a job id: {job_id_!r}")
        return self.dir / f"{job_id_}.{ext}"

    # -- the record --------------------------------------------------------------------------
    def load(self, job_id_: str) -> Job | None:
        try:
            data = self._path(job_id_, "json").read_bytes()
        except FileNotFoundError:
            return None
        return Job.from_json(json.loads(data))

    def resumable(self, job_id_: str) -> Job | None:
        """The job if running it again would continue it: not finished, or failed part-way (a
        node was unreachable). A job that ran to its end is planned afresh instead."""
        job = self.load(job_id_)
        if job is None:
            return None
        if not job.state.finished or (job.state is JobState.FAILED and job.done_steps < job.steps):
            return job
        return None

    def save(self, job: Job) -> None:
        job.updated = time.time()
        self.dir.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        data = json.dumps(job.to_json(), sort_keys=True).encode()
        atomic_write(self._path(job.id, "json"), data, self._tmp)

    def all(self) -> list[Job]:
        """Every job recorded here, newest first (unreadable records are skipped)."""
        out = []
        with contextlib.suppress(FileNotFoundError):
            for p in self.dir.glob("*.json"):
                try:
                    out.append(Job.from_json(json.loads(p.read_bytes())))
                except (OSError, ValueError, TypeError, KeyError):
                    continue
        return sorted(out, key=lambda j: -j.updated)

    # -- the plan and the steps done ---------------------------------------------------------
    def write_plan(self, job: Job, steps: list[Step]) -> None:
        """The plan, then a fresh done-log, then the record: a job whose record says planned
        always has its whole plan on disk."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(s.to_json(), sort_keys=True) + "\n" for s in steps)
        atomic_write(self._path(job.id, "plan"), text.encode(), self._tmp)
        with contextlib.suppress(FileNotFoundError):
            self._path(job.id, "done").unlink()
        job.steps = len(steps)
        job.total_bytes = sum(s.size * len(s.copies) for s in steps)
        self.save(job)

    def write_proof(self, job_id_: str, lines: list[str]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        text = "".join(line + "\n" for line in lines)
        atomic_write(self._path(job_id_, "proof"), text.encode(), self._tmp)

    def read_proof(self, job_id_: str) -> list[str] | None:
        """The proof kept with the plan; None when none was kept (a drain, an older job)."""
        try:
            text = self._path(job_id_, "proof").read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return None
        return text.splitlines()

    def read_plan(self, job_id_: str) -> list[Step]:
        with open(self._path(job_id_, "plan"), encoding="utf-8") as f:
            return [Step.from_json(json.loads(line)) for line in f if line.strip()]

    def done_steps(self, job_id_: str) -> set[int]:
        """Indexes of finished steps; a torn last line (a kill mid-write) is not counted."""
        try:
            data = self._path(job_id_, "done").read_text(encoding="ascii", errors="replace")
        except FileNotFoundError:
            return set()
        return {int(w) for w in data.split("\n")[:-1] if w.isdigit()}

    @contextlib.contextmanager
    def done_log(self, job_id_: str) -> Iterator[DoneLog]:
        fd = os.open(self._path(job_id_, "done"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            yield DoneLog(fd)
        finally:
            os.close(fd)

    def cancel(self, job_id_: str) -> Job:
        """Mark a job that is not running cancelled: running its command again plans afresh.
        JobBusy while a process runs it (pause that one first: SIGTERM)."""
        job = self.load(job_id_)
        if job is None:
            raise KeyError(job_id_)
        try:
            lock = self.running(job_id_)
            lock.__enter__()
        except JobBusy as exc:
            raise JobBusy(f"{exc} (pid {job.pid}): pause it first (SIGTERM)") from exc
        try:
            job = self.load(job_id_) or job
            if not job.state.finished:
                job.state = JobState.CANCELLED
                job.pid = None
                self.save(job)
        finally:
            lock.__exit__(None, None, None)
        return job

    def log_path(self, job_id_: str) -> Path:
        """Where a job run in the background writes its output."""
        return self._path(job_id_, "log")

    def remove(self, job_id_: str) -> None:
        for ext in ("json", "plan", "done", "lck", "log", "proof"):
            with contextlib.suppress(FileNotFoundError):
                self._path(job_id_, ext).unlink()

    # -- one runner at a time ----------------------------------------------------------------
    @contextlib.contextmanager
    def running(self, job_id_: str) -> Iterator[None]:
        """Hold the job's lock while running it; JobBusy when another process holds it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path(job_id_, "lck"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise JobBusy(f"job {job_id_} is running in another process") from exc
            yield
        finally:
            os.close(fd)


class DoneLog:
    """Appends finished step indexes (one ``write`` each: a line is whole or torn, never mixed)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def add(self, index: int) -> None:
        os.write(self._fd, f"{index}\n".encode())
