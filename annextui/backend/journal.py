"""Writing the git-annex branch the way git-annex does: through the journal, under its lock.

Every change is a read-modify-write of one whole file under `annex/journal.lck` (a POSIX fcntl
lock, the same one git-annex takes), written atomically into `annex/journal/`. Committing builds
the new branch tree with dulwich from the branch tree plus the journal files, commits it as
`update` and moves `refs/heads/git-annex` with a compare-and-swap.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from dulwich.objects import Blob, Commit, Tree

from annextui.backend.branch import BRANCH_REF, AnnexRef, BranchView
from annextui.backend.journalpath import branch_path, journal_name
from annextui.backend.recordlock import lock_exclusive
from annextui.backend.repo import Repository

_thread_locks: dict[Path, threading.RLock] = {}
_thread_locks_guard = threading.Lock()
_held: dict[Path, int] = {}


#: How long a commit keeps retrying while pushes move the branch under it (seconds), and the
#: longest pause between tries (randomised, so two writers do not keep colliding in step).
_RACE_PATIENCE = 60.0
_RACE_PAUSE = 0.02


class JournalError(Exception):
    """The journal cannot be written safely."""


def _thread_lock(path: Path) -> threading.RLock:
    with _thread_locks_guard:
        return _thread_locks.setdefault(path, threading.RLock())


@contextmanager
def journal_lock(repo: Repository) -> Iterator[None]:
    """Hold git-annex's `journal.lck` (exclusive, blocking).

    The lock is an open-file-description lock (`recordlock`): it excludes git-annex's POSIX lock
    and other processes, and many threads of one gateway may each hold a different repository's
    lock without the kernel reporting a false deadlock. Threads locking the same file serialise
    on an RLock first, so the holder can re-enter; the descriptor stays open until the outermost
    holder leaves.
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
            lock_exclusive(fd)
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
            if not private and not self._dirty():
                # The journal starts afresh from this branch commit: remember it, so a commit
                # can tell which files the branch changed under the journal (see `commit`).
                self._set_base(view.head)
            target = (self.private_dir if private else self.dir) / journal_name(path)
            atomic_write(target, new, self.tmpdir)
            return True

    # -- the branch commit the journal was written against ------------------------------------
    @property
    def _base_file(self) -> Path:
        return self.repo.annexdir / "annextui" / "journal-base"

    def _dirty(self) -> bool:
        """Whether the public journal holds changes not yet committed."""
        try:
            with os.scandir(self.dir) as it:
                return any(True for _ in it)
        except OSError:
            return False

    def _base(self) -> bytes | None:
        """The branch commit the journal's files were read from, when known."""
        try:
            sha = self._base_file.read_bytes().strip()
        except OSError:
            return None
        return sha if sha in self.repo.git.object_store else None

    def _set_base(self, sha: bytes | None) -> None:
        if sha is None:
            with contextlib.suppress(FileNotFoundError):
                self._base_file.unlink()
            return
        atomic_write(self._base_file, sha + b"\n", self.tmpdir)

    # -- committing --------------------------------------------------------------------------
    def commit(self, message: str = "update") -> bytes | None:
        """Commit the public journal into the branch. Returns the new sha, or None if clean.

        The branch may have moved since the journal's files were read from it: a client's
        `git push` of `git-annex` straight into this repository, or another writer. A journal
        file then holds its own change on top of stale content, and writing it over the branch
        would drop the lines that arrived meanwhile. As git-annex's `commitIndex` union-merges a
        moved branch into its index before committing, each journal file whose branch content
        changed since the journal's base commit is union-merged with the branch's version (and
        only those: a file the branch did not touch keeps git-annex's compacted form). A push
        racing this very commit is caught by the ref's compare-and-swap and merged the same way.
        """
        with journal_lock(self.repo):
            files = (
                sorted(p for p in self.dir.iterdir() if p.is_file()) if self.dir.is_dir() else []
            )
            if not files:
                return None
            journal = {branch_path(f.name): f.read_bytes() for f in files}
            base = self._base()
            for _ in _race_retries("committing"):
                parent = self.ensure_branch()
                sha = self._commit_journal(journal, base, parent, message)
                if self._move_branch(parent, sha):
                    break
            for f in files:
                with contextlib.suppress(OSError):
                    f.unlink()
            self._set_base(sha)
            return sha

    def _move_branch(self, old: bytes, new: bytes) -> bool:
        """Compare-and-swap the branch ref; False when it moved or a push holds it locked."""
        from dulwich.file import FileLocked

        try:
            return bool(self.repo.git.refs.set_if_equals(BRANCH_REF, old, new))
        except FileLocked:  # git's receive-pack is updating it right now
            return False

    def _commit_journal(
        self, journal: dict[str, bytes], base: bytes | None, parent: bytes, message: str
    ) -> bytes:
        """A commit of `journal` on top of `parent`, keeping what `parent` gained since `base`."""
        store = self.repo.git.object_store
        parent_commit = self.repo.git[parent]
        assert isinstance(parent_commit, Commit)
        moved = base != parent
        if moved:
            view = BranchView(self.repo, include_unmerged=False)
        updates: dict[str, bytes] = {}
        for path, data in journal.items():
            if moved:
                theirs = view.blob_sha(parent, path)
                if theirs is not None and (base is None or view.blob_sha(base, path) != theirs):
                    data = union_merge_lines(data, view.blob(theirs))
            blob = Blob.from_string(data)
            store.add_object(blob)
            updates[path] = blob.id
        tree_sha = update_tree(self.repo, parent_commit.tree, updates)
        return self._commit(tree_sha, [parent], message)

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
            for _ in _race_retries("merging"):
                head = self.ensure_branch()
                view = BranchView(self.repo)
                todo = view.unmerged if refs is None else refs
                if not todo:
                    return None
                if len(todo) == 1 and not self._dirty() and view.is_ancestor(head, todo[0].sha):
                    sha = todo[0].sha  # a fast-forward
                else:
                    sha = self._merge_commit(head, todo)
                if self._move_branch(head, sha):
                    return sha
            raise AssertionError("unreachable: _race_retries raises when it gives up")

    def _merge_commit(self, head: bytes, todo: list[AnnexRef]) -> bytes:
        head_commit = self.repo.git[head]
        assert isinstance(head_commit, Commit)
        tree = head_commit.tree
        for ref in todo:
            other = self.repo.git[ref.sha]
            assert isinstance(other, Commit)
            tree = union_merge_trees(self.repo, tree, other.tree)
        message = "merging " + " ".join(r.short for r in todo) + " into git-annex"
        return self._commit(tree, [head, *(r.sha for r in todo)], message)


def _race_retries(doing: str) -> Iterator[int]:
    """Tries at moving the branch: the first at once, then after a short random pause each
    (a push landed between our read of the tip and our update), until `_RACE_PATIENCE` runs out."""
    import random

    deadline = time.monotonic() + _RACE_PATIENCE
    attempt = 0
    while True:
        yield attempt
        attempt += 1
        if time.monotonic() > deadline:
            raise JournalError(f"refs/heads/git-annex kept moving while {doing}; try again")
        time.sleep(random.uniform(0, _RACE_PAUSE))


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
