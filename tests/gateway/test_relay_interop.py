"""ssh clients served by the long-running `annextui p2phttp --relay-socket` through annextui-relay.

Topology: tests/gateway/topology.py (gateway with local nodes, an ssh node running the real
git-annex-shell, a proxied remote). A real git-annex client reaches the gateway over the
private sshd through aliases whose sessions find a `git-annex-shell` wrapper first on PATH that
execs the relay (tests/support/shellwrap.py, tests/support/relay.py), or whose key's forced
command is the relay; the relay hands the session to the server on the gateway. Outcomes are
judged by git-annex: `whereis`, `fsck --from` (content verified through the relay), the object
stores, and the server's own log line per relayed session (`exit 0`, never a fallback for
p2pstdio) tells that the server, not a fallback shell, served it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.gateway import topology as T
from tests.gateway.test_testremote import EXPECTED_TESTS
from tests.support import p2phttp, tasty
from tests.support.relay import relay_options, write_relay_program
from tests.support.shellwrap import ShellWrapper, write_shell_wrapper

pytestmark = [pytest.mark.ssh, pytest.mark.slow]

WAIT = 60.0  # bound on polling for the server to settle (never asserted as a duration)


@dataclass
class Relayed:
    topo: T.Topology
    server: p2phttp.P2PHttpServer
    socket: Path
    program: Path
    wrapper: ShellWrapper
    tmp: Path

    def sessions(self, status: str = "") -> list[str]:
        """The server's log lines of relayed p2pstdio sessions (ending in `status`)."""
        return [
            line
            for line in self.server.stderr().splitlines()
            if line.startswith("relay SSH ") and "p2pstdio" in line and status in line
        ]


def _alias(topo: T.Topology, alias: str, bin_dir: Path, **env: str) -> None:
    """An ssh alias whose sessions find `bin_dir/git-annex-shell` first on PATH."""
    base = topo.sshd.base_server_env()
    topo.sshd.add_host(alias, env={"PATH": f"{bin_dir}:{base['PATH']}", **env})


def _remote(topo: T.Topology, name: str, alias: str) -> None:
    env, cl = topo.env, topo.client
    env.git(cl, "remote", "add", name, f"ssh://{alias}{topo.gw}")
    env.git(cl, "fetch", "-q", name)
    env.annex(cl, "info", "-q", name)  # the UUID, learned through configlist (a fallback)


@pytest.fixture(scope="module")
def relayed(topo: T.Topology) -> Iterator[Relayed]:
    tmp = Path(tempfile.mkdtemp(prefix="arl-", dir="/tmp"))  # sun_path is short
    sock_dir = tmp / "run"
    sock_dir.mkdir(mode=0o700)
    sock = sock_dir / "relay.sock"
    program = write_relay_program(tmp / "bin" / "annextui-relay", sock)
    wrapper = write_shell_wrapper(tmp / "wrap", str(program))
    _alias(topo, "gwrelay", wrapper.bin_dir)
    _alias(topo, "gwro", wrapper.bin_dir, GIT_ANNEX_SHELL_READONLY="1")
    server = p2phttp.P2PHttpServer("annextui", topo.gw, dict(topo.env.env), relay_options(sock))
    try:
        server.start()
        _remote(topo, "relay", "gwrelay")
        yield Relayed(topo, server, sock, program, wrapper, tmp)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def objects(repo: Path) -> set[str]:
    return {p.name for p in (repo / "annex" / "objects").rglob("*") if p.is_file()}


def whereis(topo: T.Topology, path: str) -> set[str]:
    recs = topo.env.annex_json(topo.client, "whereis", path, check=False)
    return {w["uuid"] for r in recs for w in r.get("whereis", [])}


def _round_trip(r: Relayed, remote: str, path: str, key: str, stores: list[Path]) -> None:
    """copy --to, fsck --from, get --from, drop --from through `remote`, judged by git-annex
    and the object stores in `stores` (one of which must receive the key)."""
    env, cl = r.topo.env, r.topo.client
    before = len(r.sessions("exit 0"))
    env.annex(cl, "copy", "-q", "--to", remote, path)
    held = [s for s in stores if key in objects(s)]
    assert held, f"{key} reached none of {stores}"
    assert len(whereis(r.topo, path)) >= 2
    fsck = env.annex(cl, "fsck", "-q", "--from", remote, path, check=False)
    assert fsck.returncode == 0, fsck.stderr
    content = (cl / path).read_bytes()
    env.annex(cl, "drop", "-q", "--force", path)
    env.annex(cl, "get", "-q", "--from", remote, path)
    assert (cl / path).read_bytes() == content
    env.annex(cl, "drop", "-q", "--from", remote, path)
    assert not [s for s in stores if key in objects(s)]
    # the server served these sessions itself (copy, fsck, get, drop: at least one each)
    assert len(r.sessions("exit 0")) >= before + 4, r.server.stderr()[-3000:]
    assert not r.sessions("fallback")


def test_copy_get_drop_gateway(relayed: Relayed) -> None:
    keys = relayed.topo.env.add_files(relayed.topo.client, {"gwfile": b"to the gateway\n" * 300})
    _round_trip(relayed, "relay", "gwfile", keys["gwfile"], [relayed.topo.gw])
    # every client invocation went through the wrapper, i.e. the relay
    assert any("p2pstdio" in line for line in relayed.wrapper.invocations())


def test_copy_get_drop_cluster(relayed: Relayed) -> None:
    topo = relayed.topo
    keys = topo.env.add_files(topo.client, {"clfile": b"to the cluster\n" * 300})
    remote = f"relay-{T.CLUSTER_NAME}"
    _round_trip(relayed, remote, "clfile", keys["clfile"], list(topo.nodes.values()))


def _logins_with(sshd_log: str, fingerprint: str) -> int:
    return sum(
        1 for line in sshd_log.splitlines() if "Accepted publickey" in line and fingerprint in line
    )


def test_ssh_node_transport_kept_between_sessions(relayed: Relayed) -> None:
    """Sessions to the ssh node (node3, a proxied remote of the gateway) one after the other:
    the server logs in to the node's sshd at most once, then reuses that transport (each
    annextui-shell would log in once per session). The server reaches node3 with the sshd's
    default key, which no client alias of this module uses."""
    topo = relayed.topo
    fingerprint = subprocess.run(
        ["ssh-keygen", "-lf", f"{topo.sshd.client_key}.pub"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[1]
    paths = {f"n3-{i}": f"node3 file {i}\n".encode() * 100 for i in range(3)}
    keys = topo.env.add_files(topo.client, paths)
    before = _logins_with(topo.sshd.log_text(), fingerprint)
    for path in paths:
        topo.env.annex(topo.client, "copy", "-q", "--to", "relay-node3", path)
    server_logins = _logins_with(topo.sshd.log_text(), fingerprint) - before
    assert all(keys[p] in objects(topo.nodes["node3"]) for p in paths)
    assert server_logins <= 1, topo.sshd.log_text()[-3000:]
    topo.env.annex(topo.client, "drop", "-q", "--from", "relay-node3", *paths)
    assert not any(keys[p] in objects(topo.nodes["node3"]) for p in paths)


def test_readonly_refuses_copy(relayed: Relayed) -> None:
    topo = relayed.topo
    _remote(topo, "relayro", "gwro")
    keys = topo.env.add_files(topo.client, {"rofile": b"read only\n" * 100})
    done = topo.env.annex(topo.client, "copy", "--to", "relayro", "rofile", check=False)
    assert done.returncode != 0
    assert keys["rofile"] not in objects(topo.gw)
    # reading is allowed: the content stored through the read-write remote comes back
    topo.env.annex(topo.client, "copy", "-q", "--to", "relay", "rofile")
    topo.env.annex(topo.client, "drop", "-q", "--force", "rofile")
    topo.env.annex(topo.client, "get", "-q", "--from", "relayro", "rofile")
    assert (topo.client / "rofile").read_bytes() == b"read only\n" * 100
    # and removing is not
    done = topo.env.annex(topo.client, "drop", "--from", "relayro", "rofile", check=False)
    assert done.returncode != 0
    assert keys["rofile"] in objects(topo.gw)
    assert not relayed.sessions("fallback")


def test_forced_command(relayed: Relayed) -> None:
    """The relay as the key's forced command: the request comes in SSH_ORIGINAL_COMMAND."""
    topo = relayed.topo
    topo.sshd.add_host("gwforced", command=str(relayed.program))
    _remote(topo, "forced", "gwforced")
    keys = topo.env.add_files(topo.client, {"forcedfile": b"forced\n" * 100})
    before = len(relayed.sessions("exit 0"))
    topo.env.annex(topo.client, "copy", "-q", "--to", "forced", "forcedfile")
    assert keys["forcedfile"] in objects(topo.gw)
    assert len(relayed.sessions("exit 0")) > before
    topo.env.annex(topo.client, "drop", "-q", "--from", "forced", "forcedfile")
    assert keys["forcedfile"] not in objects(topo.gw)


def test_falls_back_to_annextui_shell_when_server_stopped(relayed: Relayed) -> None:
    """A relay whose server was stopped (socket gone) or killed (a stale socket file) becomes
    annextui-shell: the copy still works."""
    topo = relayed.topo
    sock = relayed.tmp / "run" / "second.sock"
    program = write_relay_program(relayed.tmp / "bin2" / "annextui-relay", sock)
    wrapper = write_shell_wrapper(relayed.tmp / "wrap2", str(program))
    _alias(topo, "gwdown", wrapper.bin_dir)
    server = p2phttp.P2PHttpServer("annextui", topo.gw, dict(topo.env.env), relay_options(sock))
    server.start()
    server.stop()  # SIGTERM: it removes its socket
    assert not sock.exists()
    _remote(topo, "down", "gwdown")
    keys = topo.env.add_files(topo.client, {"downfile": b"no server\n" * 100})
    topo.env.annex(topo.client, "copy", "-q", "--to", "down", "downfile")
    assert keys["downfile"] in objects(topo.gw)
    # a killed server leaves its socket file behind: connecting is refused, same fallback
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock))
    stale.close()
    topo.env.annex(topo.client, "drop", "-q", "--from", "down", "downfile")
    assert keys["downfile"] not in objects(topo.gw)
    assert any("p2pstdio" in line for line in wrapper.invocations())
    os.unlink(sock)


def test_testremote_cluster(relayed: Relayed) -> None:
    results, stderr = tasty.run_tasty(
        ["git", "annex", "testremote", f"relay-{T.CLUSTER_NAME}"],
        relayed.topo.client,
        relayed.topo.env.env,
        timeout=1800,
    )
    assert not results.failed, results.report() + "\n" + stderr[-4000:]
    assert len(results.outcomes) == EXPECTED_TESTS
    assert not relayed.sessions("fallback")


def _resting_fds(server: p2phttp.P2PHttpServer) -> int:
    """The server's descriptor count at rest: once its own status reports no connection and
    the count is the same on both sides of that report (what an earlier client left to close
    is closed by then). Polled, never timed: WAIT only bounds a server that does not settle."""
    deadline = time.monotonic() + WAIT
    while True:
        before = server.fd_count()
        idle = _status_connections(server) == 0
        count = server.fd_count()
        if (idle and count == before) or time.monotonic() > deadline:
            return count
        time.sleep(0.1)


def _settled_fds(server: p2phttp.P2PHttpServer, baseline: int) -> int:
    """The server's descriptor count once it is back at `baseline` (or WAIT has passed)."""
    deadline = time.monotonic() + WAIT
    count = server.fd_count()
    while count > baseline and time.monotonic() < deadline:
        time.sleep(0.1)
        count = server.fd_count()
    return count


def _status_connections(server: p2phttp.P2PHttpServer) -> int:
    """The server's own count of connections (SIGUSR1 prints its status)."""
    return int(server.status_line(WAIT).split()[1])


@pytest.mark.parametrize("direction", ["get", "copy"])
def test_killed_client_frees_worker_and_fds(relayed: Relayed, direction: str) -> None:
    topo, server = relayed.topo, relayed.server
    env, cl = topo.env, topo.client
    path = f"big-{direction}"
    with open(cl / path, "wb") as fh:
        block = os.urandom(1 << 20)
        for _ in range(256):
            fh.write(block)
    env.annex(cl, "add", "-q", path)
    env.git(cl, "commit", "-q", "-m", path)
    key = env.annex(cl, "lookupkey", path).stdout.strip()
    if direction == "get":
        env.annex(cl, "copy", "-q", "--to", "relay", path)
        env.annex(cl, "drop", "-q", "--force", path)
        partial = cl / ".git" / "annex" / "tmp" / key
        argv = ["git", "annex", "get", "-q", "--from", "relay", path]
    else:
        partial = topo.gw / "annex" / "tmp" / key
        argv = ["git", "annex", "copy", "-q", "--to", "relay", path]
    baseline = _resting_fds(server)
    assert _status_connections(server) == 0
    proc = subprocess.Popen(
        argv, cwd=cl, env=env.env, start_new_session=True, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and proc.poll() is None:
            if partial.exists() and partial.stat().st_size > 0:
                break
            time.sleep(0.005)
        assert proc.poll() is None, "the transfer finished before the client could be killed"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert partial.stat().st_size < 256 << 20
    assert _settled_fds(server, baseline) <= baseline
    assert _status_connections(server) == 0
    # and the server serves the next client as before
    if direction == "get":
        env.annex(cl, "get", "-q", "--from", "relay", path)
        assert key in {p.name for p in (cl / ".git" / "annex" / "objects").rglob("*")}
    else:
        env.annex(cl, "copy", "-q", "--to", "relay", path)
        assert key in objects(topo.gw)
    env.annex(cl, "drop", "-q", "--force", "--from", "relay", path)


def test_two_gateways_through_one_relay_server(relayed: Relayed) -> None:
    """Both gateways of the cluster served by the one relay server: client2 -> gw2 (relayed),
    gw2 -> gw (relayed, the same server process, its cluster half) and back, without loops;
    the repositories the server keeps per thread must not deadlock the nested sessions."""
    topo = relayed.topo
    if topo.gw2 is None:
        T.add_second_gateway(topo, shell=str(relayed.program))
    assert topo.client2 is not None
    env, cl2 = topo.env, topo.client2
    files = {f"two/f{i}.bin": os.urandom(3000 + i) for i in range(3)}
    keys = env.add_files(cl2, files)
    before = len(relayed.sessions("exit 0"))
    env.annex(cl2, "copy", "-q", "--to", "gw2-mycluster", "two", timeout=300)
    for k in keys.values():
        held = {n for n, path in topo.nodes.items() if k in objects(path)}
        assert "node4" in held
        assert len(held) == 2, held  # node4, and one of node1-3 chosen by gw's balanced rule
    env.annex(cl2, "drop", "-q", "two")
    env.annex(cl2, "get", "-q", "--from", "gw2-mycluster", "two", timeout=300)
    assert all((cl2 / f).read_bytes() == b for f, b in files.items())
    env.annex(cl2, "drop", "-q", "--from", "gw2-mycluster", "two", timeout=300)
    assert not any(k in objects(p) for k in keys.values() for p in topo.nodes.values())
    # the client's sessions to gw2 and gw2's sessions to gw were all relayed
    assert len(relayed.sessions("exit 0")) >= before + 6
