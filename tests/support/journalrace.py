"""A request made to reach the journal lock while another process holds it, deterministically.

A helper process (`python -c SCRIPT ARGS`) takes the journal lock, prints one line, waits for
a line on stdin, does its part (stores, removes, logs) and prints one more line before letting
go. The request runs on a thread once the helper holds the lock; when /proc/locks shows the
request blocked on `journal.lck`, the helper is told to go on. So the helper's part lands
exactly between the request's look at the repository and its log line.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from tests.support.leftovers import lock_waiters
from tests.support.waiting import wait_until

_T = TypeVar("_T")

WAIT = 60.0  # each step takes well under a second: one taking this long is stuck


def while_journal_locked(
    journal_lck: Path,
    script: str,
    args: Sequence[str],
    env: Mapping[str, str],
    request: Callable[[], _T],
    *,
    first_input: str = "",
) -> _T:
    """`request()`'s result, run as above (its exception re-raised). `first_input` is written
    to the helper before it takes the lock."""
    helper = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        env=dict(env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert helper.stdin is not None
    assert helper.stdout is not None
    results: list[_T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(request())
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)  # one stuck must not hold the worker
    try:
        if first_input:
            helper.stdin.write(first_input)
            helper.stdin.flush()
        assert helper.stdout.readline() == "locked\n"
        thread.start()
        # the request is about to log: the helper goes
        wait_until(
            lambda: lock_waiters(journal_lck) or not thread.is_alive(),
            "the request to wait for journal.lck",
            WAIT,
        )
        assert thread.is_alive(), errors or results  # it ended without reaching the lock
        helper.stdin.write("go\n")
        helper.stdin.flush()
        assert helper.stdout.readline() != ""
    finally:
        helper.stdin.close()
        try:
            status = helper.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            helper.kill()
            raise
        assert status == 0
        if thread.ident is not None:
            thread.join(timeout=WAIT)
            assert not thread.is_alive(), "the request never ended"
    if errors:
        raise errors[0]
    return results[0]
