"""Committing the journal while the git-annex branch moves under it loses no line.

A client's `git push` of `git-annex` into the repository (what `git annex sync` does), or a
second writer, moves `refs/heads/git-annex` while our journal holds changes read from the old
tip. git-annex union-merges the moved branch into its index before committing
(Annex/Branch.hs `commitIndex'`); `Journal.commit` must keep those lines too. The pushes here
are real `git push`es (one scenario) and, for the interleavings, commits put on the ref from
outside the Journal exactly as receive-pack does (no journal lock, compare-and-swap).
"""

from __future__ import annotations

import functools
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dulwich.file import FileLocked
from dulwich.objects import Blob, Commit
from hypothesis import given, settings
from hypothesis import strategies as st

from annextui.backend.branch import BRANCH_REF, BranchView
from annextui.backend.clock import Clock
from annextui.backend.journal import Journal, update_tree
from annextui.backend.logs.presence import (
    PresenceStatus,
    change_presence,
    parse_presence_log,
    resolve_presence_log,
)
from annextui.backend.repo import Repository
from tests.support import annex as annex_support
from tests.support.annex import AnnexEnv

KEY_PATHS = [
    "aaa/bbb/SHA256E-s1--k1.log",
    "aaa/bbb/SHA256E-s2--k2.log",
    "ccc/ddd/SHA256E-s3--k3.log",
]
OURS = "0a000000-0000-4000-8000-000000000001"
THEIRS = "0b000000-0000-4000-8000-000000000002"


def _status(present: bool) -> PresenceStatus:
    return PresenceStatus.PRESENT if present else PresenceStatus.MISSING


def _ours(status: PresenceStatus, clock: Clock, current: bytes) -> bytes | None:
    """A presence log with OURS logged as `status` at `clock` (a journal change)."""
    return change_presence(current, OURS, status, clock)


def _resolved(repo: Repository, path: str) -> dict[str, str]:
    """uuid -> status of the committed branch (journal excluded: it must be empty)."""
    view = BranchView(repo, include_unmerged=False)
    data = view.blob_at(view.head, path) or b""
    return {
        u: line.status.value for u, line in resolve_presence_log(parse_presence_log(data)).items()
    }


def _push_line(repo: Repository, path: str, uuid: str, present: bool, clock: Clock) -> None:
    """What a pushed commit does to the branch: a new commit on the tip, ref compare-and-swap,
    without the journal lock (git's receive-pack knows nothing of it)."""
    git = repo.git
    while True:
        tip = bytes(git.refs[BRANCH_REF])
        parent = git[tip]
        assert isinstance(parent, Commit)
        view = BranchView(repo, include_unmerged=False)
        old = view.blob_at(tip, path) or b""
        new = change_presence(old, uuid, _status(present), clock)
        if new is None:
            return  # already so: nothing to push
        blob = Blob.from_string(new)
        git.object_store.add_object(blob)
        c = Commit()
        c.tree = update_tree(repo, parent.tree, {path: blob.id})
        c.parents = [tip]
        c.author = c.committer = b"pusher <p@example.com>"
        c.author_time = c.commit_time = clock.seconds
        c.author_timezone = c.commit_timezone = 0
        c.message = b"pushed\n"
        git.object_store.add_object(c)
        try:
            if git.refs.set_if_equals(BRANCH_REF, tip, c.id):
                return
        except FileLocked:  # our commit holds the ref's lock: git would retry the push
            continue


@pytest.fixture(scope="module")
def annex_repo_template(
    tmp_path_factory: pytest.TempPathFactory, git_annex_bin: Path
) -> Iterator[Path]:
    """One git-annex repository made by git-annex, copied by each example."""
    root = tmp_path_factory.mktemp("journalpush")
    env = AnnexEnv.create(
        root, bin_dir=git_annex_bin.parent, magic=annex_support.magic_db(git_annex_bin)
    )
    try:
        yield env.make_annex_repo(root / "template", description="template")
    finally:
        env.cleanup()


def _fresh_repo(env: AnnexEnv, where: Path) -> Repository:
    path = env.make_annex_repo(where, description="r")
    return Repository(path)


def test_real_push_during_an_open_journal_is_kept(tmp_path: Path, annex_env: AnnexEnv) -> None:
    """The issue's scenario at the branch level, with a real clone pushing with `git push`."""
    env = annex_env
    seed = env.make_annex_repo(tmp_path / "seed", description="seed")
    keys = env.add_files(seed, {"f.txt": "content\n"})
    (key,) = keys.values()
    # A bare gateway, as served: a non-bare one runs git-annex's post-receive hook on a push,
    # which commits the journal itself (see test_push_into_a_non_bare_repository below).
    gw = env.clone(seed, tmp_path / "gw.git", bare=True, description="gw")
    other = env.clone(gw, tmp_path / "other", description="other")
    other_uuid = env.git(other, "config", "annex.uuid")

    repo = Repository(gw)
    path = next(iter(_key_log_paths(repo, key)))
    # A client session of ours journals a change to the key's log ...
    Journal(repo).change(
        path, lambda d: change_presence(d, OURS, PresenceStatus.PRESENT, Clock.from_seconds(10))
    )
    # ... while another clone records the key and pushes git-annex straight in.
    env.annex(other, "setpresentkey", key, other_uuid, "1")
    env.annex(other, "merge")  # commits setpresentkey's journal (it leaves it uncommitted)
    assert other_uuid in env.git(other, "show", f"git-annex:{path}")
    env.git(other, "push", "-q", "origin", "git-annex:git-annex")
    Journal(Repository(gw)).commit()

    whereis = env.annex_json(gw, "whereis", "--key", key)
    uuids = {w["uuid"] for r in whereis for w in r["whereis"] + r.get("untrusted", [])}
    assert other_uuid in uuids, whereis
    assert _resolved(Repository(gw), path)[OURS] == "1"
    # The branch is one descendant of the pushed tip: nothing of the push was reverted.
    fsck = env.annex(gw, "fsck", "--fast", "--key", key)
    assert "fixing" not in fsck.stdout + fsck.stderr


def _key_log_paths(repo: Repository, key: str) -> list[str]:
    from annextui.backend.keys import branch_hash_levels, location_log_path

    return [location_log_path(key, branch_hash_levels(repo.config_bool))]


def test_an_unmoved_branch_keeps_git_annexs_compacted_log(
    tmp_path: Path, annex_env: AnnexEnv
) -> None:
    """No union where the branch did not move: a changed line replaces the old one."""
    repo = _fresh_repo(annex_env, tmp_path / "r")
    j = Journal(repo)
    path = KEY_PATHS[0]
    j.change(
        path, lambda d: change_presence(d, OURS, PresenceStatus.PRESENT, Clock.from_seconds(1))
    )
    j.commit()
    j.change(
        path, lambda d: change_presence(d, OURS, PresenceStatus.MISSING, Clock.from_seconds(2))
    )
    # Someone else's push touching another file only.
    _push_line(repo, KEY_PATHS[1], THEIRS, True, Clock.from_seconds(3))
    j.commit()
    view = BranchView(repo, include_unmerged=False)
    assert view.blob_at(view.head, path) == b"2s 0 " + OURS.encode() + b"\n"
    assert _resolved(repo, KEY_PATHS[1]) == {THEIRS: "1"}


# -- interleavings ---------------------------------------------------------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["ours", "push", "commit"]),
        st.sampled_from(KEY_PATHS),
        st.booleans(),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=40)
@given(ops=OPS)
def test_interleaved_pushes_journal_writes_and_commits(
    ops: list[tuple[str, str, bool]], annex_repo_template: Path
) -> None:
    """Whatever the order of our journal writes, commits and outside pushes, the branch ends
    holding the last value each writer wrote for each key."""
    with tempfile.TemporaryDirectory() as d:
        where = Path(d) / "r"
        shutil.copytree(annex_repo_template, where, symlinks=True)
        repo = Repository(where)
        journal = Journal(repo)
        expected: dict[str, dict[str, str]] = {}
        for n, (op, path, present) in enumerate(ops, start=1):
            clock = Clock.from_seconds(n)
            if op == "ours":
                journal.change(path, functools.partial(_ours, _status(present), clock))
                expected.setdefault(path, {})[OURS] = _status(present).value
            elif op == "push":
                _push_line(repo, path, THEIRS, present, clock)
                expected.setdefault(path, {})[THEIRS] = _status(present).value
            else:
                journal.commit()
        journal.commit()
        for path, want in expected.items():
            assert _resolved(repo, path) == want, (path, ops)


def test_threaded_pushes_racing_commits(tmp_path: Path, annex_repo_template: Path) -> None:
    """A pusher thread hammering the ref while the journal is written and committed: the
    compare-and-swap race inside `commit` is retried on top of the pushed tip, nothing lost."""
    where = tmp_path / "r"
    shutil.copytree(annex_repo_template, where, symlinks=True)
    repo = Repository(where)
    pusher_repo = Repository(where)
    rounds = 60
    done = threading.Event()
    pushed: dict[str, int] = {}
    errors: list[BaseException] = []

    def pusher() -> None:
        try:
            n = 0
            while not done.is_set() and n < 3 * rounds:
                n += 1
                path = KEY_PATHS[n % len(KEY_PATHS)]
                _push_line(pusher_repo, path, THEIRS, n % 2 == 0, Clock.from_seconds(1000 + n))
                pushed[path] = n
                time.sleep(0.02)  # a push every 20 ms: denser than any real gateway sees
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=pusher, daemon=True)  # a stale ref lock must not hold the worker
    t.start()
    journal = Journal(repo)
    try:
        for i in range(rounds):
            path = KEY_PATHS[i % len(KEY_PATHS)]
            journal.change(
                path, functools.partial(_ours, _status(i % 2 == 0), Clock.from_seconds(10_000 + i))
            )
            if i % 3 == 2:
                journal.commit()
    finally:
        done.set()
        t.join(timeout=60)
    assert not t.is_alive(), "the pusher never stopped (a ref lock left behind?)"
    journal.commit()
    assert not errors
    last_ours = {KEY_PATHS[i % len(KEY_PATHS)]: i for i in range(rounds)}
    for path in KEY_PATHS:
        got = _resolved(repo, path)
        assert got[OURS] == _status(last_ours[path] % 2 == 0).value
        if path in pushed:
            assert got[THEIRS] == _status(pushed[path] % 2 == 0).value
