"""Locks shared with git-annex: POSIX record locks, content locks and retention markers.

git-annex locks with `fcntl` record locks on whole files (never `flock`), non-blocking, and after
taking one compares the descriptor's inode with the path's (`checkSaneLock`), because an unlocker
may have deleted the file in between. fcntl locks belong to the process: closing *any* descriptor
of a file drops them, and a process never conflicts with itself. `LockPool` therefore keeps one
descriptor per file and arbitrates between users inside this process (threads, connections of a
gateway) the way git-annex's own `Annex.LockPool` does.

Content locks (keys-and-objects.md §5, `Annex/Content.hs`):
* keep present: shared lock on `KEYFILE.lck`, plus a retention time written to `KEYFILE.rtm`
  (guarded by `KEYFILE.rtl`) so the content stays undroppable for a while even if we die;
  unlocking converts to an exclusive lock and, only if that succeeds, deletes the marker we
  wrote and the lock file.
* remove: refuse while `KEYFILE.rtm` is in the future; exclusive lock on `KEYFILE.lck`; the
  holder deletes the lock file before releasing.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
import time
from pathlib import Path
from types import TracebackType

from annextui.backend.clock import Clock, ClockError, parse_clock
from annextui.backend.recordlock import FLOCK
from annextui.proxycore.objectstore import KeyPaths, ObjectStore

#: LOCKCONTENT keeps content undroppable this long if the server dies (p2pDefaultLockContent...).
RETENTION_SECONDS = 600

_SHARED = "shared"
_EXCLUSIVE = "exclusive"


class ContentLocked(Exception):
    """The content cannot be locked for removal (another holder, or retention not expired)."""

    def __init__(self, message: str = "content is locked") -> None:
        super().__init__(message)


class _Entry:
    """One lock file held: its descriptor, shared or exclusive, and how many holders."""

    __slots__ = ("count", "fd", "kind")

    def __init__(self, fd: int, kind: str, count: int) -> None:
        self.fd = fd
        self.kind = kind
        self.count = count


class LockPool:
    """Process-wide registry of the fcntl locks this process holds (one descriptor per file)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held: dict[str, _Entry] = {}

    def try_shared(self, path: Path, mode: int = 0o666) -> LockHandle | None:
        return self._try(path, _SHARED, mode)

    def try_exclusive(self, path: Path, mode: int = 0o666) -> LockHandle | None:
        return self._try(path, _EXCLUSIVE, mode)

    def _try(self, path: Path, kind: str, mode: int) -> LockHandle | None:
        name = os.fspath(path)
        with self._guard:
            entry = self._held.get(name)
            if entry is not None:
                if kind == _SHARED and entry.kind == _SHARED and _same_file(name, entry.fd):
                    entry.count += 1
                    return LockHandle(self, name, entry.fd, kind)
                return None
            flags = os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
            flags |= os.O_RDONLY if kind == _SHARED else os.O_RDWR
            fd = os.open(name, flags, mode)
            try:
                op = fcntl.LOCK_SH if kind == _SHARED else fcntl.LOCK_EX
                fcntl.lockf(fd, op | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EACCES, errno.EAGAIN):
                    return None
                raise
            if not _same_file(name, fd):
                # checkSaneLock: the file was deleted or replaced while we were locking it.
                os.close(fd)
                return None
            self._held[name] = _Entry(fd, kind, 1)
            return LockHandle(self, name, fd, kind)

    def _release(self, name: str) -> None:
        with self._guard:
            entry = self._held.get(name)
            if entry is None:
                return
            entry.count -= 1
            if entry.count <= 0:
                del self._held[name]
                os.close(entry.fd)

    def holds(self, path: Path) -> str | None:
        with self._guard:
            entry = self._held.get(os.fspath(path))
            return entry.kind if entry else None


class LockHandle:
    """One holder's share of a pooled lock. Release exactly once (or use as a context manager)."""

    def __init__(self, pool: LockPool, name: str, fd: int, kind: str) -> None:
        self._pool = pool
        self.path = Path(name)
        self.fd = fd
        self.kind = kind
        self._released = False

    @property
    def sane(self) -> bool:
        """checkSaneLock: the path still names the file we hold locked."""
        return not self._released and _same_file(os.fspath(self.path), self.fd)

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._pool._release(os.fspath(self.path))

    def __enter__(self) -> LockHandle:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _same_file(name: str, fd: int) -> bool:
    try:
        a = os.fstat(fd)
        b = os.stat(name, follow_symlinks=False)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


#: The pool of this process. Everything in annextui that takes git-annex locks goes through it.
POOL = LockPool()


def lock_holder(path: Path) -> int | None:
    """PID of another process holding an exclusive (write) lock on `path` (F_GETLK), else None.

    A lock held by this very process is not reported (POSIX locks never conflict with their own
    process); use `LockPool.holds` for those.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        probe = FLOCK.pack(fcntl.F_RDLCK, os.SEEK_SET, 0, 0, 0)
        res = fcntl.fcntl(fd, fcntl.F_GETLK, probe)
        l_type, _w, _s, _l, pid = FLOCK.unpack(res)
        return pid if l_type == fcntl.F_WRLCK else None
    except OSError:
        return None
    finally:
        os.close(fd)


# -- retention timestamps ----------------------------------------------------------------------


def now_clock() -> Clock:
    """The current POSIX time with nanosecond precision (as git-annex's getPOSIXTime)."""
    return Clock(time.time_ns() * 1000)


def read_retention(rtm: Path) -> Clock | None:
    try:
        text = rtm.read_text("ascii", errors="replace").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        return parse_clock(text)
    except ClockError:
        return None


# -- content locks -------------------------------------------------------------------------------


class SharedContentLock:
    """LOCKCONTENT held: the object cannot be dropped until `release()` (and the marker expires)."""

    def __init__(
        self, store: ObjectStore, kp: KeyPaths, handle: LockHandle, retention: Clock | None
    ) -> None:
        self._store = store
        self.paths = kp
        self._handle = handle
        self.retention = retention
        self._released = False

    def release(self) -> None:
        """Drop the shared lock; if nobody else holds one, remove our marker and the lock file."""
        if self._released:
            return
        self._released = True
        self._handle.release()
        store, kp = self._store, self.paths
        try:
            with store.modifying(kp):
                ex = POOL.try_exclusive(kp.lck, store.file_mode())
                if ex is None:
                    return
                try:
                    if self.retention is not None and read_retention(kp.rtm) == self.retention:
                        for f in (kp.rtm, kp.rtl):
                            with contextlib.suppress(FileNotFoundError):
                                os.unlink(f)
                    if ex.sane:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(kp.lck)
                finally:
                    ex.release()
        except (OSError, ValueError):
            return
        store.clean_dirs(kp)

    def __enter__(self) -> SharedContentLock:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def lock_content_shared(
    store: ObjectStore, kp: KeyPaths, *, retention_seconds: int | None = RETENTION_SECONDS
) -> SharedContentLock | None:
    """lockContentShared: None when the lock cannot be taken (removal in progress, no content)."""
    if not kp.dir.is_dir():
        return None
    mode = store.file_mode()
    with store.modifying(kp):
        handle = POOL.try_shared(kp.lck, mode)
    if handle is None:
        return None
    retention: Clock | None = None
    if retention_seconds is not None:
        retention = now_clock().plus_seconds(retention_seconds)
        try:
            _write_retention(store, kp, retention)
        except OSError:
            # git-annex drops the lock rather than leave it dangling without its marker.
            handle.release()
            return None
    lock = SharedContentLock(store, kp, handle, retention)
    if not handle.sane or not os.path.isfile(kp.object):
        lock.release()
        return None
    return lock


_retention_guard = threading.Lock()


def _write_retention(store: ObjectStore, kp: KeyPaths, when: Clock) -> None:
    """writeContentRetentionTimestamp: under `.rtl`, never move an existing marker backwards.

    The marker is replaced atomically (temp file in `annex/othertmp`, then rename), so a reader
    sees the old or the new time. Threads of this process serialise on a lock of their own,
    since fcntl locks do not exclude each other inside one process.
    """
    with _retention_guard, store.modifying(kp):
        rtl_fd = os.open(
            kp.rtl, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, store.file_mode()
        )
        try:
            fcntl.lockf(rtl_fd, fcntl.LOCK_EX)
            current = read_retention(kp.rtm)
            if current is not None and current >= when:
                return
            store.make_annex_dir(store.othertmp)
            tmp = store.othertmp / f"rtm.{os.getpid()}.{threading.get_ident()}.{kp.keyfile[:64]}"
            fd = os.open(
                tmp,
                os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                store.file_mode(),
            )
            try:
                os.write(fd, when.format().encode())
                os.close(fd)
                os.replace(tmp, kp.rtm)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        finally:
            os.close(rtl_fd)  # also releases the lock on .rtl


class RemovalLock:
    """The exclusive content lock held while removing an object."""

    def __init__(self, store: ObjectStore, kp: KeyPaths, handle: LockHandle) -> None:
        self._store = store
        self.paths = kp
        self._handle = handle

    def release(self) -> None:
        store, kp = self._store, self.paths
        if self._handle.sane:
            try:
                with store.modifying(kp), contextlib.suppress(FileNotFoundError):
                    os.unlink(kp.lck)
            except OSError:
                pass
        self._handle.release()
        store.clean_dirs(kp)

    def __enter__(self) -> RemovalLock:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def lock_for_removal(store: ObjectStore, kp: KeyPaths) -> RemovalLock:
    """lockContentForRemoval: raises `ContentLocked` ("content is locked") when it cannot."""
    retention = read_retention(kp.rtm)
    if retention is not None and now_clock() <= retention:
        raise ContentLocked()
    with store.modifying(kp):
        handle = POOL.try_exclusive(kp.lck, store.file_mode())
    if handle is None:
        raise ContentLocked()
    if retention is not None:
        # Expired marker: clean it up now that nobody else can be writing it.
        with store.modifying(kp):
            for f in (kp.rtm, kp.rtl):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f)
    return RemovalLock(store, kp, handle)
