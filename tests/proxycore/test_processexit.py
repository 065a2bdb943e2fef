"""processexit: a process of ours ends with its status while paramiko's threads still run.

The crash this guards against (annextui-shell, SIGSEGV in `PyObject_GC_UnTrack`; SIGABRT
"FATAL: exception not rethrown"): at the interpreter's teardown CPython ends a daemon thread
that wants the GIL back with `pthread_exit`; when that thread is inside cryptography's Rust
code (paramiko importing it, or its transport thread decrypting), the forced unwind runs
pyo3's cleanups, which drop Python references without the GIL while the main thread's final
garbage collection walks the same objects, or catches the unwind and aborts. Core dumps of
such children show exactly that: the main thread in `Py_FinalizeEx` -> `PyGC_Collect`, the
daemon thread importing cryptography (`make_module` -> `namespace_dealloc` ->
`PyObject_GC_UnTrack`, the shell's crash site; or `__rust_panic_cleanup`).

Each child here is the shell's situation, concentrated: a daemon thread opens an ssh channel to
the private sshd through the gateway's pool (importing paramiko, the handshake, then reading
a stream), while the main thread, holding a lot of garbage (so the teardown's collection is
long), ends with `processexit.exit_process`. Without it (the interpreter's teardown) about one
child in thirty died; with it every one must exit with its status, 0.

The 90 children come in CHUNKS tests of their own, so that xdist spreads them over its workers
(one test of 90 children kept one worker busy alone for over a minute at the suite's end), each
chunk's delays spread over the whole range: every run still ends 90 children at delays covering
it, and the race needs load, which the other worker's chunks and tests give.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.sshd import Sshd

pytestmark = pytest.mark.slow

CHILDREN = 90
CHUNKS = 6  # tests of CHILDREN // CHUNKS children each

CHILD = r"""
import sys, threading, time
from annextui.proxycore.gateway import ssh_pool
from annextui.proxycore.processexit import exit_process
from annextui.proxycore.ssh import SshOptions, parse_ssh_url

delay, config = float(sys.argv[1]), sys.argv[2]

def reach_node():
    channel = ssh_pool().open(
        parse_ssh_url("ssh://nodehost/tmp"), "cat /dev/zero", SshOptions.parse("-F " + config)
    )
    while channel.read(65536):
        pass

threading.Thread(target=reach_node, daemon=True).start()
garbage = [[{} for _ in range(20)] for _ in range(3000)]
time.sleep(delay)
exit_process(0)
"""


def _delays(chunk: int) -> list[float]:
    """This chunk's share of CHILDREN delays stratified over 0.2-0.9 s: child i of the run ends
    at a random point of the i-th of CHILDREN equal slices, so the run's ends cover the import
    of paramiko, the handshake and the streaming channel evenly whatever the chunk's draw."""
    low, width = 0.2, 0.7 / CHILDREN
    return [low + (i + random.random()) * width for i in range(chunk, CHILDREN, CHUNKS)]


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_processes_end_with_their_status_while_ssh_threads_run(ssh_hosts: Sshd, chunk: int) -> None:
    ssh_hosts.add_host("nodehost")
    env = ssh_hosts.env()
    env["PYTHONFAULTHANDLER"] = "1"  # a crash prints every thread's stack
    config = str(ssh_hosts.config_path)

    def child(delay: float) -> tuple[int, str]:
        p = subprocess.run(
            [sys.executable, "-c", CHILD, str(delay), config],
            env=env,
            capture_output=True,
            timeout=120,
        )
        return p.returncode, p.stderr.decode(errors="replace")

    with ThreadPoolExecutor(3) as pool:
        ended = list(pool.map(child, _delays(chunk)))
    bad = [(status, err[-3000:]) for status, err in ended if status != 0 or "Fatal" in err]
    assert not bad, f"{len(bad)} of {len(ended)} children: {bad[:2]}"
    assert os.path.exists(config)  # the sshd's configuration the children used


def test_a_stderr_pump_not_yet_running_does_not_break_the_exit() -> None:
    """A process ending while a channel is being opened on another thread: its pump may be
    known and not started yet. Waiting for the pumps must pass over it, not raise (once, under
    load, a child exited 1 with "cannot join thread before it is started")."""
    import threading
    import time

    from annextui.proxycore import ssh

    unstarted = threading.Thread(target=lambda: None, name="ssh-stderr")
    ssh._stderr_pumps.add(unstarted)
    try:
        ssh.join_stderr_pumps(time.monotonic() + 0.1)
    finally:
        ssh._stderr_pumps.discard(unstarted)
