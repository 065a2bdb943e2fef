"""One long-lived `git cat-file --batch` for reading many branch blobs one at a time.

Reading `COMMIT:PATH` through dulwich walks three git objects in Python (each a file open,
a zlib inflate and, for a loose object, a rescan of the pack directory first): ~0.4 ms per location
log, and importing dulwich first costs a one-shot shell ~40 ms. git resolves the same path in C
in a fraction of that, so a process that reads logs for many requests (a gateway session: its
state at the start, then a log per GET) asks one `git cat-file --batch` instead, as git-annex
itself does (`Git/CatFile.hs`). The process is started by the first read, and any failure of it
is reported as `CatFileError` so the caller can fall back to dulwich (`read_through`).

A reader belongs to a session and is closed with it (the gateway's records, a `LocalPeer`'s
look-ups: proxycore/branchreads.py), not to a repository: in `annextui p2phttp` a repository
outlives every request, and a reader kept with it held a process and two pipes for good.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from typing import TYPE_CHECKING

from annextui.backend.repo import Repository

if TYPE_CHECKING:
    from annextui.backend.branch import BranchView


class CatFileError(Exception):
    """The batch process failed or answered something unexpected."""


class CatFile:
    """Blob lookups `COMMIT:PATH` through one `git cat-file --batch` process, started by the
    first lookup; lookups from several threads take turns."""

    def __init__(self, repo: Repository, *, by_subtree: bool = False) -> None:
        """`by_subtree`: for a reader of many paths below few commits (a node's look-ups
        during a drain). git resolves `COMMIT:aaa/bbb/KEY.log` from the commit's root tree at
        every request, inflating it whole (a branch of a few thousand keys: ~50 KB, 300-480 us
        of git's CPU per look, against dulwich's ~300 us with its trees cached); the root's
        subdirectories are read once per commit instead, and each path asked below its own."""
        self._argv = ["git", f"--git-dir={repo.gitdir}", "cat-file", "--batch"]
        self._proc: subprocess.Popen[bytes] | None = None
        self._closed = False
        self._turn = threading.Lock()
        self._by_subtree = by_subtree
        self._root_of: bytes | None = None  # the commit whose root `_subtrees` lists
        self._subtrees: dict[str, bytes] = {}

    def _process(self) -> subprocess.Popen[bytes]:
        proc = self._proc
        if proc is None:
            if self._closed:
                raise CatFileError("git cat-file is closed")
            try:
                proc = self._proc = subprocess.Popen(
                    self._argv,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                )
            except OSError as exc:
                self._closed = True
                raise CatFileError(f"git cat-file: {exc}") from exc
        return proc

    def blob_at(self, commit: bytes, path: str) -> bytes | None:
        """The blob at `path` in `commit`, or None where there is none (or not a blob)."""
        if "\n" in path:
            raise CatFileError("a path with a newline cannot go through --batch")
        with self._turn:
            if self._by_subtree:
                top, slash, rest = path.partition("/")
                if slash and rest:
                    tree = self._subtree(commit, top)
                    return None if tree is None else self._blob_at(tree, rest)
            return self._blob_at(commit, path)

    def _subtree(self, commit: bytes, name: str) -> bytes | None:
        """The tree `name` of the commit's root (None: no such directory)."""
        if self._root_of != commit:
            root = self._object(commit + b"^{tree}", b"tree") or b""
            try:  # the commit's hex name tells the object format's hash size (SHA-1, SHA-256)
                self._subtrees = _subdirectories(root, len(commit) // 2)
            except ValueError as exc:
                raise CatFileError(f"git cat-file: a tree that does not parse: {exc}") from exc
            self._root_of = commit
        return self._subtrees.get(name)

    def _blob_at(self, commit: bytes, path: str) -> bytes | None:
        return self._object(commit + b":" + path.encode("utf-8", "surrogateescape"), b"blob")

    def _object(self, name: bytes, kind: bytes) -> bytes | None:
        """The content of the object `name` if it is of `kind` (None: missing or another)."""
        proc = self._process()
        if proc.stdin is None or proc.stdout is None:
            raise CatFileError("git cat-file is closed")
        try:
            proc.stdin.write(name + b"\n")
            proc.stdin.flush()
            header = proc.stdout.readline()
        except OSError as exc:
            self._close()
            raise CatFileError(f"git cat-file: {exc}") from exc
        if header.endswith(b" missing\n"):
            return None
        fields = header.split()
        if len(fields) != 3 or not fields[2].isdigit():
            self._close()
            raise CatFileError(f"git cat-file answered {header!r}")
        size = int(fields[2])
        body = proc.stdout.read(size + 1)  # the content and its terminating newline
        if len(body) != size + 1:
            self._close()
            raise CatFileError("git cat-file ended mid-object")
        return body[:size] if fields[1] == kind else None

    def close(self) -> None:
        with self._turn:
            self._close()

    def _close(self) -> None:
        proc, self._proc = self._proc, None
        self._closed = True
        if proc is None:
            return
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                # closing flushes what a failed write left buffered: into a pipe whose reader
                # is gone, that is the same broken pipe again, which must not escape as itself
                with contextlib.suppress(OSError):
                    pipe.close()
        proc.wait()


def _subdirectories(tree: bytes, hash_size: int) -> dict[str, bytes]:
    """The subdirectories of a raw git tree (`MODE NAME\\0` and the binary hash per entry):
    name -> hex name of the tree. ValueError: not a tree."""
    out: dict[str, bytes] = {}
    pos, end = 0, len(tree)
    while pos < end:
        space = tree.index(b" ", pos)
        nul = tree.index(b"\0", space)
        after = nul + 1 + hash_size
        if after > end:
            raise ValueError("an entry cut short")
        if tree[pos:space] == b"40000":
            name = tree[space + 1 : nul].decode("utf-8", "surrogateescape")
            out[name] = tree[nul + 1 : after].hex().encode()
        pos = after
    return out


def read_through(view: BranchView, catfile: CatFile) -> None:
    """Read `view`'s branch blobs through `catfile`; if the process fails, through dulwich
    from then on (the same content, only slower)."""

    def read(commit: bytes, path: str) -> bytes | None:
        try:
            return catfile.blob_at(commit, path)
        except CatFileError:
            view.blob_reader = None
            return view.blob_at(commit, path)

    view.blob_reader = read
