"""annextui-shell as a cluster gateway, driven by real git-annex clients over a real OpenSSH sshd.

Topology (tests/gateway/topology.py, configured by git-annex itself): gateway `gw` with local
nodes node1 and node2, ssh node node3 (real git-annex-shell behind sshd), a plain proxied remote
`px`, balanced preferred content (`balanced=backup`); a second gateway `gw2` with node4, both
gateways extending `mycluster` to each other. Clients use `annex-shell = annextui-shell`.

Every test checks real outcomes: objects on the nodes (verified by a real `git annex fsck` in
each node), the client's and the gateway's location logs (`whereis` on both sides), and what
git-annex itself predicts (`find --want-get-by`).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.gateway import topology as T
from tests.support import annex as annex_support
from tests.support import procs
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.ssh, pytest.mark.slow]

CLUSTER = f"origin-{T.CLUSTER_NAME}"


# -- helpers ---------------------------------------------------------------------------------------


def objects(repo: Path) -> set[str]:
    return {p.name for p in (repo / "annex" / "objects").rglob("*") if p.is_file()}


def client_whereis(topo: T.Topology, client: Path, *files: str) -> dict[str, set[str]]:
    recs = topo.env.annex_json(client, "whereis", *files, check=False)
    return {r["file"]: {w["uuid"] for w in r.get("whereis", [])} for r in recs}


def gateway_whereis(topo: T.Topology, gw: Path, key: str) -> set[str]:
    recs = topo.env.annex_json(gw, "whereis", "--key", key, check=False)
    return {w["uuid"] for r in recs for w in r.get("whereis", [])}


def holders(topo: T.Topology, key: str) -> set[str]:
    """Node UUIDs whose object store really holds the key."""
    return {topo.uuids[n] for n, path in topo.nodes.items() if key in objects(path)}


def fsck_node(topo: T.Topology, node: Path) -> None:
    """A real `git annex fsck` of every key the node's own branch mentions: content present is
    verified, and the node's location log agrees with its object store (nothing to fix)."""
    res = topo.env.annex(node, "fsck", "--all", "--json", "--json-error-messages", check=False)
    present = objects(node)
    for rec in annex_support.parse_json_lines(res.stdout):
        notes = " ".join(rec.get("error-messages", [])) + str(rec.get("note", ""))
        assert "fixing" not in notes, rec
        if rec["key"] in present:
            assert rec["success"], rec
        else:  # gone: the node's own log must say so (no "content is missing" repair)
            assert "missing" not in notes or "No known copies" in notes, rec


def add(topo: T.Topology, client: Path, files: dict[str, bytes]) -> dict[str, str]:
    return topo.env.add_files(client, files)


def want_get_by(topo: T.Topology, client: Path, remote: str, path: str) -> set[str]:
    out = topo.env.annex(client, "find", "--want-get-by", remote, path).stdout
    return set(out.split())


# -- the client's view -----------------------------------------------------------------------------


def test_client_sees_the_proxied_remotes(topo: T.Topology) -> None:
    info = topo.env.annex(topo.client, "info", "origin").stdout
    assert f"gateway to cluster: {CLUSTER}" in info
    for name in ("origin-node1", "origin-node2", "origin-node3", "origin-px"):
        assert name in info


# -- cluster: copy, whereis, fsck, get, drop ------------------------------------------------------


def test_copy_to_cluster_follows_balanced_preferred_content(topo: T.Topology) -> None:
    env, cl = topo.env, topo.client
    files = {f"bal/f{i}.bin": os.urandom(1000 + i) for i in range(9)}
    files["bal/big.bin"] = os.urandom(5_000_000)
    keys = add(topo, cl, files)
    # what git-annex itself says each node wants, before anything is placed
    predicted = {
        n: want_get_by(topo, cl, f"origin-{n}", "bal") for n in ("node1", "node2", "node3")
    }
    env.annex(cl, "copy", "--to", CLUSTER, "bal")
    for n in ("node1", "node2", "node3"):
        placed = {f for f, k in keys.items() if k in objects(topo.nodes[n])}
        assert placed == predicted[n], n
    # every file landed exactly once, and client and gateway agree on where
    cw = client_whereis(topo, cl, "bal")
    for f, k in keys.items():
        nodes = holders(topo, k)
        assert len(nodes) == 1, f
        assert cw[f] - {T.CLIENT, topo.cluster_uuid} == nodes
        assert gateway_whereis(topo, topo.gw, k) - {topo.cluster_uuid} == nodes
        assert topo.cluster_uuid in cw[f]  # the client derives cluster presence from nodes
    for n in ("node1", "node2", "node3"):
        recs = env.annex_json(cl, "fsck", "--from", f"origin-{n}", "bal", check=False)
        assert recs
        assert all(r["success"] for r in recs), recs
        fsck_node(topo, topo.nodes[n])
    # the gateway committed its journal when the client's connection ended
    assert not any((topo.gw / "annex" / "journal").glob("*"))


def test_get_and_drop_from_cluster(topo: T.Topology) -> None:
    env, cl = topo.env, topo.client
    files = {f"gd/f{i}.bin": os.urandom(20_000 + i) for i in range(6)}
    keys = add(topo, cl, files)
    env.annex(cl, "copy", "--to", CLUSTER, "gd")
    env.annex(cl, "drop", "gd")
    env.annex(cl, "get", "--from", CLUSTER, "gd")
    for f in files:
        assert (cl / f).read_bytes() == files[f]
    assert all(r["success"] for r in env.annex_json(cl, "fsck", "gd"))
    # a stale copy the gateway does not know about: drop must remove it from every node
    stale = keys["gd/f0.bin"]
    env.annex(cl, "copy", "--to", "origin-node1", "gd/f0.bin")
    env.annex(cl, "copy", "--to", "origin-node2", "gd/f0.bin")
    assert len(holders(topo, stale)) >= 2
    env.annex(cl, "drop", "--from", CLUSTER, "gd")
    for f, k in keys.items():
        assert holders(topo, k) == set(), f
        assert gateway_whereis(topo, topo.gw, k) == set()
    assert all(w <= {T.CLIENT} for w in client_whereis(topo, cl, "gd").values())
    for n in ("node1", "node2", "node3"):
        fsck_node(topo, topo.nodes[n])


def test_single_proxied_remotes(topo: T.Topology) -> None:
    env, cl = topo.env, topo.client
    keys = add(topo, cl, {"px/a.bin": os.urandom(300_000), "px/b.bin": os.urandom(2_000)})
    env.annex(cl, "copy", "--to", "origin-px", "px")  # local node behind the ssh hop
    env.annex(cl, "copy", "--to", "origin-node3", "px/b.bin")  # ssh node behind the ssh hop
    assert set(keys.values()) <= objects(topo.px)
    assert keys["px/b.bin"] in objects(topo.nodes["node3"])
    assert gateway_whereis(topo, topo.gw, keys["px/a.bin"]) == {T.PX}
    assert gateway_whereis(topo, topo.gw, keys["px/b.bin"]) - {topo.cluster_uuid} == {T.PX, T.N3}
    assert all(r["success"] for r in env.annex_json(cl, "fsck", "--from", "origin-px", "px"))
    env.annex(cl, "drop", "px")
    env.annex(cl, "get", "--from", "origin-node3", "px/b.bin")
    env.annex(cl, "get", "--from", "origin-px", "px/a.bin")
    env.annex(cl, "drop", "--from", "origin-px", "px")
    env.annex(cl, "drop", "--from", "origin-node3", "px/b.bin")
    assert objects(topo.px) & set(keys.values()) == set()
    assert gateway_whereis(topo, topo.gw, keys["px/a.bin"]) == set()
    fsck_node(topo, topo.px)
    fsck_node(topo, topo.nodes["node3"])


# -- faults ----------------------------------------------------------------------------------------


def _set_wanted(topo: T.Topology, gw: Path, node: str, expr: str) -> None:
    topo.env.annex(gw, "wanted", node, expr)


def test_node_unreachable_falls_back_to_other_nodes(topo: T.Topology) -> None:
    env, cl = topo.env, topo.client
    keys: dict[str, str] = {}
    # balanced= picks a node by key, so random content may leave node2 out of a batch; add
    # batches until node2 wants something, or this test would prove nothing about falling back
    for batch in range(8):
        files = {f"down/f{batch}-{i}.bin": os.urandom(4000 + i) for i in range(9)}
        keys |= add(topo, cl, files)
        if want_get_by(topo, cl, "origin-node2", "down"):
            break
    assert want_get_by(topo, cl, "origin-node2", "down")  # some files would go to node2
    moved = topo.nodes["node2"].with_name("node2.away")
    topo.nodes["node2"].rename(moved)
    try:
        res = env.annex(cl, "copy", "--to", CLUSTER, "down")
        assert "failed" not in res.stdout
    finally:
        moved.rename(topo.nodes["node2"])
    cw = client_whereis(topo, cl, "down")
    for f, k in keys.items():
        nodes = holders(topo, k)
        assert nodes, f
        assert T.N2 not in nodes
        assert cw[f] - {T.CLIENT, topo.cluster_uuid} == nodes  # told exactly where it went
        assert gateway_whereis(topo, topo.gw, k) - {topo.cluster_uuid} == nodes
    for n in ("node1", "node3"):
        fsck_node(topo, topo.nodes[n])
    env.annex(cl, "drop", "--from", CLUSTER, "down")


def _tmp_size(repo: Path, key: str) -> int:
    try:
        return (repo / "annex" / "tmp" / key).stat().st_size
    except FileNotFoundError:
        return 0


def test_node_killed_mid_fan_out(topo: T.Topology) -> None:
    """node1 and node3 both want the file; node3's shell is killed mid-body: the upload still
    succeeds on node1, and only node1 is recorded anywhere."""
    env, cl = topo.env, topo.client
    data = os.urandom(120 << 20)
    keys = add(topo, cl, {"kill/big.bin": data})
    key = keys["kill/big.bin"]
    for n in ("node1", "node3"):
        _set_wanted(topo, topo.gw, n, "include=kill/* or groupwanted")
    try:
        proc = subprocess.Popen(
            ["git", "annex", "copy", "--to", CLUSTER, "kill"],
            cwd=cl,
            env=env.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        node3 = topo.nodes["node3"]
        wait_until(lambda: _tmp_size(node3, key) > (8 << 20), "8 MiB of the upload on node3")
        shells = [
            p
            for p in procs.mentioning(str(node3))
            if "p2pstdio" in p.cmdline and p.exe_name not in ("ssh", "sh", "bash", "sshd")
        ]
        assert shells
        procs.kill_pids([p.pid for p in shells])
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    finally:
        for n in ("node1", "node3"):
            _set_wanted(topo, topo.gw, n, "groupwanted")
    assert key in objects(topo.nodes["node1"])
    assert key not in objects(topo.nodes["node3"])
    assert client_whereis(topo, cl, "kill/big.bin")["kill/big.bin"] - {
        T.CLIENT,
        topo.cluster_uuid,
    } == holders(topo, key)
    assert T.N3 not in gateway_whereis(topo, topo.gw, key)
    fsck_node(topo, topo.nodes["node1"])
    fsck_node(topo, node3)
    env.annex(cl, "drop", "--from", CLUSTER, "kill")


def test_client_killed_mid_upload_resumes(topo: T.Topology) -> None:
    env, cl = topo.env, topo.client
    data = os.urandom(150 << 20)
    keys = add(topo, cl, {"resume/big.bin": data})
    key = keys["resume/big.bin"]
    proc = subprocess.Popen(
        ["git", "annex", "copy", "--to", CLUSTER, "resume"],
        cwd=cl,
        env=env.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    target = {}

    def started() -> bool:
        for n, path in topo.nodes.items():
            if _tmp_size(path, key) > (16 << 20):
                target["node"] = n
                return True
        return False

    wait_until(started, "16 MiB of the upload on a node")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    node = topo.nodes[target["node"]]
    wait_until(lambda: not procs.serving(str(topo.gw)), "the gateway's sessions to end")
    # ... and the node's own shell: an ssh node's may still be writing what it had read when
    # the gateway went (CI once saw the resume offset 95 KB past a size taken before that)
    wait_until(lambda: not procs.serving(str(node)), "the node's sessions to end")
    partial = _tmp_size(node, key)
    assert 0 < partial < len(data)
    res = env.annex(cl, "copy", "--debug", "--to", CLUSTER, "resume")
    m = re.search(r"P2P < PUT-FROM (\d+)", res.stderr)
    assert m, res.stderr[-3000:]
    assert int(m.group(1)) == partial  # resumed where the killed upload stopped
    assert key in objects(node)
    assert _tmp_size(node, key) == 0
    fsck_node(topo, node)
    assert client_whereis(topo, cl, "resume/big.bin")["resume/big.bin"] >= {
        topo.uuids[target["node"]]
    }
    env.annex(cl, "drop", "--from", CLUSTER, "resume")


def test_four_clients_upload_at_once(topo: T.Topology) -> None:
    env = topo.env
    clients = []
    for i in range(4):
        c = env.clone(
            f"ssh://gw{topo.gw}", topo.root / f"multi{i}", origin="origin", annex_init=False
        )
        env.git(c, "config", "remote.origin.annex-shell", "annextui-shell")
        env.annex(c, "init", "-q", f"multi{i}")
        clients.append(c)
    shared = os.urandom(3_000_000)  # the same file from every client at once
    keys: dict[Path, dict[str, str]] = {}
    for i, c in enumerate(clients):
        files = {f"multi/c{i}-{j}.bin": os.urandom(50_000 + j) for j in range(8)}
        files["multi/shared.bin"] = shared
        keys[c] = env.add_files(c, files)
    running = [
        subprocess.Popen(
            ["git", "annex", "copy", "--to", CLUSTER, "multi"],
            cwd=c,
            env=env.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        for c in clients
    ]
    outcomes = [p.communicate(timeout=300) for p in running]
    for c, (out, err) in zip(clients, outcomes, strict=True):
        for f, k in keys[c].items():
            if f == "multi/shared.bin":
                continue  # one upload wins the node's transfer lock, others may fail: harmless
            assert holders(topo, k), (f, out, err)
    shared_key = keys[clients[0]]["multi/shared.bin"]
    assert holders(topo, shared_key)
    for c in clients:
        env.annex(c, "copy", "--to", CLUSTER, "multi")  # a retry completes anything that lost
        for f, k in keys[c].items():
            nodes = holders(topo, k)
            assert len(nodes) == 1, f
            assert gateway_whereis(topo, topo.gw, k) - {topo.cluster_uuid} == nodes
    for n in ("node1", "node2", "node3"):
        fsck_node(topo, topo.nodes[n])
    env.annex(clients[0], "drop", "--from", CLUSTER, "multi")


def test_changed_host_key_is_refused(topo: T.Topology) -> None:
    env, cl, gw = topo.env, topo.client, topo.gw
    bad_known = topo.root / "bad_known_hosts"
    other = topo.root / "otherkey"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    port = topo.sshd.port
    keytype, pub = other.with_suffix(".pub").read_text().split()[:2]
    bad_known.write_text(f"[127.0.0.1]:{port} {keytype} {pub}\n")
    cfg = topo.root / "bad_ssh_config"
    cfg.write_text(
        topo.ssh_config.read_text().replace(
            f"UserKnownHostsFile {topo.sshd.known_hosts}", f"UserKnownHostsFile {bad_known}"
        )
    )
    old = env.git(gw, "config", "remote.node3.annex-ssh-options")
    env.git(gw, "config", "remote.node3.annex-ssh-options", f"-F {cfg}")
    try:
        add(topo, cl, {"hostkey/a.bin": os.urandom(7000)})
        res = env.annex(cl, "copy", "--to", "origin-node3", "hostkey", check=False)
        assert res.returncode != 0
        assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in res.stderr + res.stdout
        # the cluster still takes the content, on a node it can trust
        _set_wanted(topo, gw, "node3", "include=hostkey/* or groupwanted")
        try:
            env.annex(cl, "copy", "--to", CLUSTER, "hostkey")
        finally:
            _set_wanted(topo, gw, "node3", "groupwanted")
        k = env.annex_json(cl, "whereis", "hostkey/a.bin")[0]["key"]
        assert holders(topo, k)
        assert T.N3 not in holders(topo, k)
    finally:
        env.git(gw, "config", "remote.node3.annex-ssh-options", old)
    env.annex(cl, "drop", "--from", CLUSTER, "hostkey")


# -- a second gateway of the same cluster (added last: from here on gw also fans out to gw2) ------


@pytest.fixture(scope="module")
def topo2(topo: T.Topology) -> T.Topology:
    if topo.gw2 is None:
        T.add_second_gateway(topo)
    return topo


def test_two_gateway_cluster_without_loops(topo2: T.Topology) -> None:
    topo = topo2
    env = topo.env
    assert topo.client2 is not None
    assert topo.gw2 is not None
    cl2 = topo.client2
    info = env.annex(cl2, "info", "gw2").stdout
    assert "gateway to cluster: gw2-mycluster" in info
    assert "gw2-origin-node1" in info
    files = {f"two/f{i}.bin": os.urandom(3000 + i) for i in range(4)}
    keys = add(topo, cl2, files)
    env.annex(cl2, "copy", "--to", "gw2-mycluster", "two")
    # the client was told about node4 and the nodes behind the first gateway
    for f, k in keys.items():
        nodes = holders(topo, k)
        assert T.N4 in nodes
        assert len(nodes) == 2  # node4, plus one node1-3 picked by gw's balanced rule
        assert client_whereis(topo, cl2, f)[f] >= nodes
    env.annex(cl2, "drop", "two")
    env.annex(cl2, "get", "--from", "gw2-mycluster", "two")
    assert all((cl2 / f).read_bytes() == b for f, b in files.items())
    env.annex(cl2, "drop", "--from", "gw2-mycluster", "two")
    for k in keys.values():
        assert holders(topo, k) == set()
    for n in topo.nodes.values():
        fsck_node(topo, n)


def _raw_put(topo: T.Topology, host: str, repo: Path, bypass: str, data: bytes) -> list[str]:
    from annextui.backend.keys import key_for_content

    key = str(key_for_content(data, "SHA256E", ".bin"))
    cu = topo.cluster_uuid
    proc = subprocess.run(
        ["ssh", host, f"annextui-shell p2pstdio {repo} {T.CLIENT} --uuid {cu}"],
        input=(
            f"VERSION 4\nBYPASS {bypass}\nPUT loop.bin {key}\nDATA {len(data)}\n".encode()
            + data
            + b"VALID\n"
        ),
        capture_output=True,
        env=topo.env.env,
        timeout=60,
    )
    lines = proc.stdout.decode().splitlines()
    assert lines[0] == f"AUTH-SUCCESS {cu}", proc.stderr
    return [key, *lines[1:]]


def test_gateway_bypass_prevents_cycles(topo2: T.Topology) -> None:
    """A gateway asked with the other gateway in BYPASS uses only its own nodes: that is how a
    hop never comes back (each gateway adds itself to the set it passes on)."""
    topo = topo2
    assert topo.gw2 is not None
    key, version, putfrom, reply = _raw_put(topo, "gw2host", topo.gw2, T.GW, os.urandom(5000))
    assert (version, putfrom) == ("VERSION 4", "PUT-FROM 0")
    assert reply.split()[0] == "SUCCESS-PLUS", reply
    assert set(reply.split()[1:]) == {T.N4} == holders(topo, key)  # gw not used
    key, _, _, reply = _raw_put(topo, "gw", topo.gw, T.GW2, os.urandom(5000))
    assert reply.split()[0] == "SUCCESS-PLUS", reply
    placed = set(reply.split()[1:])
    assert placed == holders(topo, key)
    assert len(placed) == 1
    assert placed <= {T.N1, T.N2, T.N3}  # gw2 (bypassed) not used
