"""Blocking whole-file write locks that conflict with git-annex's and never fake a deadlock.

git-annex locks its files (`journal.lck`, ...) with classic POSIX record locks (`F_SETLKW`).
Those belong to the *process*: the kernel's deadlock detection sees every thread of a gateway
as one owner, so when thread 1 holds node1's lock and thread 2 waits for node2's, while another
gateway process holds node2's and waits for node1's, the kernel answers EDEADLK ("Resource
deadlock avoided") although thread 1 is about to let go. Open file description (OFD) locks
conflict with POSIX record locks exactly as another process's would, but belong to the open
file, so the kernel does no deadlock detection for them: they fit a threaded process that shares
files with git-annex. Where OFD locks are missing (not Linux), the classic lock is taken and a
reported deadlock is waited out and retried, since ours are never real (one lock per thread).
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import time

# struct flock on Linux (x86_64, aarch64): short l_type, l_whence; off_t l_start, l_len; pid_t l_pid
FLOCK = struct.Struct("hhqqi4x")
_OFD_SETLKW: int | None = getattr(fcntl, "F_OFD_SETLKW", None)
_DEADLOCK_RETRY = 0.01  # seconds between retries of a classic lock after EDEADLK


def lock_exclusive(fd: int) -> None:
    """Block until `fd`'s whole file is write-locked against every other holder (of any
    process or open file description). Released by closing `fd`."""
    if _OFD_SETLKW is not None:
        # l_pid must be 0 for OFD locks; the whole file is l_start=0, l_len=0.
        request = FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        while True:
            try:
                fcntl.fcntl(fd, _OFD_SETLKW, request)
                return
            except InterruptedError:
                continue
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                break  # a kernel or filesystem without OFD locks: the classic lock below
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX)
            return
        except OSError as exc:
            if exc.errno != errno.EDEADLK:
                raise
            time.sleep(_DEADLOCK_RETRY)
