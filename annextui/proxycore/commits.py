"""When a session's journal becomes a commit of the git-annex branch.

`annextui-shell` serves one client per process and commits when the session ends. A
long-running server (`annextui p2phttp`) runs a session per HTTP request: committing after
each would cost a branch commit per request (a 100-file drop took 6 s instead of 2 s), so it
installs a `CommitLater` and sessions hand their commit to it instead; it commits a
repository's journal once no session has touched it for `idle` seconds (upstream's server
commits ~1 s after change-making requests go idle, doc/bugs/p2phttp_timely_journal_commit),
and everything at shutdown. Journal commits take git-annex's journal lock, so committing while
other sessions write the journal is safe.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

_active: CommitLater | None = None
_thread = threading.local()  # .now: this thread's sessions commit when they end


def defer(annexdir: Path, commit: Callable[[], object]) -> bool:
    """Hand the commit of this repository's journal to the process's CommitLater; False when
    there is none, or this thread serves whole sessions (`commit_at_session_end`): the caller
    commits now. `commit` must open its own repository objects: it runs on another thread."""
    later = _active
    if later is None or getattr(_thread, "now", False):
        return False
    later.add(str(annexdir), commit)
    return True


@contextlib.contextmanager
def commit_at_session_end() -> Iterator[None]:
    """Sessions on this thread commit as annextui-shell's do, when they end (a relayed ssh
    connection is a whole session, not one HTTP request: its client may fetch right after)."""
    _thread.now = True
    try:
        yield
    finally:
        _thread.now = False


class CommitLater:
    def __init__(self, idle: float = 1.0) -> None:
        self.idle = idle
        self._pending: dict[str, tuple[float, Callable[[], object]]] = {}
        self._mutex = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None

    def add(self, annexdir: str, commit: Callable[[], object]) -> None:
        with self._mutex:
            self._pending[annexdir] = (time.monotonic(), commit)

    def pending(self) -> int:
        with self._mutex:
            return len(self._pending)

    def start(self) -> None:
        global _active
        _active = self
        self._thread = threading.Thread(target=self._run, name="commit-later", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Commit everything pending now, and hand commits back to the sessions."""
        global _active
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=120)
        _active = None
        self._commit(due_before=None)

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self.idle / 4)
            if not self._stop:
                self._commit(due_before=time.monotonic() - self.idle)

    def _commit(self, due_before: float | None) -> None:
        with self._mutex:
            due = [
                (d, c)
                for d, (t, c) in self._pending.items()
                if due_before is None or t <= due_before
            ]
            for d, _ in due:
                del self._pending[d]
        for annexdir, commit in due:
            try:
                commit()
            except Exception as exc:  # the journal stays; the next commit takes it along
                sys.stderr.write(f"git-annex branch of {annexdir} not committed: {exc}\n")
                sys.stderr.flush()
