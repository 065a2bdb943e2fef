"""Non-bare nodes behind an annextui-shell gateway: a cluster node and a proxied remote, both
served in the gateway's process (LocalPeer), with unlocked files in their work trees.

    client ──ssh──▶ gw (annextui-shell, bare)
                     ├── node1   local path, non-bare cluster node of `mycluster`
                     └── px      local path, non-bare proxied remote

A real git-annex client drops and copies through the gateway; each node's work tree must follow
(pointer files after a drop, the content after a copy, modes kept), with `git status` clean, the
keys database naming the object and the populated file, and a real `git annex fsck` in the node
finding nothing to fix.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import annex as annex_support
from tests.support.annex import AnnexEnv
from tests.support.sshd import Sshd

pytestmark = [pytest.mark.ssh, pytest.mark.slow]

GW = "6a7e0000-0000-4000-8000-00000000c001"
N1 = "40de0000-0000-4000-8000-00000000c101"
PX = "40de0000-0000-4000-8000-00000000c1f1"
CLIENT = "c11e0000-0000-4000-8000-00000000c001"
CLUSTER = "mycluster"
FILES = {
    "u/a.txt": b"unlocked on a node\n",
    "u/run.sh": b"#!/bin/sh\necho node\n",
}


@dataclass
class World:
    env: AnnexEnv
    client: Path
    nodes: dict[str, Path]  # client-side remote name -> node repository


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, git_annex_bin: Path, sshd: Sshd
) -> Iterator[World]:
    with annex_support.ssh_world(tmp_path_factory, "unlockednodes", git_annex_bin, sshd) as (
        root,
        env,
    ):
        sshd.add_host("gw")
        seed = env.make_annex_repo(root / "seed", description="seed")
        annex_support.add_unlocked_files(seed, FILES, executable=["u/run.sh"], env=env.env)
        nodes = {}
        for name, uuid in (("node1", N1), ("px", PX)):
            node = env.clone(seed, root / name, uuid=uuid, description=name)
            env.annex(node, "get", "-q", ".")
            nodes[name] = node
        gw = env.clone(seed, root / "gw.git", bare=True, annex_init=False)
        env.git(gw, "config", "annex.uuid", GW)
        env.annex(gw, "init", "-q", "gateway")
        for name, uuid in (("node1", N1), ("px", PX)):
            env.git(gw, "remote", "add", name, str(nodes[name]))
            env.git(gw, "config", f"remote.{name}.annex-uuid", uuid)
            env.git(gw, "config", f"remote.{name}.fetch", "")
        env.git(gw, "config", "remote.node1.annex-cluster-node", CLUSTER)
        env.git(gw, "config", "remote.px.annex-proxy", "true")
        env.annex(gw, "initcluster", CLUSTER)
        env.annex(gw, "updatecluster")
        env.annex(gw, "updateproxy")
        client = env.clone(f"ssh://gw{gw}", root / "client", uuid=CLIENT, annex_init=False)
        env.git(client, "config", "remote.origin.annex-shell", "annextui-shell")
        env.annex(client, "init", "-q", "client")
        env.git(client, "remote", "add", "seed", str(seed))
        env.annex(client, "get", "-q", "--from", "seed", ".")
        env.git(client, "fetch", "-q", "origin")
        env.annex(client, "merge", "-q")
        yield World(env, client, {f"origin-{CLUSTER}": nodes["node1"], "origin-px": nodes["px"]})


def _pointer(path: Path) -> bool:
    return re.fullmatch(rb"/annex/objects/[^/\n]+\n", path.read_bytes()) is not None


def _recorded_inodes(node: Path) -> set[int]:
    with sqlite3.connect(f"file:{node}/.git/annex/keysdb/db?mode=ro", uri=True) as c:
        return {int(ic.split()[0]) for (ic,) in c.execute("SELECT inodecache FROM content")}


def _clean(env: AnnexEnv, node: Path) -> None:
    assert env.git(node, "status", "--porcelain") == ""
    res = env.annex(node, "fsck", check=False)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    for bad in ("fixing", "**", "failed"):
        assert bad not in out, out


@pytest.mark.parametrize("remote", [f"origin-{CLUSTER}", "origin-px"])
def test_drop_and_copy_through_the_gateway(world: World, remote: str) -> None:
    node, env = world.nodes[remote], world.env
    env.annex(world.client, "drop", "-q", "--from", remote, "u")
    for name in FILES:
        assert _pointer(node / name), name
    assert oct((node / "u/run.sh").stat().st_mode & 0o777) == "0o755"
    assert _recorded_inodes(node) == set()
    _clean(env, node)

    env.annex(world.client, "copy", "-q", "--to", remote, "u")
    for name, data in FILES.items():
        assert (node / name).read_bytes() == data, name
    assert oct((node / "u/run.sh").stat().st_mode & 0o777) == "0o755"
    objects = {p.stat().st_ino for p in (node / ".git/annex/objects").rglob("*") if p.is_file()}
    files = {(node / name).stat().st_ino for name in FILES}
    assert _recorded_inodes(node) == objects | files
    _clean(env, node)
