"""GET from a cluster without reading the location log first (ClusterPeer._certain_holder),
driven by a real git-annex client over sshd through annextui-shell.

Topology: tests/gateway/topology.py (local nodes node1 and node2 at cost 100, ssh node3 at
200). The fast path serves an idle in-process node of the lowest cost whose object file is
there; everything else goes by the gateway's location log as before. Each client `get` first
fetches WARM files, so the session is past the point where it opens its local nodes for the
fast path (cluster/peer.py WARM_GETS), then the files under test, in one P2P session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from annextui.proxycore.cluster.peer import WARM_GETS
from annextui.proxycore.transfers import Direction, Transfer, TransferRecorder
from tests.gateway import topology as T
from tests.gateway.test_gateway_interop import fsck_node, gateway_whereis, holders

pytestmark = [pytest.mark.ssh, pytest.mark.slow]

CLUSTER = f"origin-{T.CLUSTER_NAME}"


def _files(prefix: str, tested: dict[str, bytes]) -> dict[str, bytes]:
    """The files under test, after WARM_GETS warm-up files in `git annex get` order."""
    warm = {f"{prefix}/0warm{i}.bin": os.urandom(3000 + i) for i in range(WARM_GETS)}
    return warm | {f"{prefix}/{name}": data for name, data in tested.items()}


def _place(
    topo: T.Topology, files: dict[str, bytes], where: dict[str, list[str]]
) -> dict[str, str]:
    """Add the files; warm-up files go to the cluster, the others to the named nodes."""
    env, cl = topo.env, topo.client
    keys = env.add_files(cl, files)
    to: dict[str, list[str]] = {}  # one copy per remote (a session each), not one per file
    for f in files:
        for node in where.get(f.rsplit("/", 1)[1], ["cluster"]):
            to.setdefault(CLUSTER if node == "cluster" else f"origin-{node}", []).append(f)
    for remote, names in to.items():
        env.annex(cl, "copy", "-q", "--to", remote, "--", *names)
    env.annex(cl, "drop", "-q", "--force", *files)
    return keys


def _object(topo: T.Topology, node: str, key: str) -> Path:
    (found,) = [p for p in (topo.nodes[node] / "annex" / "objects").rglob(key) if p.is_file()]
    return found


@contextmanager
def _writable(path: Path) -> Iterator[Path]:
    """The frozen object file (and its directory) writable for a moment, as a disk fault or
    an admin behind the gateway's back would change it."""
    modes = [(p, p.stat().st_mode) for p in (path.parent, path)]
    for p, mode in modes:
        p.chmod(mode | 0o200)
    try:
        yield path
    finally:
        for p, mode in modes:
            if p.exists():
                p.chmod(mode)


def _get(topo: T.Topology, prefix: str) -> tuple[int, str]:
    res = topo.env.annex(topo.client, "get", "--from", CLUSTER, prefix, check=False)
    return res.returncode, res.stdout + res.stderr


@contextmanager
def _busy(topo: T.Topology, node_uuid: str) -> Iterator[None]:
    """A relayed transfer with the node in flight in the gateway (another client's, as far
    as the gateway can tell): its lock held by this process."""
    other = "SHA256E-s1--" + "b" * 64 + ".bin"
    rec = TransferRecorder.start(topo.gw / "annex", Transfer(Direction.DOWNLOAD, node_uuid, other))
    assert rec is not None
    try:
        yield
    finally:
        rec.finish(True)


@pytest.mark.parametrize("node", ["node1", "node3"])
def test_unlogged_copy_is_served(topo: T.Topology, node: str) -> None:
    """The gateway's log says the node dropped the key, its object file says otherwise: the
    file is the truth a GET can use (git-annex-shell on the node would serve it too). node1
    is found by its stat; node3, the cluster's one ssh node, is asked without the log when no
    in-process node has the file (_sole_remote)."""
    env, cl = topo.env, topo.client
    uuid = topo.uuids[node]
    prefix = f"unlogged-{node}"
    files = _files(prefix, {"z.bin": os.urandom(50_000)})
    keys = _place(topo, files, {"z.bin": [node]})
    key = keys[f"{prefix}/z.bin"]
    env.annex(topo.gw, "setpresentkey", key, uuid, "0")
    assert gateway_whereis(topo, topo.gw, key) == set()
    assert holders(topo, key) == {uuid}
    rc, out = _get(topo, prefix)
    assert rc == 0, out
    for f, data in files.items():
        assert (cl / f).read_bytes() == data, f
    assert all(r["success"] for r in env.annex_json(cl, "fsck", prefix))
    env.annex(topo.gw, "setpresentkey", key, uuid, "1")  # as it really is, for fsck
    fsck_node(topo, topo.nodes[node])


def test_copy_removed_behind_our_back_fails_over_to_the_ssh_node(topo: T.Topology) -> None:
    """Logged on node1 (cheapest) and node3; node1's file is gone: node3 serves it."""
    env, cl = topo.env, topo.client
    files = _files("gone", {f"z{i}.bin": os.urandom(40_000 + i) for i in range(3)})
    where = {f"z{i}.bin": ["node1", "node3"] for i in range(3)}
    keys = _place(topo, files, where)
    removed = {}
    for i in range(3):
        key = keys[f"gone/z{i}.bin"]
        assert {T.N1, T.N3} <= gateway_whereis(topo, topo.gw, key)
        with _writable(_object(topo, "node1", key)) as obj:
            obj.unlink()
        removed[key] = obj
        assert holders(topo, key) == {T.N3}
    try:
        rc, out = _get(topo, "gone")
        assert rc == 0, out
        for f, data in files.items():
            assert (cl / f).read_bytes() == data, f
        assert all(r["success"] for r in env.annex_json(cl, "fsck", "gone"))
    finally:
        for key, obj in removed.items():  # put node1's copies back, as its own log says
            dirmode = obj.parent.stat().st_mode
            obj.parent.chmod(dirmode | 0o200)
            obj.write_bytes(files[next(f for f, k in keys.items() if k == key)])
            obj.chmod(0o444)
            obj.parent.chmod(dirmode)
    fsck_node(topo, topo.nodes["node1"])


@pytest.mark.parametrize(("busy", "idle"), [("node1", "node2"), ("node2", "node1")])
def test_busy_local_holder_is_skipped(topo: T.Topology, busy: str, idle: str) -> None:
    """Both local nodes hold the keys; the busy one is skipped. Its copies are damaged (same
    size), so a GET served from it fails the client's checksum: the get only succeeds if
    every key came from the idle node."""
    cl = topo.client
    prefix = f"spread-{busy}"
    # git-annex retries a download that failed its checksum once (forwardRetry): 16 keys
    # leave a GET that ignored the busy node (a coin toss per attempt) ~1 % to pass.
    tested = {f"z{i:02}.bin": os.urandom(30_000 + i) for i in range(16)}
    files = _files(prefix, tested)
    keys = _place(topo, files, {name: ["node1", "node2"] for name in tested})
    for name in tested:
        key = keys[f"{prefix}/{name}"]
        assert holders(topo, key) == {T.N1, T.N2}
        with _writable(_object(topo, busy, key)) as obj:
            obj.write_bytes(os.urandom(obj.stat().st_size))
    try:
        with _busy(topo, topo.uuids[busy]):
            rc, out = _get(topo, prefix)
        assert rc == 0, out
        for f, data in files.items():
            assert (cl / f).read_bytes() == data, f
    finally:
        # mend the damaged copies from the client's good ones, so the node's fsck is clean
        for name in tested:
            key = keys[f"{prefix}/{name}"]
            with _writable(_object(topo, busy, key)) as obj:
                obj.write_bytes(tested[name])
    fsck_node(topo, topo.nodes[busy])
    fsck_node(topo, topo.nodes[idle])


def test_key_nobody_has_fails_and_the_session_goes_on(topo: T.Topology) -> None:
    """Logged on node2, whose file is gone, and on no other node: node3 is asked first and
    answers no content (DATA 0, INVALID), node2 by the log has none either, so that file
    fails; the next files of the same session (on node3 and node1) still come."""
    env, cl = topo.env, topo.client
    tested = {"a-lost.bin": os.urandom(20_000), "b3.bin": os.urandom(21_000)}
    tested["c1.bin"] = os.urandom(22_000)
    files = _files("lost", tested)
    where = {"a-lost.bin": ["node2"], "b3.bin": ["node3"], "c1.bin": ["node1"]}
    keys = _place(topo, files, where)
    lost = keys["lost/a-lost.bin"]
    obj = _object(topo, "node2", lost)
    with _writable(obj):
        obj.unlink()
    assert holders(topo, lost) == set()
    assert T.N2 in gateway_whereis(topo, topo.gw, lost)
    try:
        rc, out = _get(topo, "lost")
        assert rc != 0, out
        assert not (cl / "lost/a-lost.bin").exists()  # its symlink points at no content
        came = [f for f in files if f != "lost/a-lost.bin"]
        for f in came:
            assert (cl / f).read_bytes() == files[f], f
        assert all(r["success"] for r in env.annex_json(cl, "fsck", *came))
    finally:
        env.annex(topo.gw, "setpresentkey", lost, T.N2, "0")  # as it now really is
    fsck_node(topo, topo.nodes["node3"])
    fsck_node(topo, topo.nodes["node1"])
