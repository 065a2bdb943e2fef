"""notifychanges' ref watcher: inotify and the polling fallback see the same ref writes, made
by real git (a `.lock` file renamed into place), in existing and in brand-new directories."""

from __future__ import annotations

import os
import select
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest

from annextui.proxycore.refwatch import (
    InotifyRefWatcher,
    InotifyUnavailable,
    PollingRefWatcher,
    changes,
    read_ref,
    watch_refs,
)
from tests.proxycore.test_shell import OURS
from tests.support.annex import AnnexEnv

WATCHERS = ["inotify", "polling"]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def _commit(repo: Path, tree: str, message: str) -> str:
    ident = ["-c", "user.name=t", "-c", "user.email=t@t"]
    return _git(repo, *ident, "commit-tree", tree, "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str, str]:
    r = tmp_path / "r.git"
    subprocess.run(["git", "init", "-q", "--bare", str(r)], check=True)
    tree = _git(r, "mktree")  # the empty tree
    c1, c2 = _commit(r, tree, "one"), _commit(r, tree, "two")
    _git(r, "update-ref", "refs/heads/main", c1)
    return r, c1, c2


def _next_batch(watcher: InotifyRefWatcher | PollingRefWatcher) -> list[str]:
    """Wait (up to 30 s, never a timing assertion) for the next batch of changes."""
    if isinstance(watcher, InotifyRefWatcher):
        ready, _, _ = select.select([watcher.fileno()], [], [], 30)
        assert ready, "inotify reported nothing"
        return watcher.read_changes()
    for _ in range(300):
        batch = watcher.read_changes()
        if batch:
            return batch
        select.select([], [], [], 0.1)
    raise AssertionError("polling found nothing")


@pytest.mark.parametrize("kind", WATCHERS)
def test_reports_initial_refs_then_writes_anywhere_below_refs(
    repo: tuple[Path, str, str], kind: str
) -> None:
    r, c1, c2 = repo
    watcher = watch_refs(str(r / "refs"), use_inotify=kind == "inotify")
    assert isinstance(watcher, InotifyRefWatcher if kind == "inotify" else PollingRefWatcher)
    try:
        assert watcher.initial() == [c1]
        _git(r, "update-ref", "refs/heads/main", c2)  # existing directory
        assert _next_batch(watcher) == [c2]
        # a directory that did not exist when watching began, two levels deep
        _git(r, "update-ref", "refs/remotes/origin/feature", c1)
        assert _next_batch(watcher) == [c1]
        _git(r, "update-ref", "refs/remotes/origin/feature", c2)  # and it is watched now
        assert _next_batch(watcher) == [c2]
        _git(r, "symbolic-ref", "HEAD", "refs/heads/main")  # not under refs/: nothing
        _git(r, "update-ref", "refs/tags/t", c1)
        assert _next_batch(watcher) == [c1]
    finally:
        watcher.close()


class _Listing:
    """What os.scandir returns, from a list made beforehand."""

    def __init__(self, entries: list[os.DirEntry[str]]) -> None:
        self._it = iter(entries)

    def __enter__(self) -> _Listing:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def __iter__(self) -> Iterator[os.DirEntry[str]]:
        return self

    def __next__(self) -> os.DirEntry[str]:
        return next(self._it)

    def close(self) -> None:
        pass


def test_a_directory_made_right_after_its_parent_is_listed_is_watched(
    repo: tuple[Path, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """git making `refs/late/` just as the watcher lists `refs/`: the refs written into it
    later are reported (listing before watching, as os.walk does, never watched it)."""
    r, c1, c2 = repo
    refs, late = r / "refs", r / "refs" / "late"
    real_scandir = os.scandir

    def listing_then_mkdir(path: str) -> _Listing:
        with real_scandir(path) as it:
            entries = list(it)
        if os.fspath(path) == str(refs) and not late.exists():
            late.mkdir()  # after the listing, which does not name it
        return _Listing(entries)

    monkeypatch.setattr(os, "scandir", listing_then_mkdir)
    watcher = InotifyRefWatcher(str(refs))
    monkeypatch.undo()
    try:
        assert late.is_dir()
        assert watcher.initial() == [c1]
        _git(r, "update-ref", "refs/late/x", c2)
        assert _next_batch(watcher) == [c2]
        _git(r, "update-ref", "refs/late/x", c1)  # watched from now on
        assert _next_batch(watcher) == [c1]
    finally:
        watcher.close()


def test_read_ref_ignores_lock_files_and_symbolic_refs(tmp_path: Path) -> None:
    sha = "a" * 40
    (tmp_path / "x").write_text(sha + "\n")
    (tmp_path / "x.lock").write_text(sha + "\n")
    (tmp_path / "sym").write_text("ref: refs/heads/main\n")
    (tmp_path / "junk").write_text("not a sha\n")
    assert read_ref(str(tmp_path / "x")) == sha
    assert read_ref(str(tmp_path / "x.lock")) is None
    assert read_ref(str(tmp_path / "sym")) is None
    assert read_ref(str(tmp_path / "junk")) is None


def test_changes_ends_when_the_client_hangs_up(repo: tuple[Path, str, str], tmp_path: Path) -> None:
    import os

    r, c1, _ = repo
    rfd, wfd = os.pipe()
    os.close(wfd)  # the client is gone
    watcher = watch_refs(str(r / "refs"))
    try:
        assert list(changes(watcher, rfd)) == [[c1]]
    finally:
        watcher.close()
        os.close(rfd)


def test_notifychanges_next_to_git_annex_shell(annex_env: AnnexEnv) -> None:
    """Both shells announce READY, the existing refs, then a pushed ref in a new directory."""
    served = annex_env.make_annex_repo("notify.git", bare=True)
    sha = annex_env.git(served, "rev-parse", "git-annex")
    procs = {
        name: subprocess.Popen(
            [*cmd, "notifychanges", str(served)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=annex_env.env,
        )
        for name, cmd in (
            ("theirs", [annex_env.git_annex_shell]),
            ("ours", list(OURS)),
        )
    }
    try:
        for p in procs.values():
            assert p.stdout is not None
            assert p.stdout.readline() == b"READY\n"
            assert sha in p.stdout.readline().decode()  # the initial burst
        annex_env.git(served, "update-ref", "refs/remotes/client/synced/main", sha)
        for name, p in procs.items():
            assert p.stdout is not None
            word, *shas = p.stdout.readline().decode().split()
            assert word == "CHANGED", name
            assert set(shas) == {sha}, name  # git-annex may name it twice (create, then write)
    finally:
        for p in procs.values():
            assert p.stdin is not None
            p.stdin.close()
    # Both end when the client hangs up; git-annex-shell with status 1 ("hGetChar: end of
    # file"), ours with 0: the end of the conversation is not an error.
    procs["theirs"].wait(timeout=10)
    assert procs["ours"].wait(timeout=10) == 0


def test_out_of_watches_falls_back_to_polling(
    repo: tuple[Path, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new ref directory that cannot be watched (the inotify watch limit): the watcher
    switches to polling, reports everything once, and goes on reporting changes."""
    import os

    r, c1, c2 = repo
    watcher = watch_refs(str(r / "refs"))
    assert isinstance(watcher, InotifyRefWatcher)

    def no_more_watches(directory: str) -> None:
        raise InotifyUnavailable(28, "No space left on device")

    monkeypatch.setattr(watcher, "_watch", no_more_watches)
    rfd, wfd = os.pipe()
    gen = changes(watcher, rfd, poll_interval=0.05)
    try:
        assert next(gen) == [c1]
        _git(r, "update-ref", "refs/remotes/origin/new", c2)  # a directory it cannot watch
        assert sorted(next(gen)) == sorted([c1, c2])  # everything, once polling took over
        _git(r, "update-ref", "refs/heads/main", c2)
        assert next(gen) == [c2]
    finally:
        os.close(wfd)
        gen.close()
        os.close(rfd)
