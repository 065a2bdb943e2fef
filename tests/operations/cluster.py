"""A gateway with a cluster of local bare nodes, all made by the real git-annex, for the
operations tests and bench/bench_drain.py.

    gw (work tree: `git annex find --want-get-by` judges there) ── node1, node2, node3 (bare,
    path remotes, `annex-cluster-node = mycluster`)

The files' content is placed with `git annex copy`/`drop` run on the gateway, so the location
logs the jobs start from are git-annex's own. The gateway ends up holding no content.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.annex import AnnexEnv

GW = "6a7e0000-0000-4000-8000-0000000d0001"
NODES = {
    "node1": "40de0000-0000-4000-8000-0000000d0001",
    "node2": "40de0000-0000-4000-8000-0000000d0002",
    "node3": "40de0000-0000-4000-8000-0000000d0003",
}
CLUSTER = "mycluster"
SIZES = (0, 9, 100, 1000, 4096, 30000)  # mixed sizes, tiny so the tests stay fast


@dataclass
class Cluster:
    env: AnnexEnv
    gw: Path
    nodes: dict[str, Path]
    keys: dict[str, str] = field(default_factory=dict)  # file -> key

    def uuid(self, name: str) -> str:
        return NODES[name]

    def objects(self, name: str) -> dict[str, int]:
        """Key -> inode of every object file in a node's store."""
        out = {}
        for dirpath, _dirs, files in os.walk(self.nodes[name] / "annex" / "objects"):
            for f in files:
                if f == os.path.basename(dirpath):
                    out[f] = os.stat(os.path.join(dirpath, f)).st_ino
        return out


def files(n: int, sizes: tuple[int, ...] = SIZES) -> dict[str, bytes]:
    """n files of mixed sizes, each content unique (so n distinct keys)."""
    out = {}
    for i in range(n):
        size = sizes[i % len(sizes)] if i else 0  # one empty file: every empty file is one key
        size = size or (8 if i else 0)
        head = f"{i:07d}\n".encode()  # 8 bytes, unique: so are the first 8 bytes of each file
        out[f"d{i % 10}/f{i}.dat"] = (head * (size // len(head) + 1))[:size]
    return out


def build(env: AnnexEnv, root: Path, *, node_names: tuple[str, ...] = tuple(NODES)) -> Cluster:
    gw = env.make_annex_repo(root / "gw", GW, "gateway")
    nodes = {}
    for name in node_names:
        node = env.make_annex_repo(root / f"{name}.git", NODES[name], name, bare=True)
        env.git(gw, "remote", "add", name, str(node))
        env.git(gw, "config", f"remote.{name}.annex-uuid", NODES[name])
        env.git(gw, "config", f"remote.{name}.annex-cluster-node", CLUSTER)
        nodes[name] = node
    env.annex(gw, "initcluster", CLUSTER)
    env.annex(gw, "updatecluster")
    return Cluster(env, gw, nodes)


def populate(c: Cluster, content: dict[str, bytes], placement: dict[str, list[str]]) -> None:
    """Add the files on the gateway, copy each to the nodes `placement` names for it (node ->
    files), then drop them from the gateway (git-annex checks numcopies on the nodes)."""
    env = c.env
    c.keys.update(env.add_files(c.gw, content))
    for node, names in placement.items():
        for i in range(0, len(names), 400):
            env.annex(c.gw, "copy", "-q", "--to", node, "--", *names[i : i + 400])
    env.annex(c.gw, "drop", "-q", ".")


def held_by_node1_and_node2(env: AnnexEnv, root: Path, n: int) -> tuple[Cluster, list[str]]:
    """A cluster with numcopies 2 whose n files are on node1 and node2 (node3 empty), and the
    files' names, sorted."""
    c = build(env, root)
    env.annex(c.gw, "numcopies", "2")
    content = files(n)
    names = sorted(content)
    populate(c, content, {"node1": names, "node2": names})
    return c, names
