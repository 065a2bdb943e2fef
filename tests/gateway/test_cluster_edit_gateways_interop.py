"""`annextui cluster rename|delete` on a cluster with two gateways (tests/gateway/topology.py:
gw with node1..node3, gw2 with node4, each extending `mycluster` to the other).

`--gateway PATH` changes the other gateway in the same run; without it the other gateway is
named with the command to run there. Judged by real git-annex clients of both gateways.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.gateway import topology as T
from tests.gateway.test_gateway_interop import fsck_node

pytestmark = [pytest.mark.ssh, pytest.mark.slow]


def annextui(topo: T.Topology, gw: Path, *args: str) -> str:
    res = topo.env.run([sys.executable, "-m", "annextui", "-C", str(gw), *args], check=False)
    assert res.returncode == 0, res.stderr
    return res.stdout


def refreshed_info(topo: T.Topology, client: Path, remote: str) -> str:
    topo.env.git(client, "fetch", "-q", remote)
    topo.env.annex(client, "merge", "-q")
    return topo.env.annex(client, "info", remote).stdout


@pytest.fixture(scope="module")
def topo2(topo: T.Topology) -> T.Topology:
    T.add_second_gateway(topo)
    return topo


def test_rename_both_gateways_then_delete(topo2: T.Topology) -> None:
    topo, env = topo2, topo2.env
    gw2, cl2 = topo.gw2, topo.client2
    assert gw2 is not None
    assert cl2 is not None
    cu = topo.cluster_uuid

    out = annextui(
        topo, topo.gw, "cluster", "rename", "mycluster", "renamed", "--gateway", str(gw2), "--json"
    )
    record = json.loads(out)
    assert record["other-gateways"] == []  # gw2 was changed, nothing left to run there
    assert [a["uuid"] for a in record["applied-on"]] == [T.GW2]
    assert env.git(gw2, "config", "annex.cluster.renamed") == cu
    assert env.git(gw2, "config", "remote.node4.annex-cluster-node") == "renamed"
    assert env.git(gw2, "config", "remote.origin.annex-cluster-gateway") == cu

    assert "gateway to cluster: origin-renamed" in refreshed_info(topo, topo.client, "origin")
    info2 = refreshed_info(topo, cl2, "gw2")
    assert "gateway to cluster: gw2-renamed" in info2
    assert "gw2-mycluster" not in info2
    body = os.urandom(12_000)
    env.add_files(cl2, {"two/a.bin": body})
    env.annex(cl2, "copy", "--to", "gw2-renamed", "two")
    env.annex(cl2, "drop", "two")
    env.annex(cl2, "get", "--from", "gw2-renamed", "two")
    assert (cl2 / "two" / "a.bin").read_bytes() == body

    # without --gateway, the other gateway is named with what to run there
    out = annextui(topo, topo.gw, "cluster", "delete", "renamed")
    assert "Gateway gw2 (" in out
    assert "run `annextui cluster delete renamed` there" in out
    assert env.git(gw2, "config", "annex.cluster.renamed") == cu  # untouched until then
    annextui(topo, gw2, "cluster", "delete", "renamed")
    assert "gateway to cluster" not in refreshed_info(topo, cl2, "gw2")
    assert "gateway to cluster" not in refreshed_info(topo, topo.client, "origin")
    for node in topo.nodes.values():
        fsck_node(topo, node)
    for gw in (topo.gw, gw2):
        recs = env.annex_json(gw, "fsck", "--fast", "--all", check=False)
        assert all(r["success"] for r in recs), gw
