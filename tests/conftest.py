"""Shared fixtures: real git-annex runs (`git_annex_bin`, `annex_env`) and a private sshd
(`sshd`, `ssh_hosts`). Helpers live in `tests/support/`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.support import annex as annex_support
from tests.support import sshd as sshd_support
from tests.support import watchdog
from tests.support.annex import AnnexEnv
from tests.support.sshd import Sshd

IN_CI = bool(os.environ.get("CI"))

# Timing varies a lot on a loaded 2-core CI box running xdist: no per-example deadline.
settings.register_profile(
    "ci",
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if IN_CI else "dev"))


def _absent(what: str) -> None:
    """Skip when a tool is missing -- but in CI a missing tool is a broken setup."""
    if IN_CI:
        pytest.fail(
            f"{what} is required in CI (CI={os.environ['CI']!r}) but missing", pytrace=False
        )
    pytest.skip(f"{what} not available")


def pytest_sessionstart(session: pytest.Session) -> None:
    watchdog.install(session)  # a run that stops moving ends with the reason, before CI's limit


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "sshd" in names or "ssh_hosts" in names:
            item.add_marker(pytest.mark.ssh)


@pytest.fixture(scope="session")
def unprivileged() -> list[str]:
    """An argv prefix running a command that cannot write where file modes forbid it, root
    included (see tests/support/unwritable.py)."""
    from tests.support.unwritable import unprivileged_prefix

    prefix = unprivileged_prefix()
    if prefix is None:
        _absent("a way to deny writes to this user (setpriv, droppable capabilities)")
    assert prefix is not None
    return prefix


@pytest.fixture(scope="session")
def annex_bin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """A directory with git-annex, git-annex-shell, ... linked straight to the binary (no
    Python launcher per call), or None when git-annex is absent. Never skips."""
    exe = annex_support.find_git_annex()
    if exe is None:
        return None
    return annex_support.make_fast_bin(tmp_path_factory.mktemp("annexbin"), exe)


@pytest.fixture(scope="session")
def git_annex_bin(annex_bin_dir: Path | None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of `git-annex` in `annex_bin_dir`. Skips when git-annex is absent -- fails
    instead when $CI is set -- and fails when it is present but does not run."""
    if annex_bin_dir is None:
        _absent("git-annex")
    assert annex_bin_dir is not None
    if shutil.which("git") is None:
        _absent("git")
    exe = annex_bin_dir / "git-annex"
    env = annex_support.base_env(
        tmp_path_factory.mktemp("annexhome"),
        bin_dirs=[annex_bin_dir],
        magic=annex_support.magic_db(exe),
    )
    annex_support.run([exe, "version", "--raw"], env=env, timeout=60)
    return exe


@pytest.fixture
def annex_env(tmp_path: Path, git_annex_bin: Path) -> Iterator[AnnexEnv]:
    """A fresh environment for real git/git-annex runs below `tmp_path` (see AnnexEnv)."""
    env = AnnexEnv.create(
        tmp_path,
        bin_dir=git_annex_bin.parent,
        magic=annex_support.magic_db(git_annex_bin),
    )
    yield env
    env.cleanup()


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory, annex_bin_dir: Path | None) -> Iterator[Sshd]:
    """One private sshd on 127.0.0.1 per test session/xdist worker (see tests/support/sshd.py).

    Sessions find git-annex-shell first in PATH by default (when git-annex is installed).
    Prefer `ssh_hosts` in tests: it removes the aliases a test adds.
    """
    if not os.path.exists(sshd_support.SSHD_BIN) or shutil.which("ssh-keygen") is None:
        _absent("OpenSSH server (/usr/sbin/sshd)")
    # short root: ssh ControlPath sockets must fit in sun_path
    root = Path(tempfile.mkdtemp(prefix="atssh-", dir=_short_tmp(tmp_path_factory)))
    bin_dirs = [annex_bin_dir] if annex_bin_dir else []
    server = Sshd(root, server_path=annex_support.default_path(bin_dirs))
    try:
        server.start()
    except Exception:
        server.stop()
        raise
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def _short_tmp(factory: pytest.TempPathFactory) -> str:
    base = factory.getbasetemp()
    return "/tmp" if len(str(base)) > 60 and os.path.isdir("/tmp") else str(base)


@pytest.fixture
def ssh_hosts(sshd: Sshd) -> Iterator[Sshd]:
    """The session's sshd; host aliases added during the test are removed afterwards."""
    before = sshd.snapshot_hosts()
    yield sshd
    sshd.restore_hosts(before)
