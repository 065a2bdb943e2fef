"""One long-lived `git cat-file --batch` for reading many branch blobs one at a time.

Reading `COMMIT:PATH` through dulwich walks three git objects in Python (each a file open,
a zlib inflate and, for a loose object, a rescan of the pack directory first): ~0.4 ms per location
log. git resolves the same path in C in a fraction of that, so a process that reads one log per
request for many requests (a gateway session relaying a batch of small files) asks one
`git cat-file --batch` per session instead, as git-annex itself does (`Git/CatFile.hs`). It is
started only when such a caller asks for it, and any failure of the process is reported as
`CatFileError` so the caller can fall back to dulwich.

A long-running server (`annextui p2phttp`) reads a location log or two per request, on many
threads: it installs `SharedCatFiles` (`share`), and every `BranchView` of the process then
reads branch blobs through one `git cat-file --batch` per repository, taken by one thread at
a time. Each read names the commit it wants, read from the branch ref at that moment, and git
finds objects written since it started (it rescans its packs on a miss), so a long-lived
reader never answers from an old branch; the journal is read from its files, not through it.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable

from annextui.backend.repo import Repository


class CatFileError(Exception):
    """The batch process failed or answered something unexpected."""


class CatFile:
    """Blob lookups `COMMIT:PATH` through one `git cat-file --batch` process."""

    def __init__(self, repo: Repository) -> None:
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            ["git", f"--git-dir={repo.gitdir}", "cat-file", "--batch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def blob_at(self, commit: bytes, path: str) -> bytes | None:
        """The blob at `path` in `commit`, or None where there is none (or not a blob)."""
        if "\n" in path:
            raise CatFileError("a path with a newline cannot go through --batch")
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            raise CatFileError("git cat-file is closed")
        try:
            proc.stdin.write(commit + b":" + path.encode("utf-8", "surrogateescape") + b"\n")
            proc.stdin.flush()
            header = proc.stdout.readline()
        except OSError as exc:
            self.close()
            raise CatFileError(f"git cat-file: {exc}") from exc
        if header.endswith(b" missing\n"):
            return None
        fields = header.split()
        if len(fields) != 3 or not fields[2].isdigit():
            self.close()
            raise CatFileError(f"git cat-file answered {header!r}")
        size = int(fields[2])
        body = proc.stdout.read(size + 1)  # the content and its terminating newline
        if len(body) != size + 1:
            self.close()
            raise CatFileError("git cat-file ended mid-object")
        return body[:size] if fields[1] == b"blob" else None

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()
        proc.wait()


class SharedCatFiles:
    """One `CatFile` per repository for the whole process, used by one thread at a time; one
    that fails is closed and replaced by a new one at the next read."""

    def __init__(self) -> None:
        self._files: dict[str, tuple[threading.Lock, list[CatFile | None]]] = {}
        self._mutex = threading.Lock()

    def reader(self, repo: Repository) -> Callable[[bytes, str], bytes | None]:
        """Reads `COMMIT:PATH` of `repo` (raises CatFileError when git cannot answer)."""
        key = str(repo.gitdir)
        with self._mutex:
            entry = self._files.setdefault(key, (threading.Lock(), [None]))
        lock, slot = entry

        def read(commit: bytes, path: str) -> bytes | None:
            with lock:
                cf = slot[0]
                if cf is None:
                    try:
                        cf = slot[0] = CatFile(repo)
                    except OSError as exc:
                        raise CatFileError(f"git cat-file: {exc}") from exc
                try:
                    return cf.blob_at(commit, path)
                except CatFileError:
                    slot[0] = None  # blob_at closed it; a fresh one next time
                    raise

        return read

    def close(self) -> None:
        with self._mutex:
            entries = list(self._files.values())
            self._files.clear()
        for lock, slot in entries:
            with lock:
                cf, slot[0] = slot[0], None
            if cf is not None:
                cf.close()


_shared: SharedCatFiles | None = None


def share(files: SharedCatFiles | None) -> None:
    """Install (or, with None, remove) the process's shared readers."""
    global _shared
    _shared = files


def shared_reader(repo: Repository) -> Callable[[bytes, str], bytes | None] | None:
    """The shared reader of `repo` when a server installed them, else None (dulwich)."""
    files = _shared
    return files.reader(repo) if files is not None else None
