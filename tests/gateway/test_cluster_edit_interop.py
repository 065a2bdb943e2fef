"""`annextui cluster rename` and `cluster delete` on a gateway, judged by real git-annex clients.

Topology: tests/gateway/topology.py (gateway `gw` serving through annextui-shell over a real
sshd, nodes node1..node3 of `mycluster`, configured by git-annex itself). After each command a
real client fetches the gateway's branch and must see the cluster's new name (or none), reach
content through it, and every node and the gateway must pass a real `git annex fsck`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.gateway import topology as T
from tests.gateway.test_gateway_interop import client_whereis, fsck_node, objects

pytestmark = [pytest.mark.ssh, pytest.mark.slow]

NODES = ("node1", "node2", "node3")


def annextui(topo: T.Topology, *args: str, check: bool = True) -> tuple[int, str, str]:
    res = topo.env.run([sys.executable, "-m", "annextui", "-C", str(topo.gw), *args], check=False)
    if check:
        assert res.returncode == 0, res.stderr
    return res.returncode, res.stdout, res.stderr


def client_refresh(topo: T.Topology) -> str:
    """What a client does to learn the gateway's records: fetch and merge its git-annex
    branch; its remotes then come from the gateway's proxy.log. Returns `info origin`."""
    topo.env.git(topo.client, "fetch", "-q", "origin")
    topo.env.annex(topo.client, "merge", "-q")
    return topo.env.annex(topo.client, "info", "origin").stdout


def current_name(topo: T.Topology) -> str:
    out = topo.env.git(topo.gw, "config", "--get-regexp", r"^annex\.cluster\.")
    names = [line.split()[0].removeprefix("annex.cluster.") for line in out.splitlines()]
    assert len(names) == 1, out
    return names[0]


def gateway_fsck_clean(topo: T.Topology) -> None:
    recs = topo.env.annex_json(topo.gw, "fsck", "--fast", "--all", check=False)
    assert all(r["success"] for r in recs), [r for r in recs if not r["success"]]


def test_rename_is_seen_by_a_client(topo: T.Topology) -> None:
    env, cl = topo.env, topo.client
    old = current_name(topo)
    body = os.urandom(30_000)
    env.add_files(cl, {"ren/a.bin": body})
    env.annex(cl, "copy", "--to", f"origin-{old}", "ren")

    # refused: unknown name (1), invalid name (2), a remote's name (1); nothing changed
    assert annextui(topo, "cluster", "rename", "nosuch", "x", check=False)[0] == 1
    assert annextui(topo, "cluster", "rename", old, "bad name", check=False)[0] == 2
    code, _, err = annextui(topo, "cluster", "rename", old, "node1", check=False)
    assert code == 1
    assert "node1" in err
    assert current_name(topo) == old

    _, out, _ = annextui(topo, "cluster", "rename", old, "renamed", "--json")
    record = json.loads(out)
    assert record["success"]
    assert record["uuid"] == topo.cluster_uuid
    assert current_name(topo) == "renamed"
    for n in NODES:
        assert env.git(topo.gw, "config", f"remote.{n}.annex-cluster-node") == "renamed"

    info = client_refresh(topo)
    assert "gateway to cluster: origin-renamed" in info
    assert f"origin-{old}" not in info
    # the description git-annex's initcluster would have written for the new name
    gw_info = json.loads(env.annex(topo.gw, "info", "--fast", "--json").stdout)
    described = {r["uuid"]: r["description"] for r in gw_info["semitrusted repositories"]}
    assert described[topo.cluster_uuid] == "cluster renamed"
    ours = json.loads(annextui(topo, "info", "--json")[1])
    assert [(c["uuid"], c["names"]) for c in ours["clusters"]] == [(topo.cluster_uuid, ["renamed"])]

    env.annex(cl, "drop", "ren")
    env.annex(cl, "get", "--from", "origin-renamed", "ren")
    assert (cl / "ren" / "a.bin").read_bytes() == body
    assert topo.cluster_uuid in client_whereis(topo, cl, "ren/a.bin")["ren/a.bin"]
    gone = env.annex(cl, "get", "--from", f"origin-{old}", "ren", check=False)
    assert gone.returncode != 0
    for n in NODES:
        fsck_node(topo, topo.nodes[n])
    gateway_fsck_clean(topo)


def test_delete_leaves_nodes_and_content(topo: T.Topology) -> None:
    env, cl = topo.env, topo.client
    name = current_name(topo)
    env.add_files(cl, {"del/b.bin": os.urandom(25_000)})
    env.annex(cl, "copy", "--to", f"origin-{name}", "del")
    held = {n: objects(topo.nodes[n]) for n in NODES}
    assert any(held.values())

    assert annextui(topo, "cluster", "delete", "nosuch", check=False)[0] == 1
    _, out, _ = annextui(topo, "cluster", "delete", name)
    assert f"cluster delete {name} ok" in out

    assert topo.env.git(topo.gw, "config", "--get-regexp", r"^annex\.cluster\.", check=False) == ""
    info = client_refresh(topo)
    assert "gateway to cluster" not in info
    assert f"origin-{name}" not in info
    # readers no longer count the cluster for its old nodes' keys: it is dead, and its node
    # set is empty as updatecluster records a cluster that lost its last node
    assert topo.cluster_uuid not in client_whereis(topo, cl, "del/b.bin")["del/b.bin"]
    cluster_log = env.git(cl, "cat-file", "-p", "git-annex:cluster.log")
    newest = max(cluster_log.splitlines(), key=lambda ln: float(ln.split()[0].rstrip("s")))
    assert newest.split()[1:] == [topo.cluster_uuid]
    gw_info = json.loads(env.annex(topo.gw, "info", "--fast", "--json").stdout)
    listed = {r["uuid"] for r in gw_info["semitrusted repositories"]}
    assert topo.cluster_uuid not in listed
    assert {T.N1, T.N2, T.N3} <= listed
    ours = json.loads(annextui(topo, "info", "--json")[1])
    assert ours["clusters"] == []
    assert topo.cluster_uuid not in {r["uuid"] for r in ours["semitrusted repositories"]}

    for n in NODES:  # nodes and their content untouched
        assert objects(topo.nodes[n]) == held[n]
        fsck_node(topo, topo.nodes[n])
    gateway_fsck_clean(topo)


def test_cli_group_without_action_is_a_usage_error(topo: T.Topology) -> None:
    code, _, err = annextui(topo, "cluster", check=False)
    assert code == 2
    assert "rename" in err
    assert Path(topo.gw).is_dir()
