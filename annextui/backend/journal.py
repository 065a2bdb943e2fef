"""Writing the git-annex branch the way git-annex does: through the journal, under its lock.

Every change is a read-modify-write of one whole file under `annex/journal.lck` (a POSIX fcntl
lock, the same one git-annex takes), written atomically into `annex/journal/`. Committing builds
the new branch tree with dulwich from the branch tree plus the journal files, commits it as
`update` and moves `refs/heads/git-annex` with a compare-and-swap.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from dulwich.objects import Blob, Commit, Tree

from annextui.backend.branch import BRANCH_REF, AnnexRef, BranchView, branch_path, journal_name
from annextui.backend.repo import Repository

_thread_locks: dict[Path, threading.RLock] = {}
_thread_locks_guard = threading.Lock()
_held: dict[Path, int] = {}


class JournalError(Exception):
    """The journal cannot be written safely."""


def _thread_lock(path: Path) -> threading.RLock:
    with _thread_locks_guard:
        return _thread_locks.setdefault(path, threading.RLock())


@contextmanager
def journal_lock(repo: Repository) -> Iterator[None]:
    """Hold git-annex's `journal.lck` (exclusive, blocking).

    fcntl locks belong to the process, so threads of this process also serialise on an RLock, and
    the descriptor is kept open until the outermost holder leaves (closing any descriptor of the
    file would drop the lock).
    """
    if repo.config_bool("annex.pidlock"):
        raise JournalError("annex.pidlock is set: git-annex uses a pid lock we cannot share")
    lockfile = repo.annexdir / "journal.lck"
    tlock = _thread_lock(lockfile)
    with tlock:
        if lockfile in _held:
            yield
            return
        lockfile.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lockfile, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX)
            _held[lockfile] = fd
            try:
                yield
            finally:
                del _held[lockfile]
        finally:
            os.close(fd)


def atomic_write(target: Path, data: bytes, tmpdir: Path, mode: int = 0o644) -> None:
    """Write via a temp file in `tmpdir` and rename, so readers see old or new, never half."""
    tmpdir.mkdir(parents=True, exist_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmpdir, prefix="annextui.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class Journal:
    """Changes to the git-annex branch of one repository."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.dir = repo.annexdir / "journal"
        self.private_dir = repo.annexdir / "journal-private"
        self.tmpdir = repo.annexdir / "othertmp"

    def ensure_branch(self) -> bytes:
        """Create `refs/heads/git-annex` if missing, as git-annex does; return its sha."""
        refs = self.repo.git.refs
        try:
            return bytes(refs[BRANCH_REF])
        except KeyError:
            pass
        try:
            origin = refs[b"refs/remotes/origin/git-annex"]
        except KeyError:
            origin = None
        if origin is not None:
            refs.set_if_equals(BRANCH_REF, None, origin)
            return bytes(origin)
        tree = Tree()
        self.repo.git.object_store.add_object(tree)
        sha = self._commit(tree.id, [], "branch created")
        if not refs.set_if_equals(BRANCH_REF, None, sha):
            return bytes(refs[BRANCH_REF])
        return sha

    def change(
        self, path: str, fn: Callable[[bytes], bytes | None], *, private: bool = False
    ) -> bool:
        """Apply `fn` to the current content of `path` under the journal lock.

        `fn` returns the new whole content, or None for "no change". Returns whether it wrote.
        """
        with journal_lock(self.repo):
            view = BranchView(self.repo, include_unmerged=False)
            if private:
                try:
                    current = (self.private_dir / journal_name(path)).read_bytes()
                except FileNotFoundError:
                    current = b""
            else:
                current = view.staged(path)
            new = fn(current)
            if new is None or new == current:
                return False
            target = (self.private_dir if private else self.dir) / journal_name(path)
            atomic_write(target, new, self.tmpdir)
            return True

    # -- committing --------------------------------------------------------------------------
    def commit(self, message: str = "update") -> bytes | None:
        """Commit the public journal into the branch. Returns the new sha, or None if clean."""
        with journal_lock(self.repo):
            files = (
                sorted(p for p in self.dir.iterdir() if p.is_file()) if self.dir.is_dir() else []
            )
            if not files:
                return None
            parent = self.ensure_branch()
            store = self.repo.git.object_store
            updates: dict[str, bytes] = {}
            for f in files:
                blob = Blob.from_string(f.read_bytes())
                store.add_object(blob)
                updates[branch_path(f.name)] = blob.id
            parent_commit = self.repo.git[parent]
            assert isinstance(parent_commit, Commit)
            tree_sha = update_tree(self.repo, parent_commit.tree, updates)
            sha = self._commit(tree_sha, [parent], message)
            if not self.repo.git.refs.set_if_equals(BRANCH_REF, parent, sha):
                raise JournalError("refs/heads/git-annex moved while committing; try again")
            for f in files:
                with contextlib.suppress(OSError):
                    f.unlink()
            return sha

    def _identity(self) -> bytes:
        name = os.environ.get("GIT_COMMITTER_NAME") or self.repo.config_get("user.name")
        email = os.environ.get("GIT_COMMITTER_EMAIL") or self.repo.config_get("user.email")
        if not name:
            name = "annextui"
        if not email:
            email = f"annextui@{socket.gethostname()}"
        return f"{name} <{email}>".encode()

    def _commit(self, tree: bytes, parents: list[bytes], message: str) -> bytes:
        c = Commit()
        c.tree = tree
        c.parents = parents
        c.author = c.committer = self._identity()
        now = int(time.time())
        tz = -time.timezone if not time.localtime().tm_isdst else -time.altzone
        c.author_time = c.commit_time = now
        c.author_timezone = c.commit_timezone = tz
        c.encoding = None
        c.message = message.encode() + b"\n"
        self.repo.git.object_store.add_object(c)
        return bytes(c.id)

    def _dirty(self) -> bool:
        """Whether the public journal holds changes not yet committed."""
        return self.dir.is_dir() and any(self.dir.iterdir())

    # -- merging other git-annex branches ----------------------------------------------------
    def merge(self, refs: list[AnnexRef] | None = None) -> bytes | None:
        """Union-merge unmerged `*/git-annex` refs into our branch (branch-formats.md §5)."""
        idle = refs is None and BRANCH_REF in self.repo.git.refs and not self._dirty()
        if idle and not BranchView(self.repo).unmerged:
            # Nothing to do takes no lock, as in git-annex: `merge` in a repository we may
            # only read then succeeds when there is nothing to merge.
            return None
        with journal_lock(self.repo):
            self.commit()
            head = self.ensure_branch()
            view = BranchView(self.repo)
            todo = view.unmerged if refs is None else refs
            if not todo:
                return None
            journal_clean = not self._dirty()
            if len(todo) == 1 and journal_clean and view.is_ancestor(head, todo[0].sha):
                self.repo.git.refs.set_if_equals(BRANCH_REF, head, todo[0].sha)
                return todo[0].sha
            head_commit = self.repo.git[head]
            assert isinstance(head_commit, Commit)
            tree = head_commit.tree
            for ref in todo:
                other = self.repo.git[ref.sha]
                assert isinstance(other, Commit)
                tree = union_merge_trees(self.repo, tree, other.tree)
            message = "merging " + " ".join(r.short for r in todo) + " into git-annex"
            sha = self._commit(tree, [head, *(r.sha for r in todo)], message)
            if not self.repo.git.refs.set_if_equals(BRANCH_REF, head, sha):
                raise JournalError("refs/heads/git-annex moved while merging; try again")
            return sha


def update_tree(repo: Repository, root: bytes, updates: dict[str, bytes]) -> bytes:
    """A new tree: `root` with each path set to the given blob sha (creating directories)."""
    store = repo.git.object_store
    nested: dict[str, dict[str, bytes]] = {}
    here: dict[str, bytes] = {}
    for path, sha in updates.items():
        head, sep, rest = path.partition("/")
        if sep:
            nested.setdefault(head, {})[rest] = sha
        else:
            here[head] = sha
    tree = Tree()
    if root:
        existing = repo.git[root]
        assert isinstance(existing, Tree)
        for entry in existing.iteritems():
            tree.add(entry.path, entry.mode, entry.sha)
    for name, sha in here.items():
        tree.add(name.encode(), 0o100644, sha)
    for name, sub in nested.items():
        bname = name.encode()
        try:
            mode, old = tree[bname]
            base = old if mode & 0o40000 else b""
        except KeyError:
            base = b""
        tree.add(bname, 0o040000, update_tree(repo, base, sub))
    store.add_object(tree)
    return bytes(tree.id)


def union_merge_lines(a: bytes, b: bytes) -> bytes:
    """git-annex's file union merge: sorted unique lines; keep an input if it already equals it."""
    la = {line for line in a.split(b"\n") if line}
    lb = {line for line in b.split(b"\n") if line}
    merged = la | lb
    if merged == la:
        return a
    if merged == lb:
        return b
    return b"".join(line + b"\n" for line in sorted(merged))


def union_merge_trees(repo: Repository, ours: bytes, theirs: bytes) -> bytes:
    """Merge two branch trees path by path, only descending where subtree shas differ."""
    if ours == theirs:
        return ours
    store = repo.git.object_store
    t_ours = repo.git[ours]
    t_theirs = repo.git[theirs]
    assert isinstance(t_ours, Tree)
    assert isinstance(t_theirs, Tree)
    result = Tree()
    ours_entries = {e.path: (e.mode, e.sha) for e in t_ours.iteritems()}
    for e in t_theirs.iteritems():
        mine = ours_entries.get(e.path)
        if mine is None:
            ours_entries[e.path] = (e.mode, e.sha)
            continue
        mode, sha = mine
        if sha == e.sha:
            continue
        if mode & 0o40000 and e.mode & 0o40000:
            ours_entries[e.path] = (mode, union_merge_trees(repo, sha, e.sha))
        elif not mode & 0o40000 and not e.mode & 0o40000:
            a, b = repo.git[sha], repo.git[e.sha]
            assert isinstance(a, Blob)
            assert isinstance(b, Blob)
            merged = union_merge_lines(a.as_raw_string(), b.as_raw_string())
            blob = Blob.from_string(merged)
            store.add_object(blob)
            ours_entries[e.path] = (0o100644, blob.id)
    for path, (mode, sha) in ours_entries.items():
        result.add(path, mode, sha)
    store.add_object(result)
    return bytes(result.id)
