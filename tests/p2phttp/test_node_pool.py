"""`--proxyconnections` and `--clusterjobs` for real: node connections kept between requests.

The topology of the gateway tests (tests/gateway/topology.py): the cluster's node3 is reached
over the private sshd and served there by the real `git-annex-shell`, so each connection the
server opens to it is one `git-annex-shell p2pstdio <node3>` process on the node, which the
tests count. A key is put on node3 alone (through the gateway's proxied `origin-node3`), so a
cluster request for it talks to node3 and to no other node.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway import topology as T
from tests.support import annex as annex_support
from tests.support import leftovers, procs
from tests.support import p2phttp as H
from tests.support.sshd import Sshd

pytestmark = pytest.mark.slow

REMOTE = "viahttp"
SETTLE = 60.0  # bound for the server's background closing of surplus connections


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, git_annex_bin: Path, sshd: Sshd
) -> Iterator[T.Topology]:
    # no preferred content: a PUT to the cluster goes to every node (the widest fan-out)
    ssh_world = annex_support.ssh_world(tmp_path_factory, "nodepool", git_annex_bin, sshd)
    with ssh_world as (root, env):
        yield T.build(env, sshd, root, balanced=False)


@pytest.fixture(autouse=True)
def _no_node3_shell_from_an_earlier_test(world: T.Topology) -> None:
    """Each test counts node3's shells, so it starts with none left from an earlier one: a
    server's `stop` closes its ssh connections, and node3's git-annex-shell ends a moment
    later, once it has committed its journal."""
    assert _settled(world, 0) == []


def _node3_shells(topo: T.Topology) -> list[int]:
    """PIDs of the git-annex-shell processes serving a p2pstdio connection to node3. A shell's
    child caught between fork and exec (a git it starts) shows the same command line and is
    not another connection: seen in CI as a second shell on the same ssh connection, gone
    within milliseconds, with the server's pool having opened one."""
    node3 = str(topo.nodes["node3"])
    found = [
        p
        for p in procs.mentioning(node3)
        if "p2pstdio" in p.argv and p.exe_name in ("git-annex-shell", "git-annex")
    ]
    return sorted(p.pid for p in procs.outermost(found))


def _settled(topo: T.Topology, most: int) -> list[int]:
    """node3's shells once the server's surplus connections are closed (bounded wait)."""
    deadline = time.monotonic() + SETTLE
    shells = _node3_shells(topo)
    while len(shells) > most and time.monotonic() < deadline:
        time.sleep(0.1)
        shells = _node3_shells(topo)
    return shells


def _key_on_node3(topo: T.Topology, server: H.P2PHttpServer, name: str, size: int) -> str:
    """A file of `size` bytes stored on node3 only, through the gateway's proxy of node3
    (so the gateway's location log says node3 holds it); its key. The copy goes over ssh
    (`origin-node3`, a one-session shell), not through `server`, which would keep its pooled
    connection to node3 as a proxied remote, a second shell on node3 beside the cluster's."""
    env, client = topo.env, topo.client
    _point(topo, server)
    env.add_files(client, {name: os.urandom(size // 2).hex()})
    env.annex(client, "copy", "-q", "--to", "origin-node3", name)
    assert _settled(topo, 0) == []  # the ssh session's node3 shell has ended
    return env.annex(client, "lookupkey", name).stdout.strip()


def _point(topo: T.Topology, server: H.P2PHttpServer) -> None:
    """The client's `REMOTE` reaches the gateway through this server from now on."""
    env, client = topo.env, topo.client
    if REMOTE in env.git(client, "remote").split():
        env.git(client, "config", f"remote.{REMOTE}.annexUrl", server.url)
    else:
        H.point_client(env, client, REMOTE, server.url, git_url=str(topo.gw))


def _server(topo: T.Topology, *options: str) -> H.P2PHttpServer:
    return H.P2PHttpServer("annextui", topo.gw, dict(topo.env.env), ("--wideopen", *options))


def _checkpresent(server: H.P2PHttpServer, topo: T.Topology, key: str) -> bool:
    return server.endpoint.checkpresent(topo.cluster_uuid, key, T.CLIENT, timeout=120)


def _get(server: H.P2PHttpServer, topo: T.Topology, key: str) -> bytes:
    reply = server.endpoint.request(
        "GET", f"/git-annex/{topo.cluster_uuid}/v4/key/{key}?clientuuid={T.CLIENT}", timeout=120
    )
    assert reply.status == 200, reply
    return reply.body


def test_one_ssh_connection_serves_fifty_requests(world: T.Topology) -> None:
    server = _server(world, "-J4", "--proxyconnections", "1").start()
    try:
        key = _key_on_node3(world, server, "fifty.txt", 2000)
        seen: set[int] = set()
        for _ in range(50):
            assert _checkpresent(server, world, key)
            shells = _node3_shells(world)
            assert len(shells) <= 1, shells
            seen.update(shells)
        # one connection, opened once and reused: the same shell answered all 50
        assert len(seen) == 1, seen
        assert _node3_shells(world) == sorted(seen)
    finally:
        server.stop()
    # closed at shutdown: the node's shell has exited (and committed its journal)
    assert _settled(world, 0) == []


def test_concurrent_requests_to_one_ssh_node_with_one_pooled_connection(
    world: T.Topology,
) -> None:
    server = _server(world, "-J4", "--proxyconnections", "1").start()
    try:
        big = 4 << 20
        key = _key_on_node3(world, server, "concurrent.bin", big)
        expected = (world.client / "concurrent.bin").read_bytes()
        results: list[bytes] = []
        errors: list[BaseException] = []

        def client() -> None:
            try:
                for _ in range(3):
                    results.append(_get(server, world, key))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=client) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        assert not errors, errors
        assert results == [expected] * 6
        # the surplus connection was closed when given back: one is kept idle
        assert len(_settled(world, 1)) == 1
        assert _checkpresent(server, world, key)
    finally:
        server.stop()


def test_node_killed_between_requests_is_reconnected(world: T.Topology) -> None:
    server = _server(world, "-J2").start()
    try:
        key = _key_on_node3(world, server, "killed.txt", 3000)
        assert _checkpresent(server, world, key)
        (before,) = _node3_shells(world)
        os.kill(before, signal.SIGKILL)
        assert _settled(world, 0) == []
        # the pooled connection is dead: dropped and replaced, the client sees nothing of it
        assert _checkpresent(server, world, key)
        assert _get(server, world, key) == (world.client / "killed.txt").read_bytes()
        after = _node3_shells(world)
        assert len(after) == 1
        assert after[0] != before
    finally:
        server.stop()


def test_clusterjobs_copy_drop_and_fsck(world: T.Topology) -> None:
    """The fan-out on the server's executor (`--clusterjobs 3`): a copy to the cluster goes
    to every node that wants it, a drop from it removes every copy, as git-annex judges."""
    env, client = world.env, world.client
    server = _server(world, "-J4", "--clusterjobs", "3").start()
    try:
        _key_on_node3(world, server, "jobs-seed.txt", 100)  # points the client at the server
        names = {f"jobs{i}.txt": f"clusterjobs {i}\n" for i in range(6)}
        env.add_files(client, names)
        env.annex(client, "copy", "-q", "--to", f"{REMOTE}-mycluster", *names)
        for node in ("node1", "node2", "node3"):
            fsck = env.annex_json(world.nodes[node], "fsck", "--fast", "--json")
            assert fsck, node
            assert all(r["success"] for r in fsck), (node, fsck)
        (where,) = env.annex_json(client, "whereis", "--json", "jobs0.txt")
        held = {w["uuid"] for w in where["whereis"]}
        assert {T.N1, T.N2, T.N3} <= held, held  # no preferred content: every node took it
        key0 = env.annex(client, "lookupkey", "jobs0.txt").stdout.strip()
        for node in ("node1", "node2", "node3"):
            assert (
                env.annex(world.nodes[node], "contentlocation", key0, check=False).returncode == 0
            )
        env.annex(client, "drop", "-q", "--from", f"{REMOTE}-mycluster", *names)
        for node in ("node1", "node2", "node3"):
            for name in names:
                key = env.annex(client, "lookupkey", name).stdout.strip()
                # git-annex's plumbing: exit status 1 when the content is not here
                out = env.annex(world.nodes[node], "contentlocation", key, check=False)
                assert out.returncode == 1, (node, name, out.stdout)
    finally:
        server.stop()


def test_putoffset_leaves_the_node_connection_usable(world: T.Topology) -> None:
    """`putoffset` opens a PUT on every node only to learn the offsets; the nodes are told
    in-band (ERROR after PUT-FROM), so the pooled connection to node3 is reused by the PUT
    that follows, which git-annex on node3 then holds intact."""
    env, client = world.env, world.client
    server = _server(world, "-J2").start()
    try:
        seed = _key_on_node3(world, server, "offset-seed.txt", 100)
        assert _checkpresent(server, world, seed)  # the pooled connection to node3 is open
        (shell,) = _node3_shells(world)
        env.add_files(client, {"offset.txt": "resumable\n" * 100})
        key = env.annex(client, "lookupkey", "offset.txt").stdout.strip()
        reply = server.endpoint.request(
            "POST",
            f"/git-annex/{world.cluster_uuid}/v4/putoffset?key={key}&clientuuid={T.CLIENT}",
            timeout=120,
        )
        assert reply.status == 200, reply
        assert json.loads(reply.body) == {"offset": 0}
        assert _node3_shells(world) == [shell]
        env.annex(client, "copy", "-q", "--to", f"{REMOTE}-mycluster", "offset.txt")
        assert _node3_shells(world) == [shell]
        (fsck,) = env.annex_json(world.nodes["node3"], "fsck", "--json", "--key", key)
        assert fsck["success"], fsck
    finally:
        server.stop()


# -- proxied remotes: pooled as cluster nodes are --------------------------------------------------
# node3 is also a proxied remote of the gateway (every cluster node is), reached over ssh; px is a
# plain proxied remote on this machine, served in the server's process (no shell to count: the
# server's status says how many connections its pool has opened).
PROXIED = {"node3": T.N3, "px": T.PX}
MOST_OPENED = 5  # connections for 50+ sequential requests: 1, more only where two overlapped


def _opened(server: H.P2PHttpServer) -> int:
    """Connections the server's pool has opened since it started (its SIGUSR1 status)."""
    words = server.status_line().split(", ")
    (opened,) = [w for w in words if w.endswith("node connections opened")]
    return int(opened.split()[0])


def _requests_for(server: H.P2PHttpServer, uuid: str) -> int:
    """Requests to `uuid` the server has logged (one line per request)."""
    return sum(1 for ln in server.stderr().splitlines() if f" /git-annex/{uuid}/" in ln)


@contextlib.contextmanager
def _sampled_shells(topo: T.Topology) -> Iterator[set[int]]:
    """Every node3 shell seen while the block runs (sampled by a thread until it ends): a
    server opening a connection per request shows a new shell for each."""
    seen: set[int] = set()
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            seen.update(_node3_shells(topo))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        yield seen
    finally:
        done.set()
        sampler.join()


@pytest.mark.parametrize("name", sorted(PROXIED))
def test_proxied_remote_copy_get_drop_over_one_connection(world: T.Topology, name: str) -> None:
    """A real client's copy, drop, get, fsck and drop through `viahttp-NAME`: every request
    to the proxied remote is served by one pooled connection (one git-annex-shell on node3),
    and git-annex judges the outcome (fsck --from, whereis)."""
    env, client = world.env, world.client
    uuid, remote = PROXIED[name], f"{REMOTE}-{name}"
    server = _server(world, "-J4", "--proxyconnections", "1").start()
    try:
        _point(world, server)
        names = {f"pooled-{name}-{i}.txt": f"pooled {name} {i}\n" for i in range(10)}
        files = sorted(names)
        env.add_files(client, names)
        with _sampled_shells(world) as shells:
            env.annex(client, "copy", "-q", "--to", remote, *files)
            env.annex(client, "drop", "-q", *files)  # the remote's copy locked meanwhile
            env.annex(client, "get", "-q", "--from", remote, *files)
            env.annex(client, "fsck", "-q", "--from", remote, *files)  # downloads each
            env.annex(client, "drop", "-q", "--from", remote, *files[:5])
        assert _requests_for(server, uuid) >= 50, server.stderr()
        # Pooled: one connection serves the requests one after another. Another is opened
        # only when a request arrives while it is still leased (under load the client's next
        # LOCKCONTENT can reach the server before the last one's connection is given back;
        # seen once in CI: 3 shells), and closed again as surplus. Without pooling every one
        # of the 50 requests would open its own.
        opened = _opened(server)
        assert 1 <= opened <= MOST_OPENED, server.stderr()
        if name == "node3":
            assert 1 <= len(shells) <= opened, shells
        fsck = env.annex_json(client, "fsck", "--from", remote, "--json", *files[5:])
        assert len(fsck) == 5, fsck
        assert all(r["success"] for r in fsck), fsck
        for where in env.annex_json(client, "whereis", "--json", *files):
            held = {w["uuid"] for w in where["whereis"]}
            assert (uuid in held) == (where["file"] in files[5:]), where
            assert T.CLIENT in held, where
        # and the remote itself agrees: git-annex's plumbing on it (exit 1: not here)
        there = world.px if name == "px" else world.nodes[name]
        for f in files:
            key = env.annex(client, "lookupkey", f).stdout.strip()
            located = env.annex(there, "contentlocation", key, check=False)
            assert (located.returncode == 0) == (f in files[5:]), f
    finally:
        server.stop()
    if name == "node3":
        assert _settled(world, 0) == []  # closed at shutdown


def test_proxied_ssh_remote_killed_shell_is_reconnected(world: T.Topology) -> None:
    env, client = world.env, world.client
    remote = f"{REMOTE}-node3"
    server = _server(world, "-J2").start()
    try:
        _point(world, server)
        env.add_files(client, {"proxied-killed.txt": "killed between requests\n"})
        env.annex(client, "copy", "-q", "--to", remote, "proxied-killed.txt")
        (before,) = _node3_shells(world)
        os.kill(before, signal.SIGKILL)
        assert _settled(world, 0) == []
        # the pooled connection is dead: dropped and replaced, the client sees nothing of it
        env.annex(client, "drop", "-q", "proxied-killed.txt")
        env.annex(client, "get", "-q", "--from", remote, "proxied-killed.txt")
        after = _node3_shells(world)
        assert len(after) == 1, after
        assert after[0] != before, (before, after)
        assert _opened(server) == 2, server.stderr()
        (fsck,) = env.annex_json(client, "fsck", "--from", remote, "--json", "proxied-killed.txt")
        assert fsck["success"], fsck
    finally:
        server.stop()


def _journal(repo: Path) -> list[str]:
    """The files in a repository's git-annex journal (changes not yet committed)."""
    gitdir = repo / ".git" if (repo / ".git").is_dir() else repo
    journal = gitdir / "annex" / "journal"
    return sorted(p.name for p in journal.iterdir()) if journal.is_dir() else []


def test_idle_proxied_remote_connection_is_closed_and_reopened(world: T.Topology) -> None:
    """A proxied remote's pooled connection is closed once idle for `--proxy-idle` seconds
    (the reaper the cluster nodes share), so node3's git-annex-shell exits and commits its
    journal soon after the traffic stops; the next request opens a new connection. The
    hidden options make the idle time and the housekeeping tick short; ssh transports stay
    (`--ssh-idle` 60 s), so only the node connection is reaped."""
    env, client = world.env, world.client
    remote = f"{REMOTE}-node3"
    server = _server(
        world, "-J2", "--proxyconnections", "1", "--proxy-idle", "1", "--housekeeping", "0.2"
    ).start()
    try:
        _point(world, server)
        env.add_files(client, {"proxied-idle.txt": "reaped when idle\n"})
        env.annex(client, "copy", "-q", "--to", remote, "proxied-idle.txt")
        key = env.annex(client, "lookupkey", "proxied-idle.txt").stdout.strip()
        assert _opened(server) == 1, server.stderr()
        # idle for longer than --proxy-idle: reaped at a housekeeping tick, node3's shell ends
        assert _settled(world, 0) == [], server.stderr()
        assert _journal(world.nodes["node3"]) == []  # the shell committed on its way out
        assert env.annex(world.nodes["node3"], "contentlocation", key, check=False).returncode == 0
        assert _ssh_connections(server, world) == 1  # the transport itself is kept
        # the next request reconnects
        env.annex(client, "drop", "-q", "proxied-idle.txt")
        env.annex(client, "get", "-q", "--from", remote, "proxied-idle.txt")
        assert _opened(server) == 2, server.stderr()
        assert (client / "proxied-idle.txt").read_text() == "reaped when idle\n"
    finally:
        server.stop()


# -- the ssh transports under the node connections: closed once idle -------------------------------


def _ssh_connections(server: H.P2PHttpServer, topo: T.Topology) -> int:
    """TCP connections the server process holds to the private sshd (one per ssh transport)."""
    return procs.tcp_connections(server.pid, topo.sshd.port)


def _ssh_settled(server: H.P2PHttpServer, topo: T.Topology, want: int) -> int:
    deadline = time.monotonic() + SETTLE
    count = _ssh_connections(server, topo)
    while count != want and time.monotonic() < deadline:
        time.sleep(0.1)
        count = _ssh_connections(server, topo)
    return count


def test_idle_ssh_transport_is_closed_and_reopened(world: T.Topology) -> None:
    """The server's housekeeping closes an ssh transport nothing has used for `--ssh-idle`
    seconds (prune_ssh_pool); the next request to the ssh node opens a new one. Hidden test
    options make the idle time and the housekeeping tick short; `--proxyconnections 0` keeps no
    node connection (no channel) on the transport between requests."""
    server = _server(
        world, "-J2", "--proxyconnections", "0", "--ssh-idle", "1", "--housekeeping", "0.2"
    ).start()
    try:
        key = _key_on_node3(world, server, "ssh-idle.txt", 1000)
        assert _ssh_connections(server, world) == 0  # nothing reached node3 yet
        # node3's copy locked through its proxied remote (a cluster does not lock content) and
        # kept locked: node3's channel, so its transport, is in use
        _, held = server.endpoint.keep_locked(T.N3, key, T.CLIENT)
        try:
            assert _ssh_settled(server, world, 1) == 1
            assert len(_node3_shells(world)) == 1
        finally:
            held.sendall(b'f\r\n{"unlock":true}\r\n0\r\n\r\n')
            held.recv(1024)  # the keeplocked answer: the lock is released
            held.close()
        # unused now: closed after the idle time, at a housekeeping tick
        assert _ssh_settled(server, world, 0) == 0, server.stderr()
        assert _settled(world, 0) == []  # node3's shell ended with its transport
        # the next request (to the cluster, which finds the key on node3 alone) reconnects
        assert _checkpresent(server, world, key)
        assert _get(server, world, key) == (world.client / "ssh-idle.txt").read_bytes()
        assert _ssh_settled(server, world, 0) == 0
    finally:
        server.stop()


# -- shutdown: every node connection closed before the process ends --------------------------------


def _stopping(server: H.P2PHttpServer) -> bool:
    """The server has exited, or says it waits for node connections to close."""
    assert server.proc is not None
    return server.proc.poll() is not None or "stopping: waiting for" in server.stderr()


def _committed_location(env: annex_support.AnnexEnv, node: Path, key: str, uuid: str) -> bool:
    """The node's git-annex branch (the branch itself, not its journal) has a location line
    saying `uuid` holds `key`; git-annex says where the log lives (`examinekey`)."""
    log = env.annex(node, "examinekey", "--format=${hashdirlower}${key}.log", key).stdout
    text = env.git(node, "cat-file", "-p", f"git-annex:{log.strip()}", check=False)
    return any(line.split()[1:] == ["1", uuid] for line in text.splitlines())


def test_sigterm_waits_for_a_node_connection_closing_in_the_background(
    world: T.Topology,
) -> None:
    """SIGTERM while the reaper is closing node3's idle connection: the server waits for that
    close, so node3's git-annex-shell ends by end of input and commits its journal before the
    server process exits. The test holds node3's `journal.lck` (as another git-annex would), so
    the shell's commit, and with it the background close, is in progress when SIGTERM arrives,
    and lets go only once the server says it waits. When the server is gone no shell is left on
    node3, every node's journal is empty and its git-annex branch has the location line."""
    env, client = world.env, world.client
    node3 = world.nodes["node3"]
    server = _server(
        world, "-J2", "--proxyconnections", "1", "--proxy-idle", "5", "--housekeeping", "0.2"
    ).start()
    lock_fd: int | None = None
    try:
        _point(world, server)
        env.add_files(client, {"closing.txt": "closed in the background at shutdown\n"})
        key = env.annex(client, "lookupkey", "closing.txt").stdout.strip()
        env.annex(client, "copy", "-q", "--to", f"{REMOTE}-mycluster", "closing.txt")
        journal_lock = node3 / "annex" / "journal.lck"
        lock_fd = os.open(journal_lock, os.O_RDWR)
        fcntl.lockf(lock_fd, fcntl.LOCK_EX)
        # node3's pooled shell has recorded the copy in its journal, not committed yet
        assert _journal(node3) != []
        (shell,) = _node3_shells(world)
        # idle for --proxy-idle: the reaper closes the connection on a background thread; the
        # shell, at end of input, waits for the journal lock to commit
        deadline = time.monotonic() + SETTLE
        while shell not in leftovers.lock_waiters(journal_lock) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert shell in leftovers.lock_waiters(journal_lock), server.stderr()
        os.kill(server.pid, signal.SIGTERM)
        deadline = time.monotonic() + SETTLE
        while not _stopping(server) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.close(lock_fd)  # the shell may commit now
        lock_fd = None
        assert server.proc is not None
        assert server.proc.wait(timeout=SETTLE) == 0, server.stderr()
        # the server ended only after node3's shell did: none left, its journal committed
        assert _node3_shells(world) == [], server.stderr()
        assert "still open" not in server.stderr(), server.stderr()
        for name in ("node1", "node2", "node3"):
            node = world.nodes[name]
            assert _journal(node) == [], name
            assert _committed_location(env, node, key, world.uuids[name]), name
            (fsck,) = env.annex_json(node, "fsck", "--fast", "--json", "--key", key)
            assert fsck["success"], (name, fsck)
    finally:
        if lock_fd is not None:
            os.close(lock_fd)
        server.stop()
