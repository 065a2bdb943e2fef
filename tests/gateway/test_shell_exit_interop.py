"""annextui-shell ends with its proper exit status in the session shapes that crashed it.

The shell died of SIGSEGV at exit (kernel log: `PyObject_GC_UnTrack` in libpython, in a
thread's stack) during test-suite runs and gateway benchmarks, after its clients had their
answers: the interpreter's teardown ran while daemon threads of the session still did (the
ssh-prewarm thread reaching node3, paramiko's transport thread, the stderr pumps). Each
session here is one `annextui-shell p2pstdio` for the cluster of tests/gateway/topology.py,
whose node3 is reached over the private sshd, in the shapes of the suite and benchmarks: the
client hangs up right after `AUTH-SUCCESS`, after `VERSION`, right after its second request
(which starts the ssh pre-warm: the client is gone while it imports paramiko or connects), in
the middle of a GET from node3 (its transport thread busy receiving), after a whole GET, after
a PUT fanned out to node3. Every shell must exit 0 (never -11, never a `Fatal Python error`),
and what the PUTs wrote must be intact: node3's objects pass a real `git annex fsck`, and the
gateway's location log lists node3 for each key.

`annextui p2phttp` ends the same way after SIGTERM: its ssh transport to node3 up, status 0.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from annextui.backend.keys import key_for_content
from tests.gateway import topology as T
from tests.gateway.test_gateway_interop import fsck_node, gateway_whereis, objects
from tests.support.p2phttp import P2PHttpServer

pytestmark = [pytest.mark.ssh, pytest.mark.slow]

ROUNDS = 8  # sessions per shape (the crash was rare: many short sessions, two at a time)
BIG = 3 << 20  # node3's GET keeps its transport thread receiving past the hang-up
SESSION_LIMIT = 120.0  # a session takes well under a second


@dataclass(frozen=True)
class Session:
    shape: str
    stdin: bytes
    read: int = 0  # bytes of stdout read before hanging up (0: everything, to the end)


@dataclass(frozen=True)
class Ended:
    session: Session
    status: int
    stdout: bytes
    stderr: bytes


def _run(topo: T.Topology, s: Session) -> Ended:
    env = dict(topo.env.env, PYTHONFAULTHANDLER="1")  # a crash prints every thread's stack
    p = subprocess.Popen(
        ["annextui-shell", "p2pstdio", str(topo.gw), T.CLIENT, "--uuid", topo.cluster_uuid],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    # The reads below end when the shell (and the local nodes' shells, which share its
    # stderr) have exited. One that never does is killed, with what it started, and shows as
    # status -9: the test fails naming the shape instead of waiting for ever in a pool thread.
    guard = threading.Timer(SESSION_LIMIT, _kill_group, (p.pid,))
    guard.start()
    try:
        assert p.stdin is not None
        assert p.stdout is not None
        assert p.stderr is not None
        p.stdin.write(s.stdin)
        p.stdin.flush()
        out = p.stdout.read(s.read) if s.read else b""
        p.stdin.close()  # the client hangs up
        out += p.stdout.read() if not s.read else b""
        p.stdout.close()
        err = p.stderr.read()
        p.stderr.close()
        return Ended(s, p.wait(timeout=SESSION_LIMIT), out, err)
    finally:
        guard.cancel()
        if p.poll() is None:  # an assertion above failed: nothing of the session outlives it
            _kill_group(p.pid)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _on_node3_only(topo: T.Topology, data: bytes) -> str:
    env, cl = topo.env, topo.client
    key = env.add_files(cl, {"exit/big.bin": data})["exit/big.bin"]
    env.annex(cl, "copy", "-q", "--to", "origin-node3", "exit/big.bin")
    env.annex(cl, "drop", "-q", "--force", "exit/big.bin")
    return key


def test_every_session_shape_exits_cleanly(topo: T.Topology) -> None:
    env = topo.env
    data = os.urandom(BIG)
    big = _on_node3_only(topo, data)
    small = env.add_files(topo.client, {"exit/small.bin": b"on node1\n"})["exit/small.bin"]
    env.annex(topo.client, "copy", "-q", "--to", "origin-node1", "exit/small.bin")
    for node in ("node1", "node2"):  # every PUT fans out to node3, over ssh
        env.annex(topo.gw, "wanted", node, "nothing")
    blobs = [os.urandom(50_000 + i) for i in range(ROUNDS)]
    put_keys = [str(key_for_content(b, "SHA256E", ".bin")) for b in blobs]
    sessions: list[Session] = []
    for i in range(ROUNDS):
        sessions += [
            Session("auth", b""),
            Session("version", b"VERSION 4\n"),
            Session("prewarm", f"VERSION 4\nCHECKPRESENT {small}\nCHECKPRESENT {small}\n".encode()),
            Session("mid-get", f"VERSION 4\nGET 0 exit/big.bin {big}\n".encode(), 100_000),
            Session("get", f"VERSION 4\nGET 0 exit/big.bin {big}\nSUCCESS\n".encode()),
            Session(
                "put",
                f"VERSION 4\nPUT exit/p{i}.bin {put_keys[i]}\nDATA {len(blobs[i])}\n".encode()
                + blobs[i]
                + b"VALID\n",
            ),
        ]
    with ThreadPoolExecutor(2) as pool:
        ended = list(pool.map(lambda s: _run(topo, s), sessions))

    bad = [
        (e.session.shape, e.status, e.stderr.decode(errors="replace")[-4000:])
        for e in ended
        if e.status != 0 or b"Fatal Python error" in e.stderr
    ]
    assert not bad, bad
    for e in ended:
        lines = e.stdout.split(b"\n")
        assert lines[0] == f"AUTH-SUCCESS {topo.cluster_uuid}".encode(), e
        if e.session.shape == "prewarm":  # node1 has it: answered in the gateway's process
            assert lines[2:4] == [b"SUCCESS", b"SUCCESS"], e.stdout
        if e.session.shape == "get":  # the whole body, from node3, verified by the client
            assert e.stdout.endswith(data + b"VALID\n"), e.stdout[:200]
        if e.session.shape == "put":
            assert lines[-2].split()[0] == b"SUCCESS-PLUS", e.stdout
            assert T.N3.encode() in lines[-2], e.stdout
    assert set(put_keys) <= objects(topo.nodes["node3"])
    fsck_node(topo, topo.nodes["node3"])
    for key in put_keys:
        assert T.N3 in gateway_whereis(topo, topo.gw, key), key


def test_p2phttp_stopped_with_an_ssh_node_connected_exits_0(topo: T.Topology) -> None:
    env = dict(topo.env.env, PYTHONFAULTHANDLER="1")
    data = os.urandom(200_000)
    key = topo.env.add_files(topo.client, {"exit/http.bin": data})["exit/http.bin"]
    topo.env.annex(topo.client, "copy", "-q", "--to", "origin-node3", "exit/http.bin")
    server = P2PHttpServer("annextui", topo.gw, env, ("--wideopen", "-J2")).start()
    try:
        path = f"/git-annex/{topo.cluster_uuid}/v4/key/{key}?clientuuid={T.CLIENT}"
        reply = server.endpoint.request("GET", path, timeout=60)
        assert (reply.status, reply.body) == (200, data)  # from node3, over its ssh transport
    finally:
        server.stop()  # SIGTERM
    assert server.proc is not None
    assert server.proc.returncode == 0, server.stderr()
    assert "Fatal Python error" not in server.stderr()
    assert "p2phttp: stopped" in server.stderr()
