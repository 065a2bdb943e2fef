"""What a server can leave behind in repositories: held locks, open temp files, transfer records.

A killed client legitimately leaves a partial body in the receiving repository's `annex/tmp/`
(git-annex resumes from it) and may leave a transfer information file whose lock nobody holds
(git-annex treats it as stale). What must not outlive the clients is anything still *held*: a
lock on a file of the repositories (read from /proc/locks, matched by device and inode) or a
temp file some process still has open.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Held:
    path: Path
    holder: int  # PID (for OFD locks: the PID that took it, or -1)
    what: str  # "lock" or "open"

    def __str__(self) -> str:
        return f"{self.what} {self.path} held by {' <- '.join(_lineage(self.holder))}"


def _lineage(pid: int) -> list[str]:
    """`pid`'s command line and its ancestors', for saying who holds something."""
    from tests.support import procs

    by_pid = {p.pid: p for p in procs.processes()}
    out: list[str] = []
    while pid in by_pid and len(out) < 6:
        info = by_pid[pid]
        out.append(f"{pid} {info.cmdline[:160]}")
        pid = info.ppid
    return out or [f"{pid} (gone)"]


def _files(roots: Iterable[Path]) -> Iterator[Path]:
    for root in roots:
        for dirpath, _dirs, names in os.walk(root):
            for name in names:
                yield Path(dirpath) / name


def _annex_dir(repo: Path) -> Path:
    """`annex/` of a bare repository or `.git/annex/` of a non-bare one."""
    dotgit = repo / ".git"
    return dotgit / "annex" if dotgit.is_dir() else repo / "annex"


def _proc_locks() -> Iterator[tuple[int, tuple[int, int], bool]]:
    """Each lock of /proc/locks: holder (or waiter) PID, (device, inode), and whether it is a
    blocked waiter rather than a holder."""
    with open("/proc/locks") as f:
        for line in f:
            # "1: POSIX  ADVISORY  WRITE 1234 08:01:5678 0 EOF" (blocked waiters carry "->")
            fields = line.replace("->", "").split()
            if len(fields) < 6:
                continue
            pid, where = fields[4], fields[5]
            try:
                major, minor, inode = where.split(":")
                dev = os.makedev(int(major, 16), int(minor, 16))
                yield int(pid), (dev, int(inode)), "->" in line
            except ValueError:
                continue


def held_locks(repos: Iterable[Path]) -> list[Held]:
    """Locks (flock, POSIX or OFD) held now on any file of these repositories."""
    by_inode: dict[tuple[int, int], Path] = {}
    for path in _files(repos):
        try:
            st = path.lstat()
        except OSError:
            continue
        by_inode[(st.st_dev, st.st_ino)] = path
    return [
        Held(by_inode[key], pid, "lock") for pid, key, _waiting in _proc_locks() if key in by_inode
    ]


def lock_waiters(path: Path) -> list[int]:
    """PIDs blocked waiting for a lock on `path` (a git-annex waiting for `journal.lck`)."""
    st = path.stat()
    return sorted(
        pid for pid, key, waiting in _proc_locks() if waiting and key == (st.st_dev, st.st_ino)
    )


def temp_files(repo: Path) -> list[Path]:
    """Files in the repository's `annex/tmp/` (partial bodies, kept for resume)."""
    tmp = _annex_dir(repo) / "tmp"
    return sorted(_files([tmp])) if tmp.is_dir() else []


def transfer_records(repo: Path) -> list[Path]:
    """Transfer information files outside `failed/` (each names a transfer in progress)."""
    base = _annex_dir(repo) / "transfer"
    return [
        p
        for direction in ("upload", "download")
        for p in sorted(_files([base / direction]))
        if not p.name.endswith(".lck")
    ]


def open_below(pids: Iterable[int], roots: Iterable[Path]) -> list[Held]:
    """Files below `roots` that these processes hold open."""
    prefixes = [str(r).rstrip("/") + "/" for r in roots]
    out = []
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if any(target.startswith(p) for p in prefixes):
                out.append(Held(Path(target), pid, "open"))
    return out
