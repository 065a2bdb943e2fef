"""A cluster gateway topology built with the real git-annex, shared by tests and bench/.

    client ──ssh──▶ gw (annextui-shell or git-annex-shell)
                     ├── node1   local path, cluster node
                     ├── node2   local path, cluster node
                     ├── node3   ssh (n3host), cluster node, real git-annex-shell
                     └── px      local path, a plain proxied remote (annex-proxy)
    gw2 (second gateway of the same cluster, reached as gw2host) ── node4 (local path)

Everything administrative is done by git-annex itself on the gateways (`initcluster`,
`updatecluster`, `extendcluster`, `group`, `wanted`, `groupwanted`), so the branch the client
fetches is exactly what upstream writes. Node UUIDs are fixed for readable assertions.

The gateways reach node3 (and each other) with `annex-ssh-options = -F <test ssh config>`,
which both git-annex's ssh and our paramiko honour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tests.support.annex import AnnexEnv
from tests.support.sshd import Sshd

GW = "6a7e0000-0000-4000-8000-00000000a001"
GW2 = "6a7e0000-0000-4000-8000-00000000a002"
N1 = "40de0000-0000-4000-8000-000000000001"
N2 = "40de0000-0000-4000-8000-000000000002"
N3 = "40de0000-0000-4000-8000-000000000003"
N4 = "40de0000-0000-4000-8000-000000000004"
PX = "40de0000-0000-4000-8000-0000000000f1"
CLIENT = "c11e0000-0000-4000-8000-000000000001"
CLIENT2 = "c11e0000-0000-4000-8000-000000000002"
CLUSTER_NAME = "mycluster"


@dataclass
class Topology:
    env: AnnexEnv
    sshd: Sshd
    root: Path
    gw: Path
    nodes: dict[str, Path]
    px: Path
    client: Path
    cluster_uuid: str = ""
    gw2: Path | None = None
    client2: Path | None = None
    uuids: dict[str, str] = field(default_factory=dict)

    @property
    def ssh_config(self) -> Path:
        return self.sshd.config_path

    def node_of(self, uuid: str) -> Path:
        for name, u in self.uuids.items():
            if u == uuid and name in self.nodes:
                return self.nodes[name]
        raise KeyError(uuid)


def _bare_node(env: AnnexEnv, path: Path, uuid: str, desc: str) -> Path:
    return env.make_annex_repo(path, uuid, desc, bare=True)


def build(
    env: AnnexEnv,
    sshd: Sshd,
    root: Path,
    *,
    shell: str = "annextui-shell",
    balanced: bool = True,
    second_gateway: bool = False,
    jobs: int | None = None,
) -> Topology:
    """The topology above; the client's remote `origin` uses `shell` on the gateway."""
    sshd.add_host("gw")
    sshd.add_host("n3host")
    cfg = str(sshd.config_path)
    seed = env.make_annex_repo(root / "seed", description="seed")
    env.add_files(seed, {"README": "cluster test\n"}, annex=False)
    gw = env.clone(seed, root / "gw.git", bare=True, annex_init=False)
    env.run(["git", "-C", gw, "remote", "remove", "origin"])
    env.run(["git", "-C", gw, "config", "annex.uuid", GW])
    env.annex(gw, "init", "-q", "gateway")
    nodes = {
        "node1": _bare_node(env, root / "node1.git", N1, "node1"),
        "node2": _bare_node(env, root / "node2.git", N2, "node2"),
        "node3": _bare_node(env, root / "node3.git", N3, "node3"),
    }
    px = _bare_node(env, root / "px.git", PX, "px")
    urls = {
        "node1": str(nodes["node1"]),
        "node2": str(nodes["node2"]),
        "node3": f"ssh://n3host{nodes['node3']}",
    }
    for name, url in urls.items():
        env.git(gw, "remote", "add", name, url)
        env.git(
            gw, "config", f"remote.{name}.annex-uuid", {"node1": N1, "node2": N2, "node3": N3}[name]
        )
        env.git(gw, "config", f"remote.{name}.annex-cluster-node", CLUSTER_NAME)
        env.git(gw, "config", f"remote.{name}.fetch", "")  # never fetched: only P2P traffic
    env.git(gw, "config", "remote.node3.annex-ssh-options", f"-F {cfg}")
    env.git(gw, "remote", "add", "px", str(px))
    env.git(gw, "config", "remote.px.annex-uuid", PX)
    env.git(gw, "config", "remote.px.annex-proxy", "true")
    if jobs is not None:
        env.git(gw, "config", "annex.jobs", str(jobs))
    env.annex(gw, "initcluster", CLUSTER_NAME)
    env.annex(gw, "updatecluster")
    cluster_uuid = env.git(gw, "config", f"annex.cluster.{CLUSTER_NAME}")
    for name in ("node1", "node2", "node3"):
        env.annex(gw, "describe", name, name)
    if balanced:
        for name in ("node1", "node2", "node3"):
            env.annex(gw, "group", name, "backup")
            env.annex(gw, "wanted", name, "groupwanted")
        env.annex(gw, "groupwanted", "backup", "balanced=backup")
    client = env.clone(
        f"ssh://gw{gw}", root / "client", uuid=CLIENT, origin="origin", annex_init=False
    )
    env.git(client, "config", "remote.origin.annex-shell", shell)
    env.annex(client, "init", "-q", "client")
    env.git(client, "fetch", "-q", "origin")
    env.annex(client, "merge", "-q")
    topo = Topology(
        env,
        sshd,
        root,
        gw,
        nodes,
        px,
        client,
        cluster_uuid,
        uuids={"gw": GW, "node1": N1, "node2": N2, "node3": N3, "px": PX, "client": CLIENT},
    )
    if second_gateway:
        add_second_gateway(topo, shell=shell)
    return topo


def add_second_gateway(topo: Topology, *, shell: str = "annextui-shell") -> None:
    """gw2 with its own node4; both gateways extend the cluster to each other."""
    env, root, cfg = topo.env, topo.root, str(topo.ssh_config)
    topo.sshd.add_host("gw2host")
    gw2 = env.clone(f"ssh://gw{topo.gw}", root / "gw2.git", bare=True, annex_init=False)
    env.git(gw2, "config", "annex.uuid", GW2)
    env.git(gw2, "config", "remote.origin.annex-shell", shell)
    env.git(gw2, "config", "remote.origin.annex-ssh-options", f"-F {cfg}")
    env.annex(gw2, "init", "-q", "gateway2")
    node4 = _bare_node(env, root / "node4.git", N4, "node4")
    topo.nodes["node4"] = node4
    topo.uuids["node4"] = N4
    topo.uuids["gw2"] = GW2
    env.git(gw2, "remote", "add", "node4", str(node4))
    env.git(gw2, "config", "remote.node4.annex-uuid", N4)
    env.git(gw2, "config", "remote.node4.annex-cluster-node", CLUSTER_NAME)
    env.git(gw2, "config", "remote.node4.fetch", "")
    env.git(gw2, "fetch", "-q", "origin")
    env.annex(gw2, "merge", "-q")
    env.annex(gw2, "extendcluster", "origin", CLUSTER_NAME)
    env.annex(gw2, "describe", "node4", "node4")
    # the first gateway learns gw2 and extends the cluster back to it
    env.git(topo.gw, "remote", "add", "gw2", f"ssh://gw2host{gw2}")
    env.git(topo.gw, "config", "remote.gw2.annex-shell", shell)
    env.git(topo.gw, "config", "remote.gw2.annex-ssh-options", f"-F {cfg}")
    env.git(topo.gw, "config", "remote.gw2.annex-uuid", GW2)
    env.git(topo.gw, "fetch", "-q", "gw2")
    env.annex(topo.gw, "merge", "-q")
    env.annex(topo.gw, "extendcluster", "gw2", CLUSTER_NAME)
    env.annex(topo.gw, "updatecluster")
    env.git(gw2, "fetch", "-q", "origin")
    env.annex(gw2, "merge", "-q")
    env.annex(gw2, "updatecluster")
    client2 = env.clone(
        f"ssh://gw2host{gw2}", root / "client2", uuid=CLIENT2, origin="gw2", annex_init=False
    )
    env.git(client2, "config", "remote.gw2.annex-shell", shell)
    env.annex(client2, "init", "-q", "client2")
    env.git(client2, "fetch", "-q", "gw2")
    env.annex(client2, "merge", "-q")
    topo.gw2 = gw2
    topo.client2 = client2
    topo.uuids["client2"] = CLIENT2
