"""Unlocked files in a non-bare served repository, annextui-shell next to git-annex-shell.

Two twin non-bare repositories (same UUID, same files, same history) are served over the
session's sshd, `ref` by the real git-annex-shell and `ours` by annextui-shell; a real git-annex
client of each does the same `copy --to`, `drop --from` and `move`. After every step both served
repositories are compared: each work-tree file's bytes, mode and link count, `git status`, and
the keys database (associated files, and which inodes the recorded inode caches name). The
served side must also pass a real `git annex fsck` with nothing to fix.
"""

from __future__ import annotations

import os
import re
import sqlite3
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import annex as annex_support
from tests.support import procs
from tests.support.annex import AnnexEnv
from tests.support.sshd import Sshd

pytestmark = [pytest.mark.ssh, pytest.mark.slow]

SRV_UUID = "5e4d0000-0000-4000-8000-00000000b001"
CL_UUID = "c1c10000-0000-4000-8000-00000000d001"
SIDES = ("ref", "ours")
SHELLS = {"ref": "git-annex-shell", "ours": "annextui-shell"}

FILES = {
    "u/a.txt": b"unlocked a\n",
    "u/b.bin": bytes(range(256)) * 40,
    "u/dup1.txt": b"same content twice\n",
    "u/dup2.txt": b"same content twice\n",
    "u/run.sh": b"#!/bin/sh\necho unlocked\n",
    "thin/t.bin": b"thin file content\n" * 100,
    "move/m.txt": b"moving\n",
}
LOCKED = {"l/locked.txt": b"added locked, unlocked by an adjusted branch\n"}
NEW = {"new/plain-git.txt": b"committed by plain git, never seen by git-annex\n"}


#: git without git-annex: no filters, no hooks (so nothing opens the keys database)
BYPASS = (
    *("-c", "filter.annex.smudge="),
    *("-c", "filter.annex.clean="),
    *("-c", "filter.annex.process="),
    *("-c", "core.hooksPath=/dev/null"),
)


@dataclass
class Side:
    srv: Path
    cl: Path


@dataclass
class Twins:
    env: AnnexEnv
    sides: dict[str, Side]

    def annex(self, repo: Path, *args: str, **kw: Any) -> Any:
        res = self.env.annex(repo, *args, **kw)
        for s in self.sides.values():
            if s.cl == repo:
                # what a session writes at its end (the keys database's queued changes, the
                # journal's commit) is there before it is compared: a run under load once read
                # a keys database without the rename a GET had reconciled
                procs.wait_none_serving(str(s.srv), 30.0)
        return res

    def both(self, *args: str) -> None:
        """The same client command against each side's served repository."""
        for s in self.sides.values():
            self.annex(s.cl, *args)


def _make_served(env: AnnexEnv, path: Path) -> Path:
    srv = env.make_annex_repo(path, SRV_UUID, "served")
    annex_support.add_unlocked_files(srv, FILES, executable=["u/run.sh"], env=env.env)
    env.add_files(srv, LOCKED, message="a locked file")
    return srv


@pytest.fixture(scope="module")
def twins(
    tmp_path_factory: pytest.TempPathFactory, git_annex_bin: Path, sshd: Sshd
) -> Iterator[Twins]:
    with annex_support.ssh_world(tmp_path_factory, "unlocked", git_annex_bin, sshd) as (root, env):
        sshd.add_host("srvhost")
        env.fix_git_dates(1_700_000_000)
        sides = {}
        for name in SIDES:
            srv = _make_served(env, root / f"{name}-srv")
            cl = env.clone(
                f"ssh://srvhost{srv}", root / f"{name}-cl", uuid=CL_UUID, origin="srv",
                annex_init=False,
            )  # fmt: skip
            env.git(cl, "config", "remote.srv.annex-shell", SHELLS[name])
            env.annex(cl, "init", "-q", "client")
            env.annex(cl, "get", "-q", "--from", "srv", ".")
            # the served repository learns of the client's copies (its fsck counts them)
            env.annex(cl, "sync", "-q", "--only-annex", "--no-content", "srv")
            sides[name] = Side(srv, cl)
        yield Twins(env, sides)


# -- what is compared -----------------------------------------------------------------------------


def _worktree(srv: Path) -> dict[str, tuple[bytes, str, int]]:
    """Every work-tree file: bytes, mode, link count."""
    out = {}
    for p in sorted(srv.rglob("*")):
        rel = p.relative_to(srv).as_posix()
        if rel.startswith(".git") or p.is_dir():
            continue
        st = os.lstat(p)
        data = os.readlink(p).encode() if stat.S_ISLNK(st.st_mode) else p.read_bytes()
        out[rel] = (data, oct(stat.S_IMODE(st.st_mode)), st.st_nlink)
    return out


def _keysdb(srv: Path) -> tuple[set[tuple[str, str]], set[tuple[str, str, str]]]:
    """Associated (key, file) rows, and the content rows as (key, what the inode is, size):
    inode numbers differ between twins, the files they belong to must not."""
    names: dict[int, str] = {}
    for p in srv.rglob("*"):
        if p.is_file() and not p.is_symlink() and ".git/annex/keysdb" not in str(p):
            rel = p.relative_to(srv).as_posix()
            ino = p.stat().st_ino
            label = "object" if "/annex/objects/" in rel else rel
            names[ino] = label if ino not in names or label != "object" else names[ino]
    with sqlite3.connect(f"file:{srv}/.git/annex/keysdb/db?mode=ro", uri=True) as c:
        assoc = {(bytes(k).decode(), bytes(f).decode()) for k, f in c.execute(
            "SELECT key, file FROM associated")}  # fmt: skip
        content = set()
        for k, ic, size in c.execute("SELECT key, inodecache, filesize FROM content"):
            ino = int(ic.split()[0])
            content.add((bytes(k).decode(), names.get(ino, "gone"), size))
    return assoc, content


def _status(env: AnnexEnv, srv: Path) -> str:
    return env.git(srv, "status", "--porcelain")


def _fsck_clean(env: AnnexEnv, srv: Path) -> None:
    res = env.annex(srv, "fsck", check=False)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    for bad in ("fixing", "**", "failed"):
        assert bad not in out, out


def _compare(t: Twins) -> dict[str, tuple[bytes, str, int]]:
    """Both served repositories look the same; returns ours' work tree for more checks."""
    ref, ours = t.sides["ref"].srv, t.sides["ours"].srv
    assert _worktree(ours) == _worktree(ref)
    assert _keysdb(ours) == _keysdb(ref)
    for srv in (ref, ours):
        assert _status(t.env, srv) == "", srv
    for srv in (ref, ours):  # fsck last: it may itself fix what a shell left wrong
        _fsck_clean(t.env, srv)
    return _worktree(ours)


def _pointer(srv: Path, name: str) -> bool:
    return re.fullmatch(rb"/annex/objects/[^/\n]+\n", (srv / name).read_bytes()) is not None


# -- the steps (each sets up the state it starts from: run alone, or on another xdist worker with
# -- a fresh module fixture, it checks what it says) -----------------------------------------------


def test_drop_from_turns_files_into_pointers(twins: Twins) -> None:
    twins.both("drop", "-q", "--from", "srv", "u")
    wt = _compare(twins)
    ours = twins.sides["ours"].srv
    for name in ("u/a.txt", "u/b.bin", "u/dup1.txt", "u/dup2.txt", "u/run.sh"):
        assert _pointer(ours, name), name
    assert wt["u/run.sh"][1] == "0o755"  # the mode git tracks survives
    assert wt["u/a.txt"][1] == "0o644"


def test_copy_to_populates_every_file_of_the_key(twins: Twins) -> None:
    twins.both("drop", "-q", "--from", "srv", "u")  # pointers, whatever ran before
    twins.both("copy", "-q", "--to", "srv", "u")
    wt = _compare(twins)
    for name in ("u/a.txt", "u/b.bin", "u/dup1.txt", "u/dup2.txt", "u/run.sh"):
        assert wt[name][0] == FILES[name], name
    assert wt["u/run.sh"][1] == "0o755"
    assert wt["u/dup1.txt"][2] == 1  # copies, not links, without annex.thin


def test_move_to_and_from(twins: Twins) -> None:
    twins.both("drop", "-q", "--from", "srv", "move")
    _compare(twins)
    twins.both("move", "-q", "--to", "srv", "move")
    wt = _compare(twins)
    assert wt["move/m.txt"][0] == FILES["move/m.txt"]
    twins.both("move", "-q", "--from", "srv", "move")
    assert _pointer(twins.sides["ours"].srv, "move/m.txt")
    _compare(twins)


def test_thin_hard_links_the_object(twins: Twins) -> None:
    for s in twins.sides.values():
        twins.env.git(s.srv, "config", "annex.thin", "true")
    twins.both("drop", "-q", "--from", "srv", "thin")
    _compare(twins)
    twins.both("copy", "-q", "--to", "srv", "thin")
    wt = _compare(twins)
    assert wt["thin/t.bin"][0] == FILES["thin/t.bin"]
    assert wt["thin/t.bin"][2] == 2  # the work-tree file is the object
    twins.both("drop", "-q", "--from", "srv", "thin")
    wt = _compare(twins)
    assert wt["thin/t.bin"][2] == 1
    assert _pointer(twins.sides["ours"].srv, "thin/t.bin")
    for s in twins.sides.values():
        twins.env.git(s.srv, "config", "--unset", "annex.thin")


def test_get_reconciles_the_keys_database(twins: Twins) -> None:
    """A GET opens the keys database (prepSendAnnex reads the key's inode caches), and opening
    it reconciles it with the index: a rename staged by plain git shows in the database after
    a GET, whoever serves it."""
    for s in twins.sides.values():
        twins.env.git(s.srv, *BYPASS, "mv", "u/a.txt", "u/renamed.txt")  # staged only
    try:
        for s in twins.sides.values():
            twins.annex(s.cl, "drop", "-q", "--force", "u/b.bin")
        twins.both("get", "-q", "--from", "srv", "u/b.bin")
        ref, ours = twins.sides["ref"].srv, twins.sides["ours"].srv
        assoc = _keysdb(ref)[0]
        # the index tree git-annex last reconciled with, against the index now (if it fails)
        last = ("rev-parse", "-q", "--verify", "refs/annex/last-index")
        seen = (twins.env.git(ref, *last, check=False), twins.env.git(ref, "ls-files", "-s", "u"))
        assert any(f == "u/renamed.txt" for _, f in assoc), (assoc, seen)
        assert _keysdb(ours) == _keysdb(ref)
    finally:  # the next tests start from the committed tree, whatever failed here
        for s in twins.sides.values():
            twins.env.git(s.srv, *BYPASS, "mv", "u/renamed.txt", "u/a.txt")
    _compare(twins)


def test_modified_thin_file_is_not_sent(twins: Twins) -> None:
    """With annex.thin the object is the work-tree file: once that is edited in place, a GET
    must not send it under the key (prepSendAnnex checks the object against the inode caches
    in the keys database, then its content). The client does not verify, so only the server
    can stop the wrong bytes."""
    for s in twins.sides.values():
        twins.env.git(s.srv, "config", "annex.thin", "true")
        twins.env.git(s.cl, "config", "remote.srv.annex-verify", "false")
    twins.both("drop", "-q", "--from", "srv", "thin")
    twins.both("copy", "-q", "--to", "srv", "thin")
    edited = b"edited in place\n".ljust(len(FILES["thin/t.bin"]), b"!")
    for s in twins.sides.values():
        t = s.srv / "thin/t.bin"
        assert t.stat().st_nlink == 2
        st = t.stat()
        with t.open("r+b") as fh:  # same inode, so the object changes with it
            fh.write(edited)
        # a distinct mtime whatever the clock's resolution: the inode cache no longer matches
        os.utime(t, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        twins.annex(s.cl, "drop", "-q", "--force", "thin")
    for name, s in twins.sides.items():
        res = twins.annex(s.cl, "get", "--from", "srv", "thin", check=False)
        assert res.returncode != 0, (name, res.stdout + res.stderr)
        assert _pointer(s.cl, "thin/t.bin"), name
    ref, ours = twins.sides["ref"].srv, twins.sides["ours"].srv
    assert _worktree(ours) == _worktree(ref)
    assert _keysdb(ours) == _keysdb(ref)
    # put the content back (the object with it), then everything is as before
    for s in twins.sides.values():
        (s.srv / "thin/t.bin").write_bytes(FILES["thin/t.bin"])
        twins.env.git(s.srv, "config", "--unset", "annex.thin")
        twins.env.git(s.cl, "config", "--unset", "remote.srv.annex-verify")
    twins.both("get", "-q", "--from", "srv", "thin")
    wt = _compare(twins)
    assert wt["thin/t.bin"][0] == FILES["thin/t.bin"]


def test_files_committed_without_git_annex_are_found(twins: Twins) -> None:
    """A pointer file merged by plain git (filters and git-annex's post-merge hook bypassed):
    the keys database has never heard of it, so the shell must reconcile the database with the
    index before populating."""
    for s in twins.sides.values():
        twins.env.git(s.cl, "config", "annex.addunlocked", "true")
        twins.env.add_files(s.cl, NEW, message="new unlocked file")
        twins.env.git(s.cl, "push", "-q", "srv", "HEAD:refs/heads/incoming")
        twins.env.git(s.srv, *BYPASS, "merge", "-q", "--ff-only", "incoming")
        assert _pointer(s.srv, "new/plain-git.txt")
        db = sqlite3.connect(f"file:{s.srv}/.git/annex/keysdb/db?mode=ro", uri=True)
        with db:
            assert not db.execute(
                "SELECT 1 FROM associated WHERE file=?", (b"new/plain-git.txt",)
            ).fetchall()
    twins.both("copy", "-q", "--to", "srv", "new")
    wt = _compare(twins)
    assert wt["new/plain-git.txt"][0] == NEW["new/plain-git.txt"]


def test_adjusted_unlocked_branch(twins: Twins) -> None:
    for s in twins.sides.values():
        twins.annex(s.srv, "adjust", "--unlock", "-q")
    _compare(twins)
    twins.both("drop", "-q", "--from", "srv", "l")
    wt = _compare(twins)
    assert _pointer(twins.sides["ours"].srv, "l/locked.txt")
    twins.both("copy", "-q", "--to", "srv", "l")
    wt = _compare(twins)
    assert wt["l/locked.txt"][0] == LOCKED["l/locked.txt"]
