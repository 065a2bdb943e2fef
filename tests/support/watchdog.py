"""A last resort for a test run that stops moving.

pytest-timeout fails a test that hangs (see pyproject.toml). What it cannot see is a run that
stops between tests: an xdist worker waiting for work that never comes, a session fixture's
teardown. CI would then sit until its own limit and print nothing of use. The watchdog runs in
the controller of an xdist run (the process that prints the run); when the whole run has
taken `limit` seconds it prints the tests that started and have not finished, with their age,
then kills everything the run started and ends the run with status 3, so that CI ends too, red
and with the reason in its log.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import TextIO

import pytest

from tests.support import procs

# The whole suite takes ~10 min on a 2-core machine and CI allows 90: a run still going after
# 40 has stopped moving. ANNEXTUI_TEST_WATCHDOG=SECONDS changes it; 0 turns it off.
DEFAULT_LIMIT = 40 * 60.0
LIMIT_ENV = "ANNEXTUI_TEST_WATCHDOG"
EXIT_STATUS = 3  # pytest's "internal error"


def limit_from_env(environ: Mapping[str, str]) -> float:
    raw = environ.get(LIMIT_ENV, "")
    if not raw:
        return DEFAULT_LIMIT
    try:
        limit = float(raw)
    except ValueError:
        limit = -1.0
    if not limit >= 0:  # also NaN
        raise pytest.UsageError(f"{LIMIT_ENV}={raw!r}: expected seconds (0 turns it off)")
    return limit


def end_run() -> None:
    """SIGKILL every process this run started (xdist's workers, what they started and did not
    leave behind), so that nothing holds CI's output open, then end with EXIT_STATUS."""
    procs.kill_pids((p.pid for p in procs.descendants(os.getpid())), sig=signal.SIGKILL)
    os._exit(EXIT_STATUS)


class RunWatchdog:
    """Counts the tests that start and finish; after `limit` seconds says which are still
    running and calls `stop`."""

    def __init__(
        self,
        limit: float,
        out: TextIO,
        stop: Callable[[], None] = end_run,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = limit
        self._out = out
        self._stop = stop
        self._clock = clock
        self._began = clock()
        self._lock = threading.Lock()
        self._running: dict[str, float] = {}  # nodeid -> when it started
        self._finished = 0
        self._timer = threading.Timer(limit, self.fire)
        self._timer.daemon = True
        self._timer.name = "run-watchdog"

    def start(self) -> None:
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()

    def started(self, nodeid: str) -> None:
        with self._lock:
            self._running[nodeid] = self._clock()

    def finished(self, nodeid: str) -> None:
        with self._lock:
            if self._running.pop(nodeid, None) is not None:
                self._finished += 1

    def report(self) -> str:
        now = self._clock()
        with self._lock:
            running = sorted(self._running.items(), key=lambda item: item[1])
            finished = self._finished
        lines = [
            f"run-watchdog: the run has taken {now - self._began:.0f} s (limit {self._limit:g} s,"
            f" {LIMIT_ENV}); {finished} tests finished, {len(running)} still running:"
        ]
        lines += [f"  {nodeid}  (for {now - began:.0f} s)" for nodeid, began in running]
        if not running:
            lines.append("  none: the run stopped between tests (a worker or a session teardown)")
        return "\n".join(lines) + "\n"

    def fire(self) -> None:
        self._out.write(self.report())
        self._out.write("run-watchdog: the controller's threads:\n")
        self._out.flush()
        try:
            faulthandler.dump_traceback(file=self._out, all_threads=True)
        except (AttributeError, OSError, ValueError):  # an `out` without a file descriptor
            self._out.write("  (not available)\n")
        self._out.flush()
        self._stop()


class WatchdogPlugin:
    """The pytest side: xdist's controller sees every worker's test start and finish."""

    def __init__(self, dog: RunWatchdog) -> None:
        self.dog = dog

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.dog.started(nodeid)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self.dog.finished(nodeid)

    def pytest_sessionfinish(self) -> None:
        self.dog.cancel()


def install(session: pytest.Session) -> RunWatchdog | None:
    """From `pytest_sessionstart`: a started watchdog in the controller of an xdist run; None
    elsewhere (a worker, a run without xdist) or when ANNEXTUI_TEST_WATCHDOG=0."""
    config = session.config
    if hasattr(config, "workerinput") or not config.pluginmanager.hasplugin("dsession"):
        return None
    limit = limit_from_env(os.environ)
    if limit == 0:
        return None
    dog = RunWatchdog(limit, sys.__stderr__ or sys.stderr)
    config.pluginmanager.register(WatchdogPlugin(dog), "annextui-run-watchdog")
    dog.start()
    return dog
