"""Journal locks of several repositories held by threads of one process, against another process
doing the same: no false "Resource deadlock avoided" (EDEADLK).

A gateway process commits each node's journal in its own thread. With classic POSIX record
locks the kernel sees the whole process as one owner: thread 1 holding node A's lock while
thread 2 waits for node B's, with another process holding B and waiting for A, looks like a
deadlock although thread 1 is about to let go, and one of the lockers gets EDEADLK. That is
what `git annex copy -J4 --to gw-CLUSTER` printed.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from annextui.backend.journal import journal_lock
from annextui.backend.repo import Repository

OTHER_PROCESS = """
import sys
from annextui.backend.journal import journal_lock
from annextui.backend.repo import Repository
a, b = Repository(sys.argv[1]), Repository(sys.argv[2])
with journal_lock(b):
    print("holding B", flush=True)
    try:
        with journal_lock(a):
            print("holding A", flush=True)
    except OSError as exc:
        print(f"error: {exc}", flush=True)
        sys.exit(1)
"""


def _repo(path: Path) -> Repository:
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    (path / ".git" / "annex").mkdir()
    return Repository(path)


def test_threads_holding_different_repositories_never_see_a_false_deadlock(
    tmp_path: Path,
) -> None:
    a, b = _repo(tmp_path / "a"), _repo(tmp_path / "b")
    a_held, release_a = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold_a() -> None:  # thread 1: node A's commit, in progress
        with journal_lock(a):
            a_held.set()
            release_a.wait(60)

    def want_b() -> None:  # thread 2: node B's commit, waiting for the other process
        try:
            with journal_lock(b):
                pass
        except BaseException as exc:
            errors.append(exc)

    t1 = threading.Thread(target=hold_a)
    t1.start()
    assert a_held.wait(30)
    other = subprocess.Popen(
        [sys.executable, "-c", OTHER_PROCESS, str(a.top), str(b.top)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout is not None
        assert other.stdout.readline().strip() == "holding B"
        # The other process now blocks on A (or is about to); either order makes the cycle
        # the kernel's POSIX-lock deadlock detection reports.
        time.sleep(0.2)
        t2 = threading.Thread(target=want_b)
        t2.start()
        time.sleep(0.2)
        release_a.set()
        t1.join(30)
        t2.join(30)
        out, err = other.communicate(timeout=30)
    finally:
        release_a.set()
        if other.poll() is None:
            other.kill()
    assert not errors, errors
    assert other.returncode == 0, (out, err)
    assert "holding A" in out
