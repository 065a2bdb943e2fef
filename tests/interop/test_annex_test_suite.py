"""git-annex's own test suite (`git annex test`) with annextui-shell as its git-annex-shell.

`git annex test` never runs a real ssh: it sets GIT_SSH_COMMAND to its own fake ssh (`git-annex
test --fakessh --`), which runs the remote command (`git-annex-shell p2pstdio DIR ...`) through
`sh` with the test's PATH. That PATH starts with the directory of the git-annex binary running
the suite, which in the PyPI wheel holds no git-annex-shell, then ours: so a `git-annex-shell`
wrapper first on our PATH (tests/support/shellwrap.py) serves every ssh remote of the suite. (A
pyenv shim would put the venv's bin, and its git-annex-shell launcher, in front; the fixtures
run the binary directly.) The wrapper logs its runs, so each test also checks that our shell was
the one serving.

* `-p 'ssh remote'`: the 12 tests (get and move through an ssh remote, each with its group's
  init and add, in the locked, unlocked and adjusted-unlocked modes) as git-annex-shell passes
  them.
* The whole suite with every remote forced over ssh
  (`--test-git-config url.localhost:DIR.insteadOf=DIR`: each remote URL below the run's
  directory becomes `localhost:DIR...`), once with git-annex-shell and once with ours; no test
  may fail with ours that passes with git-annex-shell. Each run took about 15 minutes on two
  busy cores (1044 tests), too long for the default run, so this runs only when asked:
  `ANNEXTUI_ANNEX_TEST_SUITE=1 python -m pytest -n 0 tests/interop/test_annex_test_suite.py`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import annex as annex_support
from tests.support import tasty
from tests.support.shellwrap import ShellWrapper, write_shell_wrapper

# The suite's runs have their own bounds (the `timeout=` of each `_suite`): the first test of a
# module waits for its fixture's runs, two forced runs of up to 7200 s each.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2 * 7200 + 900)]

MODES = ("v10 locked", "v10 unlocked", "v10 adjusted unlocked branch")
SSH_TESTS = ("get (ssh remote)", "move (ssh remote)")
INIT_TESTS = ("Init Tests.init", "Init Tests.add")
SUITE_ENV = "ANNEXTUI_ANNEX_TEST_SUITE"


def _env(root: Path, git_annex_bin: Path, wrapper: ShellWrapper | None) -> dict[str, str]:
    """An environment for `git annex test` whose git-annex-shell is ours (`wrapper`) or
    git-annex's own (None). The suite sets its own HOME and git config below its `.t`."""
    bin_dirs = [git_annex_bin.parent]
    if wrapper is not None:
        bin_dirs.insert(0, wrapper.bin_dir)
    return annex_support.base_env(
        root / "home", bin_dirs=bin_dirs, magic=annex_support.magic_db(git_annex_bin)
    )


def _suite(
    root: Path, git_annex_bin: Path, wrapper: ShellWrapper | None, *args: str, timeout: float
) -> tasty.TastyRun:
    work = root / "run"
    results, _ = tasty.run_tasty(
        ["git", "annex", "test", *args],
        work,
        _env(root, git_annex_bin, wrapper),
        timeout=timeout,
    )
    return results


def _served_by_us(wrapper: ShellWrapper, work: Path) -> list[str]:
    """The wrapper's p2pstdio runs on repositories of the suite's run below `work`."""
    return [
        line
        for line in wrapper.invocations()
        if line.startswith("p2pstdio ") and line.split()[1].startswith(str(work) + "/")
    ]


# -- get/move through an ssh remote ----------------------------------------------------------------


@pytest.fixture(scope="module")
def ssh_remote_run(
    tmp_path_factory: pytest.TempPathFactory, git_annex_bin: Path
) -> tuple[tasty.TastyRun, list[str]]:
    root = Path(os.path.realpath(tmp_path_factory.mktemp("annextest-ssh")))
    wrapper = write_shell_wrapper(root / "bin")
    results = _suite(root, git_annex_bin, wrapper, "-p", "ssh remote", timeout=900)
    return results, _served_by_us(wrapper, root / "run")


def test_ssh_remote_tests_all_ran_through_annextui_shell(
    ssh_remote_run: tuple[tasty.TastyRun, list[str]],
) -> None:
    results, served = ssh_remote_run
    expected = {
        f"Tests.Repo Tests {mode}.{test}" for mode in MODES for test in (*INIT_TESTS, *SSH_TESTS)
    }
    assert set(results.outcomes) == expected
    # the suite's ssh remotes were served by our shell, not by a git-annex-shell later on PATH
    assert served


@pytest.mark.parametrize("mode", MODES)
def test_ssh_remote_tests_pass_through_annextui_shell(
    ssh_remote_run: tuple[tasty.TastyRun, list[str]], mode: str
) -> None:
    results, _ = ssh_remote_run
    group = {n for n in results.outcomes if n.startswith(f"Tests.Repo Tests {mode}.")}
    assert len(group) == len(INIT_TESTS) + len(SSH_TESTS)
    assert not group & results.failed, results.report(group & results.failed)


# -- the whole suite, every remote forced over ssh, against git-annex-shell -------------------

TOP_GROUPS = (
    "QuickCheck",
    "Remote Tests",
    "Repo Tests v10 locked",
    "Repo Tests v10 unlocked",
    "Repo Tests v10 adjusted unlocked branch",
)


@pytest.fixture(scope="module")
def forced_ssh_runs(
    tmp_path_factory: pytest.TempPathFactory, git_annex_bin: Path
) -> tuple[tasty.TastyRun, tasty.TastyRun, list[str]]:
    """(git-annex-shell's run, ours, the p2pstdio runs our wrapper served)."""
    if not os.environ.get(SUITE_ENV):
        pytest.skip(f"runs git-annex's whole test suite twice (~30 min); set {SUITE_ENV}=1")
    runs = []
    served: list[str] = []
    for name in ("git-annex-shell", "annextui-shell"):
        root = Path(os.path.realpath(tmp_path_factory.mktemp(f"annextest-{name}")))
        wrapper = write_shell_wrapper(root / "bin") if name == "annextui-shell" else None
        work = root / "run"
        forced = f"url.localhost:{work}.insteadOf={work}"
        runs.append(_suite(root, git_annex_bin, wrapper, "--test-git-config", forced, timeout=7200))
        if wrapper is not None:
            served = _served_by_us(wrapper, work)
    return runs[0], runs[1], served


def test_forced_over_ssh_suite_ran_the_same_tests(
    forced_ssh_runs: tuple[tasty.TastyRun, tasty.TastyRun, list[str]],
) -> None:
    theirs, ours, served = forced_ssh_runs
    assert set(ours.outcomes) == set(theirs.outcomes)
    assert {n.split(".")[1] for n in ours.outcomes} == set(TOP_GROUPS)
    assert served  # the forced ssh remotes were ours


@pytest.mark.parametrize("group", TOP_GROUPS)
def test_forced_over_ssh_suite_fails_nothing_git_annex_shell_passes(
    forced_ssh_runs: tuple[tasty.TastyRun, tasty.TastyRun, list[str]], group: str
) -> None:
    theirs, ours, _ = forced_ssh_runs
    only_ours = {n for n in ours.failed - theirs.failed if n.startswith(f"Tests.{group}.")}
    assert not only_ours, ours.report(only_ours)
