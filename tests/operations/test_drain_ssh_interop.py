"""Draining an ssh node: the gateway topology of tests/gateway (node3 reached over ssh through
paramiko, served by the real git-annex-shell), content placed by a real client through the
cluster; node3 is drained into the local node1 (GET and REMOVE over the P2P protocol), then
git-annex on the gateway checks what the location logs say."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import annextui
from tests.gateway import topology as T
from tests.gateway.conftest import topo  # the gateway tests' topology, one per module

__all__ = ["topo"]

pytestmark = [pytest.mark.ssh, pytest.mark.slow]


def _objects(repo: Path) -> set[str]:
    return {p.name for p in (repo / "annex" / "objects").rglob("*") if p.is_file()}


def test_drain_an_ssh_node_into_a_local_one(topo: T.Topology) -> None:
    env = topo.env
    files = {f"ssh/f{i}.bin": os.urandom(500 + 97 * i) for i in range(24)}
    files["ssh/big.bin"] = os.urandom(3_000_000)
    keys = env.add_files(topo.client, files)
    env.annex(topo.client, "copy", "-q", "--to", f"origin-{T.CLUSTER_NAME}", "ssh")
    on_node3 = _objects(topo.nodes["node3"]) & set(keys.values())
    assert on_node3  # balanced=backup put some there
    on_node1 = _objects(topo.nodes["node1"])

    argv = [sys.executable, "-m", "annextui", "cluster", "drain", "node3", "--to", "node1",
            "-C", str(topo.gw), "--json"]  # fmt: skip
    run_env = {**env.env, "PYTHONPATH": str(Path(annextui.__file__).parents[1])}
    proc = subprocess.run(argv, env=run_env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    job = json.loads(proc.stdout)["job"]
    assert job["state"] == "done"
    assert job["transferred_keys"] == len(on_node3)

    assert not (_objects(topo.nodes["node3"]) & set(keys.values()))
    assert _objects(topo.nodes["node1"]) == on_node1 | on_node3
    for name in ("node1", "node2", "node3"):  # the gateway's logs match every node
        env.annex(topo.gw, "fsck", "--all", "--fast", "-q", "--from", name)
    for key in on_node3:
        recs = env.annex_json(topo.gw, "whereis", "--key", key)
        where = {w["uuid"] for r in recs for w in r["whereis"]}
        assert T.N1 in where
        assert T.N3 not in where
