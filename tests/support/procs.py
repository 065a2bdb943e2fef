"""Finding and ending processes that a test started, by PID, via /proc."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    argv: tuple[str, ...]

    @property
    def exe_name(self) -> str:
        return os.path.basename(self.argv[0]) if self.argv else ""

    @property
    def cmdline(self) -> str:
        return " ".join(self.argv)


def _read(pid: int) -> ProcInfo | None:
    base = _PROC / str(pid)
    try:
        raw = (base / "cmdline").read_bytes()
        stat = (base / "stat").read_text()
    except OSError:
        return None
    argv = tuple(a.decode("utf-8", "surrogateescape") for a in raw.split(b"\0") if a)
    # stat: "pid (comm) state ppid ..." -- comm may contain spaces/parentheses
    try:
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
    except (ValueError, IndexError):
        ppid = 0
    return ProcInfo(pid, ppid, argv)


def processes() -> list[ProcInfo]:
    """Every process visible in /proc (empty where /proc is missing)."""
    out: list[ProcInfo] = []
    try:
        entries = os.listdir(_PROC)
    except OSError:
        return out
    for name in entries:
        if name.isdigit():
            info = _read(int(name))
            if info is not None:
                out.append(info)
    return out


def find(predicate: Callable[[ProcInfo], bool]) -> list[ProcInfo]:
    me = os.getpid()
    return [p for p in processes() if p.pid != me and predicate(p)]


def mentioning(text: str, exe_names: Iterable[str] | None = None) -> list[ProcInfo]:
    """Processes whose command line contains `text` (optionally only these program names)."""
    names = set(exe_names) if exe_names is not None else None
    return find(lambda p: text in p.cmdline and (names is None or p.exe_name in names))


def serving(path: str) -> list[ProcInfo]:
    """The p2pstdio sessions whose command line names `path`: the shell serving it, and what
    runs it (sshd's `sh -c`)."""
    return [p for p in mentioning(path) if "p2pstdio" in p.cmdline]


def wait_none_serving(path: str, timeout: float) -> bool:
    """Wait, at most `timeout` seconds, until no session serves `path` (whatever a shell
    writes at its end is then in place); whether none is left."""
    deadline = time.monotonic() + timeout
    while serving(path):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def outermost(found: list[ProcInfo]) -> list[ProcInfo]:
    """`found` without the processes whose parent is in it too. Between fork and exec a child
    still shows its parent's command line, so a program that starts others (git-annex-shell
    running git) can appear twice in one look at /proc: the parent is the one that runs."""
    pids = {p.pid for p in found}
    return [p for p in found if p.ppid not in pids]


def cwd(pid: int) -> str | None:
    try:
        return os.readlink(_PROC / str(pid) / "cwd")
    except OSError:
        return None


def under(path: str, root: str) -> bool:
    root = root.rstrip("/")
    return path == root or path.startswith(root + "/")


def descendants(pid: int) -> list[ProcInfo]:
    """All processes below `pid` (children first-level first)."""
    procs = processes()
    by_parent: dict[int, list[ProcInfo]] = {}
    for p in procs:
        by_parent.setdefault(p.ppid, []).append(p)
    out: list[ProcInfo] = []
    todo = [pid]
    while todo:
        for child in by_parent.get(todo.pop(), []):
            out.append(child)
            todo.append(child.pid)
    return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie still answers kill(0); treat it as gone
    try:
        state = (_PROC / str(pid) / "stat").read_text()
        return state[state.rindex(")") + 2] != "Z"
    except (OSError, ValueError, IndexError):
        return True


def kill_pids(pids: Iterable[int], timeout: float = 3.0, sig: int = signal.SIGTERM) -> None:
    """Send `sig` (default SIGTERM) to each PID, then SIGKILL those still alive after `timeout`
    seconds. Pass sig=signal.SIGKILL for a kill the process cannot clean up after."""
    pending = [p for p in set(pids) if p != os.getpid()]
    for pid in pending:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = [p for p in pending if alive(p)]
        if pending:
            time.sleep(0.02)
    for pid in pending:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


_TCP_ESTABLISHED = "01"


def tcp_connections(pid: int, remote_port: int) -> int:
    """Established TCP connections that process `pid` holds to `remote_port` (IPv4 or IPv6):
    its socket descriptors matched by inode against the kernel's tables of its network
    namespace (/proc/PID/net/tcp, tcp6)."""
    inodes: set[str] = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(_PROC / str(pid) / "fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(_PROC / str(pid) / "fd" / fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    count = 0
    for table in ("tcp", "tcp6"):
        try:
            rows = (_PROC / str(pid) / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            port = int(fields[2].rsplit(":", 1)[1], 16)
            if port == remote_port and fields[3] == _TCP_ESTABLISHED and fields[9] in inodes:
                count += 1
    return count
