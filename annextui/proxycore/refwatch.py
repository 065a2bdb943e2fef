"""Watching `GITDIR/refs` for `notifychanges`, as git-annex's Annex/ChangedRefs.hs does.

Linux: inotify on `refs/` and every directory below it (new directories are added as they
appear), so a ref written by git (a `.lock` file renamed into place) is reported at once.
Elsewhere, or when inotify is unavailable (no watches left), the directory tree is polled.

Either way a watcher yields batches of new ref values (SHAs): first every existing ref (the
initial scan), then what changed. `.lock` files are never reported.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import sys
from collections.abc import Generator

# <sys/inotify.h>
IN_MODIFY = 0x00000002
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

_WATCH_MASK = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of NUL-padded name


def read_ref(path: str) -> str | None:
    """The SHA a loose ref file holds (None for symbolic refs, lock files, unreadable files)."""
    if path.endswith(".lock"):
        return None
    try:
        with open(path, "rb") as fh:
            line = fh.read(200).split(b"\n", 1)[0].strip()
    except OSError:
        return None
    text = line.decode("ascii", "replace")
    if len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text):
        return text
    return None


def scan(directory: str) -> list[str]:
    """Every ref value below `directory` (the initial burst)."""
    out = []
    for dirpath, _dirs, files in os.walk(directory):
        for f in sorted(files):
            sha = read_ref(os.path.join(dirpath, f))
            if sha:
                out.append(sha)
    return out


class InotifyUnavailable(OSError):
    pass


class RefWatcher:
    """What both watchers share: the root, and the refs found when watching began."""

    root: str
    _pending: list[str]

    def initial(self) -> list[str]:
        """Every ref there was when watching began (once)."""
        out, self._pending = self._pending, []
        return out

    def read_changes(self) -> list[str]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class InotifyRefWatcher(RefWatcher):
    """inotify watches on a directory tree; `fileno()` becomes readable when refs change."""

    def __init__(self, root: str) -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            self._init1 = libc.inotify_init1
            self._add_watch = libc.inotify_add_watch
        except (OSError, AttributeError) as exc:
            raise InotifyUnavailable(str(exc)) from exc
        self._add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        fd = self._init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise InotifyUnavailable(os.strerror(ctypes.get_errno()))
        self._fd: int = fd
        self._dirs: dict[int, str] = {}
        self.root = root
        self._pending: list[str] = []
        try:
            self._pending = self._watch_tree(root)
        except OSError:
            os.close(fd)
            raise

    def fileno(self) -> int:
        return self._fd

    def _watch(self, directory: str) -> bool:
        """Watch `directory`; False when it is gone again before we got to it."""
        wd = self._add_watch(self._fd, os.fsencode(directory), _WATCH_MASK)
        if wd < 0:
            err = ctypes.get_errno()
            if err in (errno.ENOENT, errno.ENOTDIR):
                return False
            raise InotifyUnavailable(err, os.strerror(err))
        self._dirs[wd] = directory
        return True

    def _watch_tree(self, top: str) -> list[str]:
        """Watch `top` and every directory below it, then report what is already there (a
        ref written between a directory's creation and its watch is caught by this scan).

        Each directory is watched before it is listed: one made after the listing raises
        IN_CREATE on a watch already there. (Listing first, as os.walk does, leaves a gap: a
        directory git makes in between, `refs/remotes/NAME/` under a new `refs/remotes/`, is
        never watched, and the refs written into it later are never reported.)"""
        todo = [top]
        while todo:
            directory = todo.pop()
            if not self._watch(directory):
                continue
            try:
                with os.scandir(directory) as entries:
                    todo += [e.path for e in entries if e.is_dir(follow_symlinks=False)]
            except OSError:  # gone again, or not a directory any more: as os.walk skips it
                continue
        return scan(top)

    def read_changes(self) -> list[str]:
        """The ref values changed since the last call (reads all queued events)."""
        shas: list[str] = []
        while True:
            try:
                data = os.read(self._fd, 64 * 1024)
            except BlockingIOError:
                return shas
            if not data:
                return shas
            pos = 0
            while pos + _EVENT.size <= len(data):
                wd, mask, _cookie, length = _EVENT.unpack_from(data, pos)
                pos += _EVENT.size
                name = data[pos : pos + length].rstrip(b"\0")
                pos += length
                shas.extend(self._event(wd, mask, os.fsdecode(name)))

    def _event(self, wd: int, mask: int, name: str) -> list[str]:
        if mask & IN_Q_OVERFLOW:
            return scan(self.root)  # events were lost: report everything again
        if mask & IN_IGNORED:
            self._dirs.pop(wd, None)
            return []
        directory = self._dirs.get(wd)
        if directory is None or not name:
            return []
        path = os.path.join(directory, name)
        if mask & IN_ISDIR:
            return self._watch_tree(path) if mask & (IN_CREATE | IN_MOVED_TO) else []
        if mask & IN_CREATE:
            return []  # an empty new file; its IN_CLOSE_WRITE follows
        sha = read_ref(path)
        return [sha] if sha else []

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class PollingRefWatcher(RefWatcher):
    """The fallback: compare (inode, size, mtime) of every ref file at each poll."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._seen: dict[str, tuple[int, int, int]] = {}
        self._pending = self.read_changes()

    def read_changes(self) -> list[str]:
        changed: list[str] = []
        current: dict[str, tuple[int, int, int]] = {}
        for dirpath, _dirs, files in os.walk(self.root):
            for f in sorted(files):
                p = os.path.join(dirpath, f)
                try:
                    st = os.stat(p)
                except OSError:
                    continue
                sig = (st.st_ino, st.st_size, st.st_mtime_ns)
                current[p] = sig
                if self._seen.get(p) != sig:
                    sha = read_ref(p)
                    if sha:
                        changed.append(sha)
        self._seen = current
        return changed


def watch_refs(root: str, *, use_inotify: bool = True) -> RefWatcher:
    if use_inotify and sys.platform.startswith("linux"):
        try:
            return InotifyRefWatcher(root)
        except InotifyUnavailable:
            pass
    return PollingRefWatcher(root)


def changes(
    watcher: RefWatcher, hangup_fd: int, *, poll_interval: float = 0.5
) -> Generator[list[str], None, None]:
    """Batches of changed ref values, the initial scan first, until `hangup_fd` reaches EOF."""
    import select

    first = watcher.initial()
    if first:
        yield first
    kernel_fd = watcher.fileno() if isinstance(watcher, InotifyRefWatcher) else None
    fds = [hangup_fd] if kernel_fd is None else [hangup_fd, kernel_fd]
    # with inotify there is nothing to do until the kernel says so
    timeout = poll_interval if kernel_fd is None else None
    while True:
        ready, _, _ = select.select(fds, [], [], timeout)
        if hangup_fd in ready:
            try:
                data = os.read(hangup_fd, 65536)
            except OSError:
                return
            if not data:
                return
        if kernel_fd is None or kernel_fd in ready:
            try:
                batch = watcher.read_changes()
            except InotifyUnavailable:
                # Out of inotify watches for a new directory: poll from now on, starting with
                # everything there is (as after a queue overflow).
                watcher.close()
                watcher = PollingRefWatcher(watcher.root)
                kernel_fd, fds, timeout = None, [hangup_fd], poll_interval
                batch = watcher.initial()
            if batch:
                yield batch
