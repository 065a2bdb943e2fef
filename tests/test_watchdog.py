"""The run's watchdog (tests/support/watchdog.py): a run that stops moving ends, red, naming
the tests still running, and leaves no process of its own behind."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.support import procs, watchdog
from tests.support.waiting import wait_until
from tests.support.watchdog import RunWatchdog

ROOT = Path(__file__).resolve().parent.parent


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_report_names_what_runs_oldest_first() -> None:
    clock, out, stopped = _Clock(), io.StringIO(), []
    dog = RunWatchdog(60, out, stop=lambda: stopped.append(True), clock=clock)
    dog.started("t.py::a")
    clock.now += 5
    dog.started("t.py::b")
    dog.finished("t.py::a")
    dog.started("t.py::c")
    clock.now += 10
    dog.started("t.py::d")
    dog.finished("t.py::c")
    dog.finished("t.py::never-started")  # not counted
    clock.now += 45
    dog.fire()
    assert stopped == [True]
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        "run-watchdog: the run has taken 60 s (limit 60 s, ANNEXTUI_TEST_WATCHDOG);"
        " 2 tests finished, 2 still running:"
    )
    assert lines[1:3] == ["  t.py::b  (for 55 s)", "  t.py::d  (for 45 s)"]
    assert lines[3] == "run-watchdog: the controller's threads:"


def test_a_run_stopped_between_tests_says_so() -> None:
    dog = RunWatchdog(60, io.StringIO(), stop=lambda: None, clock=_Clock())
    dog.started("t.py::a")
    dog.finished("t.py::a")
    assert "none: the run stopped between tests" in dog.report()


@pytest.mark.parametrize(("raw", "limit"), [("", watchdog.DEFAULT_LIMIT), ("0", 0.0), ("90", 90.0)])
def test_the_limit_from_the_environment(raw: str, limit: float) -> None:
    assert watchdog.limit_from_env({watchdog.LIMIT_ENV: raw}) == limit


@pytest.mark.parametrize("raw", ["soon", "-5", "nan"])
def test_a_bad_limit_is_a_usage_error(raw: str) -> None:
    with pytest.raises(pytest.UsageError, match=watchdog.LIMIT_ENV):
        watchdog.limit_from_env({watchdog.LIMIT_ENV: raw})


def test_a_stuck_xdist_run_ends_red_naming_its_test(tmp_path: Path) -> None:
    """A real xdist run whose test waits on a child forever: the watchdog ends it with status
    3, names the test, and the child is gone with the worker."""
    marker = f"stuck-child-{os.getpid()}-{time.monotonic_ns()}"
    (tmp_path / "conftest.py").write_text(
        "from tests.support import watchdog\n\n"
        "def pytest_sessionstart(session):\n"
        "    watchdog.install(session)\n"
    )
    (tmp_path / "test_stuck.py").write_text(
        textwrap.dedent(f"""\
            import subprocess, sys

            def test_quick():
                pass

            def test_waits_forever():
                child = [sys.executable, "-c", "import time; time.sleep(600)", {marker!r}]
                subprocess.run(child)
            """)
    )
    run = _pytest(tmp_path, "10", "-n", "1")
    try:
        assert run.returncode == watchdog.EXIT_STATUS, run.stdout + run.stderr
        assert "1 tests finished, 1 still running:" in run.stderr, run.stderr
        assert "  test_stuck.py::test_waits_forever  (for " in run.stderr, run.stderr
        assert "run-watchdog: the controller's threads:" in run.stderr
        wait_until(lambda: not procs.mentioning(marker), "the stuck child to be gone", 10)
    finally:
        procs.kill_pids(p.pid for p in procs.mentioning(marker))


def test_a_run_without_xdist_has_no_watchdog(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        "from tests.support import watchdog\n\n"
        "def pytest_sessionstart(session):\n"
        "    assert watchdog.install(session) is None\n"
    )
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    run = _pytest(tmp_path, "1", "-p", "no:xdist")
    assert run.returncode == 0, run.stdout + run.stderr


def _pytest(where: Path, limit: str, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest ARGS on the tests in `where` (whose conftest installs the watchdog) with the
    watchdog's limit, in a session of its own, this package importable."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), watchdog.LIMIT_ENV: limit}
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
    )
