"""The git-annex branch as git-annex itself sees it.

content(path) = public journal file if present, else the `git-annex` branch blob; then the
private journal appended; then the blob of every *unmerged* `*/git-annex` ref appended
(branch-formats.md §5, §6.2). Parsers accept concatenated logs, so callers just parse the result.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from annextui.backend import refstamp
from annextui.backend.journalpath import journal_name
from annextui.backend.repo import Repository
from annextui.values import Value

if TYPE_CHECKING:
    from dulwich.objects import Tree
    from dulwich.repo import Repo

BRANCH_REF = b"refs/heads/git-annex"
_K = TypeVar("_K")
_V = TypeVar("_V")


class AnnexRef(Value):
    name: bytes
    sha: bytes

    @property
    def short(self) -> str:
        n = self.name.decode()
        for prefix in ("refs/remotes/", "refs/heads/"):
            if n.startswith(prefix):
                return n[len(prefix) :]
        return n


class BranchView:
    """Read-only merged view of the git-annex branch, journal and unmerged remote branches."""

    def __init__(self, repo: Repository, *, include_unmerged: bool = True) -> None:
        self.repo = repo
        self.journal_dir = repo.annexdir / "journal"
        self.private_dir = repo.annexdir / "journal-private"
        # The same directories as strings: a lookup probes both per path (os-level, no pathlib).
        self._journal_prefix = os.path.join(self.journal_dir, "")
        self._private_prefix = os.path.join(self.private_dir, "")
        common = _common_dir(repo.gitdir)
        self._refs_here = common == str(repo.gitdir)  # not a linked worktree's
        self._branch_files = (
            os.path.join(common, BRANCH_REF.decode()),
            os.path.join(common, "packed-refs"),
        )
        self._head_stamp = self._branch_stamp()  # before the read: a later move is seen
        self.head = self._ref_sha(BRANCH_REF)
        self._trees: dict[bytes, Tree] = {}
        # Another way to read COMMIT:PATH (e.g. a long-lived `git cat-file --batch`,
        # catfile.py) for a caller that reads many; None: dulwich.
        self.blob_reader: Callable[[bytes, str], bytes | None] | None = None
        # What `follow` compares to tell whether the unmerged refs must be listed again: the
        # paths the last listing read (None: no way to tell, list again), when it started,
        # and their stamp (taken at the first `follow`, then kept while it holds).
        self._watched: list[str] | None = None
        self._listed_at = refstamp.listing_started()
        self._refs_stamp: refstamp.Stamp | None = None
        self._include_unmerged = include_unmerged
        self.unmerged = self._unmerged_refs() if include_unmerged else []

    @property
    def git(self) -> Repo:
        """The dulwich repository: objects are read through it unless `blob_reader` is set
        (then dulwich is never imported for a lookup)."""
        return self.repo.git

    # -- refs --------------------------------------------------------------------------------
    def follow_branch(self) -> None:
        """Read the branch from where it is now: a long-lived view (a gateway's session) sees
        what another process committed meanwhile (its journal files are gone by then).

        The ref is read again only when its file or packed-refs changed: git, git-annex and
        dulwich all move a ref by renaming a new file into place, so every move gives the
        file a new inode (and ctime), whatever the clock's granularity. Without either file
        (a reftable repository, no branch yet) there is nothing to compare: always read."""
        stamp = self._branch_stamp()
        if stamp is not None and stamp == self._head_stamp:
            return
        self.head = self._ref_sha(BRANCH_REF)
        self._head_stamp = stamp

    def follow(self) -> None:
        """`follow_branch`, and the unmerged `*/git-annex` refs listed again when any ref
        directory, ref, packed-refs or merged-refs list changed since the last listing
        (refstamp.py): a view kept between a long-running server's requests sees a fetch or a
        new remote's branch at its next request, for a few `stat`s when nothing changed."""
        head = self.head
        self.follow_branch()
        if self.head != head:
            self._trees.clear()  # kept for the life of the view: only the commits read now
        if not self._include_unmerged:
            return
        watched = self._watched
        if self.head == head and watched is not None:
            if self._refs_stamp is None:
                self._refs_stamp = refstamp.stamp(watched, self._listed_at)
                if self._refs_stamp is not None:
                    return  # nothing changed since the listing began
            elif refstamp.stamp(watched) == self._refs_stamp:
                return
        self._listed_at = refstamp.listing_started()
        self._refs_stamp = None
        self.unmerged = self._unmerged_refs()

    def _branch_stamp(self) -> tuple[tuple[int, int, int, int] | None, ...] | None:
        stamps = tuple(_file_stamp(f) for f in self._branch_files)
        return None if stamps == (None, None) else stamps

    def _ref_sha(self, name: bytes) -> bytes | None:
        gitdir = self.repo.gitdir
        loose = _loose_ref(gitdir, name)
        if loose is not None:
            return loose
        if self._refs_here and not os.path.lexists(os.path.join(os.fsencode(gitdir), name)):
            return _packed_ref(gitdir, name)  # no loose file: packed-refs decides, as for git
        try:
            return bytes(self.git.refs[name])
        except KeyError:
            return None

    def annex_refs(self) -> list[AnnexRef]:
        """Every ref ending in `/git-annex` except our own branch, deduplicated by sha."""
        seen: set[bytes] = set()
        out = []
        gitdir = self.repo.gitdir
        dirs: list[str] = []
        names = _annex_ref_names(gitdir, dirs)
        if names is None:
            names = [n for n in self.git.refs.allkeys() if n.endswith(b"/git-annex")]
            self._watched = None
        else:
            annexdir = self.repo.annexdir
            self._watched = [
                *dirs,
                os.path.join(gitdir, "packed-refs"),
                *(os.path.join(annexdir, f) for f in _MERGED_LISTS),
                *(
                    os.path.join(os.fsencode(gitdir), n).decode("utf-8", "surrogateescape")
                    for n in names
                ),
            ]
        for name in sorted(names):
            if not name.endswith(b"/git-annex") or name == BRANCH_REF:
                continue
            sha = self._ref_sha(name)
            if sha is None or sha in seen:
                continue
            seen.add(sha)
            out.append(AnnexRef(name, sha))
        return out

    def _merged_shas(self) -> set[bytes]:
        out: set[bytes] = set()
        for fname in _MERGED_LISTS:
            try:
                data = (self.repo.annexdir / fname).read_bytes()
            except FileNotFoundError:
                continue
            if data:
                for line in data.splitlines():
                    sha = line.split(b"\t", 1)[0].strip()
                    if sha:
                        out.add(sha)
        return out

    def _unmerged_refs(self) -> list[AnnexRef]:
        skip = self._merged_shas()
        refs = [r for r in self.annex_refs() if r.sha not in skip and r.sha != self.head]
        if not refs or self.head is None:
            return refs
        return [r for r in refs if not self.is_ancestor(r.sha, self.head)]

    def is_ancestor(self, sha: bytes, of: bytes) -> bool:
        """Whether commit `sha` is reachable from `of` (commits never change: the answer is
        remembered for the process)."""
        if sha == of:
            return True
        known = _ancestry.get((sha, of))
        if known is None:
            known = self._walk_ancestry(sha, of)
            _ancestry.put((sha, of), known)
        return known

    def _walk_ancestry(self, sha: bytes, of: bytes) -> bool:
        from dulwich.objects import Commit

        seen: set[bytes] = set()
        stack = [of]
        while stack:
            c = stack.pop()
            if c in seen:
                continue
            seen.add(c)
            if c == sha:
                return True
            obj = self.git[c]
            assert isinstance(obj, Commit)
            stack.extend(obj.parents)
        return False

    # -- trees -------------------------------------------------------------------------------
    def _root(self, commit_sha: bytes | None) -> Tree | None:
        from dulwich.objects import Commit

        if commit_sha is None:
            return None
        tree = self._trees.get(commit_sha)
        if tree is None:
            tree_sha = _roots.get(commit_sha)
            if tree_sha is None:
                commit = self.git[commit_sha]
                assert isinstance(commit, Commit)
                tree_sha = commit.tree
                _roots.put(commit_sha, tree_sha)
            obj = self._tree(tree_sha)
            assert obj is not None
            tree = self._trees[commit_sha] = obj
        return tree

    def _tree(self, sha: bytes) -> Tree | None:
        """A tree object, parsed once per process (objects never change; a long-running
        server looks keys up in the same few trees request after request)."""
        from dulwich.objects import Tree

        tree = _parsed_trees.get(sha)
        if tree is None:
            obj = self.git[sha]
            if not isinstance(obj, Tree):
                return None
            tree = obj
            _parsed_trees.put(sha, tree)
        return tree

    def blob_sha(self, commit_sha: bytes | None, path: str) -> bytes | None:
        """The sha of the blob at `path` in a branch commit, or None where there is none."""
        tree = self._root(commit_sha)
        if tree is None:
            return None
        parts = path.encode().split(b"/")
        for i, part in enumerate(parts):
            try:
                mode, sha = tree[part]
            except KeyError:
                return None
            if i == len(parts) - 1:
                return None if mode & 0o40000 else bytes(sha)
            if not mode & 0o40000:
                return None
            sub = self._tree(sha)
            if sub is None:
                return None
            tree = sub
        return None

    def blob_at(self, commit_sha: bytes | None, path: str) -> bytes | None:
        if self.blob_reader is not None and commit_sha is not None:
            return self.blob_reader(commit_sha, path)
        if commit_sha is None:
            return None
        # A commit's content never changes: a server asked about one key several times
        # (checkpresent, then GET) walks the branch for it once.
        hit = _blobs_at.get((commit_sha, path))
        if hit is not None:
            return hit[0]
        sha = self.blob_sha(commit_sha, path)
        data: bytes | None = None
        if sha is not None:
            from dulwich.objects import Blob

            obj = self.git[sha]
            data = obj.as_raw_string() if isinstance(obj, Blob) else None
        if data is None or len(data) <= _BLOB_CACHED_MAX:
            _blobs_at.put((commit_sha, path), (data,))
        return data

    # -- content -----------------------------------------------------------------------------
    def journal_content(self, path: str) -> bytes | None:
        return _read_if_there(self._journal_prefix + journal_name(path))

    def staged(self, path: str) -> bytes:
        """Journal or branch content: what a change to `path` starts from."""
        j = self.journal_content(path)
        if j is not None:
            return j
        return self.blob_at(self.head, path) or b""

    def read(self, path: str) -> bytes:
        """What git-annex reads for `path`: staged + private journal + unmerged refs."""
        parts = [self.staged(path)]
        private = _read_if_there(self._private_prefix + journal_name(path))
        if private is not None:
            parts.append(private)
        for ref in self.unmerged:
            blob = self.blob_at(ref.sha, path)
            if blob:
                parts.append(blob)
        return b"".join(_terminated(p) for p in parts if p)

    def journal_files(self) -> list[Path]:
        if not self.journal_dir.is_dir():
            return []
        return sorted(p for p in self.journal_dir.iterdir() if p.is_file())

    # -- per-key logs ------------------------------------------------------------------------
    def iter_tree_files(self, commit_sha: bytes | None = None) -> Iterator[tuple[str, bytes]]:
        """(path, blob sha) for every file in a git-annex branch commit (default: our head)."""
        from dulwich.objects import Tree

        root = self._root(commit_sha if commit_sha is not None else self.head)
        if root is None:
            return
        stack: list[tuple[str, Tree]] = [("", root)]
        while stack:
            prefix, tree = stack.pop()
            for entry in tree.iteritems():
                name = entry.path.decode("utf-8", "surrogateescape")
                if entry.mode & 0o40000:
                    sub = self.git[entry.sha]
                    if isinstance(sub, Tree):
                        stack.append((prefix + name + "/", sub))
                else:
                    yield prefix + name, entry.sha

    def blob(self, sha: bytes) -> bytes:
        from dulwich.objects import Blob

        obj = self.git[sha]
        return obj.as_raw_string() if isinstance(obj, Blob) else b""


def _file_stamp(path: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _read_if_there(path: str) -> bytes | None:
    """The file's bytes, or None when there is no such file (the common case of a journal
    probe, so no pathlib on the way)."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


class _Lru(Generic[_K, _V]):
    """A small thread-safe least-recently-used map (for immutable git objects)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[_K, _V] = OrderedDict()
        self._mutex = threading.Lock()

    def get(self, key: _K) -> _V | None:
        with self._mutex:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: _K, value: _V) -> None:
        with self._mutex:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


# Bounded by count: a git-annex branch tree has at most 1024 entries (hash directories), so
# 128 trees stay within a few tens of MiB even in the worst case.
_parsed_trees: _Lru[bytes, Tree] = _Lru(128)
# (commit, path) -> the blob there (None: no file); small blobs only (location logs)
_blobs_at: _Lru[tuple[bytes, str], tuple[bytes | None]] = _Lru(4096)
_BLOB_CACHED_MAX = 16 * 1024
_roots: _Lru[bytes, bytes] = _Lru(256)
_ancestry: _Lru[tuple[bytes, bytes], bool] = _Lru(1024)


_HEX = frozenset(b"0123456789abcdef")
_MERGED_LISTS = ("mergedrefs", "ignoredrefs")  # annex/: refs git-annex merged or ignores


def _loose_ref(gitdir: Path, name: bytes) -> bytes | None:
    """The sha a loose ref file holds, read directly (dulwich's lookup builds several paths
    per ref; a server reads the branch ref at every request). None for anything else (packed,
    symbolic, missing, unreadable): the caller asks dulwich."""
    try:
        with open(os.path.join(os.fsencode(gitdir), name), "rb") as f:
            data = f.read(128).strip()
    except OSError:
        return None
    if len(data) == 40 and _HEX.issuperset(data):
        return data
    return None


def _packed_ref(gitdir: Path, name: bytes) -> bytes | None:
    """The sha `packed-refs` holds for `name` (None: not there)."""
    try:
        with open(os.path.join(gitdir, "packed-refs"), "rb") as f:
            packed = f.read()
    except OSError:
        return None
    for line in packed.splitlines():
        sha, _, ref = line.partition(b" ")
        if ref == name and len(sha) == 40 and _HEX.issuperset(sha):
            return sha
    return None


def _common_dir(gitdir: Path) -> str:
    """Where the repository's refs live: `gitdir`, or a linked worktree's `commondir`."""
    try:
        with open(os.path.join(gitdir, "commondir"), encoding="utf-8") as f:
            common = f.read().strip()
    except OSError:
        return str(gitdir)
    return os.path.normpath(os.path.join(gitdir, common))


def _annex_ref_names(gitdir: Path, dirs: list[str] | None = None) -> list[bytes] | None:
    """Names of the refs ending in `/git-annex`, read from `refs/` and `packed-refs` directly
    (dulwich's `allkeys` parses every ref's path; this runs per request in a server); the
    directories read are added to `dirs`. None for a repository whose refs live elsewhere (a
    linked worktree's `commondir`): ask dulwich."""
    if (gitdir / "commondir").exists():
        return None
    names: set[bytes] = set()
    stack = [gitdir / "refs"]
    while stack:
        d = stack.pop()
        if dirs is not None:
            dirs.append(str(d))
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                stack.append(Path(e.path))
            elif e.name == "git-annex":
                names.add(os.fsencode(os.path.relpath(e.path, gitdir)))
    try:
        packed = (gitdir / "packed-refs").read_bytes()
    except OSError:
        packed = b""
    for line in packed.splitlines():
        if line[:1] in (b"#", b"^"):
            continue
        _, _, name = line.partition(b" ")
        if name.endswith(b"/git-annex"):
            names.add(name.strip())
    return sorted(names)


def _terminated(data: bytes) -> bytes:
    return data if data.endswith(b"\n") else data + b"\n"


def is_location_log(path: str) -> bool:
    """Files at the hash-directory depth ending in `.log` are location logs."""
    parts = path.split("/")
    return (
        len(parts) in (2, 3) and parts[-1].endswith(".log") and all(len(p) == 3 for p in parts[:-1])
    )
