"""`--proxyconnections` and `--clusterjobs` for real: node connections kept between requests.

The topology of the gateway tests (tests/gateway/topology.py): the cluster's node3 is reached
over the private sshd and served there by the real `git-annex-shell`, so each connection the
server opens to it is one `git-annex-shell p2pstdio <node3>` process on the node, which the
tests count. A key is put on node3 alone (through the gateway's proxied `origin-node3`), so a
cluster request for it talks to node3 and to no other node.
"""

from __future__ import annotations

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
from tests.support import p2phttp as H
from tests.support import procs
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


def _node3_shells(topo: T.Topology) -> list[int]:
    """PIDs of the git-annex-shell processes serving a p2pstdio connection to node3."""
    node3 = str(topo.nodes["node3"])
    return sorted(
        p.pid
        for p in procs.mentioning(node3)
        if "p2pstdio" in p.argv and p.exe_name in ("git-annex-shell", "git-annex")
    )


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
    (so the gateway's location log says node3 holds it); its key."""
    env, client = topo.env, topo.client
    _point(topo, server)
    env.add_files(client, {name: os.urandom(size // 2).hex()})
    env.annex(client, "copy", "-q", "--to", f"{REMOTE}-node3", name)
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
