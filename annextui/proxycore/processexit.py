"""How `annextui-shell` and `annextui p2phttp` end: their own work finished, then `os._exit`,
never the interpreter's finalization.

A process can end while daemon threads of ours still run: the `ssh-prewarm` thread importing
paramiko or in the middle of a node's key exchange (a client that hangs up right after `AUTH`),
paramiko's transport threads, the pumps copying a node's stderr, a p2phttp connection thread
left after the shutdown's bounded join. CPython does not support daemon threads during
`Py_FinalizeEx`: one stopped in an import owns the import lock for ever (the hang documented in
backend/repo.py); and the teardown ends a daemon thread that wants the GIL back with
`pthread_exit`, whose forced unwind runs the cleanups of whatever Rust (pyo3) frames the thread
is in. The ssh-prewarm thread importing paramiko is in cryptography's module initialisation:
core dumps show the main thread in `Py_FinalizeEx` -> `PyGC_Collect` (`subtract_refs`) while
the exiting daemon thread drops a reference without the GIL (pyo3 `ModuleDef::make_module` ->
`namespace_dealloc` -> `PyObject_GC_UnTrack`, writing through a `_gc_prev` that holds the
collection's reference count: SIGSEGV "segfault at 4", the kernel log's signature), or pyo3's
`catch_unwind` catches the forced unwind (SIGABRT, "FATAL: exception not rethrown").

When the caller gets here nothing of ours is left to write: the shell's server closed its peer
(the journal committed, transfer records removed, the cluster's writer threads and fan-out pool
joined), p2phttp's shutdown joined its connections, closed its nodes (waiting, bounded, for
every node connection, those closing in the background too) and committed the journals. So
the process waits for what the interpreter would have waited for (non-daemon threads), gives
the ssh stderr pumps a bounded moment to pass on a node's last message, flushes stdout and
stderr, and leaves with `os._exit`. Sockets, pipes and locks are the kernel's to close,
exactly as after any exit; what the teardown would still have done (closing dulwich's pack
files, paramiko's atexit stop of transports whose sockets go anyway) writes nothing. It also
saves the teardown's time on every ssh connection.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from typing import NoReturn

# How long the ssh stderr pumps get to pass on what a node wrote before its channel closed
# (they end at the channel's end of stderr, which arrives before its exit status).
STDERR_GRACE = 2.0


def join_own_threads(grace: float = STDERR_GRACE) -> None:
    """Wait for every non-daemon thread (as the interpreter's shutdown would), then, within
    `grace` seconds, for the ssh channels' stderr pumps; other daemon threads are left."""
    me = threading.current_thread()
    for t in threading.enumerate():
        if t is not me and not t.daemon:
            t.join()
    if "annextui.proxycore.ssh" in sys.modules:  # not imported here: only if a node used ssh
        from annextui.proxycore.ssh import join_stderr_pumps

        join_stderr_pumps(time.monotonic() + grace)


def flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        # a client gone, or a stream closed: nothing left to deliver to
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def exit_process(status: int) -> NoReturn:
    """End the process with `status` once its own work is done (see the module's doc)."""
    join_own_threads()
    flush_std_streams()
    os._exit(status)
