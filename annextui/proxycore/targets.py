"""Which repository a `p2pstdio … --uuid U` connection is for, decided as git-annex decides.

The git-annex branch says *what* a gateway proxies (its own `proxy.log` entry); only local git
config *permits* it (`annex-proxy`, `annex-cluster-node` naming a local cluster, or a remote
proxied by a configured cluster gateway). A branch pushed by someone else can therefore never
make this gateway proxy to a new place (`Annex/Proxy.hs` canProxyForRemote).
"""

from __future__ import annotations

from annextui.backend.repo import Remote, Repository
from annextui.backend.state import AnnexState, proxied_remotes
from annextui.backend.uuids import is_cluster_uuid
from annextui.values import Value


class TargetRefused(Exception):
    """The gateway will not serve this UUID; the message is git-annex-shell's."""


class LocalTarget(Value):
    uuid: str


class RemoteTarget(Value):
    uuid: str
    remote: Remote


class ClusterTarget(Value):
    uuid: str


Target = LocalTarget | RemoteTarget | ClusterTarget


def remotes_by_cost(repo: Repository, state: AnnexState) -> list[Remote]:
    """Configured and proxied remotes, cheapest first (stable within one cost)."""
    remotes = list(repo.remotes.values()) + list(proxied_remotes(repo, state).values())
    remotes = [r for r in remotes if r.uuid and not r.flag("annex-ignore")]
    return sorted(remotes, key=lambda r: r.cost)


def _proxy_permitted(r: Remote, remotes: list[Remote], my_clusters: dict[str, str]) -> bool:
    if r.flag("annex-proxy"):
        return True
    if any(name in my_clusters for name in r.cluster_nodes):
        return True
    proxied_by = r.option("annex-proxied-by")
    if proxied_by:
        return any(p.uuid == proxied_by and p.cluster_gateways for p in remotes)
    return False


def select_target(repo: Repository, state: AnnexState, uuid: str) -> Target:
    own = repo.require_annex()
    if uuid == own:
        return LocalTarget(uuid)
    mine = [p for p in state.proxies.get(own, []) if p.uuid == uuid]
    if mine:
        if is_cluster_uuid(uuid):
            if uuid in state.clusters:
                return ClusterTarget(uuid)
        else:
            remotes = remotes_by_cost(repo, state)
            names = {p.name for p in mine}
            for r in remotes + _chained(repo, state):
                if (
                    r.uuid == uuid
                    and r.name in names
                    and _proxy_permitted(r, remotes, repo.clusters)
                    and not _comes_back(state, own, r)
                ):
                    return RemoteTarget(uuid, r)
    elif not is_cluster_uuid(uuid):
        # Not (yet) in our proxy.log, but behind a gateway this one proxies with annex-proxy
        # (set in local git config): served without waiting for updateproxy here.
        for r in remotes_by_cost(repo, state) + _chained(repo, state):
            if (
                r.uuid == uuid
                and r.option("annex-proxied-by")
                and r.flag("annex-proxy")
                and not _comes_back(state, own, r)
            ):
                return RemoteTarget(uuid, r)
    desc = state.descriptions.get(uuid)
    if desc is not None:
        raise TargetRefused(f"not configured to proxy for repository {desc}")
    raise TargetRefused(f"expected repository UUID {uuid} but found UUID {own}")


def _comes_back(state: AnnexState, own: str, r: Remote) -> bool:
    """Whether the gateway that proxies `r` logs every route to `r` through this repository.

    A gateway names what it reaches through a proxied gateway `<that gateway's name>-<entry>`
    (as `updateproxy` logs it). When every entry it has for `r`'s UUID starts with a name it
    logs for our own UUID, relaying there would come straight back here (and again, forever:
    a stale `proxy.log` after one side stopped proxying a repository does exactly that), so
    such a route is never taken.
    """
    gateway = r.option("annex-proxied-by")
    if not gateway or not r.uuid:
        return False
    entries = state.proxies.get(gateway, [])
    via_us = [e.name + "-" for e in entries if e.uuid == own]
    routes = [e.name for e in entries if e.uuid == r.uuid]
    return bool(via_us and routes) and all(n.startswith(tuple(via_us)) for n in routes)


def _chained(repo: Repository, state: AnnexState) -> list[Remote]:
    from annextui.backend.proxychain import chained_proxied_remotes

    chained = chained_proxied_remotes(repo, state).values()
    return sorted((r for r in chained if not r.flag("annex-ignore")), key=lambda r: r.cost)


def cluster_node_remotes(
    repo: Repository, state: AnnexState, cluster_uuid: str, bypass: frozenset[str] = frozenset()
) -> list[Remote]:
    """The remotes a cluster connection fans out to, cheapest first (`clusterProxySelector`).

    Local nodes are remotes whose `annex-cluster-node` names a cluster configured here and whose
    UUID `cluster.log` lists. The same cluster reached through another gateway counts too,
    unless that gateway is in the bypass set (or is us): that is the cycle prevention.
    """
    own = repo.require_annex()
    node_uuids = state.clusters.get(cluster_uuid, frozenset())
    my_cluster_names = {n for n, cu in repo.clusters.items() if cu == cluster_uuid}
    bypass_all = bypass | {own}
    remotes = remotes_by_cost(repo, state)
    out = []
    for r in remotes:
        if r.cluster_nodes:
            if set(r.cluster_nodes) & my_cluster_names and r.uuid in node_uuids:
                out.append(r)
            continue
        proxied_by = r.option("annex-proxied-by")
        if r.uuid == cluster_uuid and proxied_by and proxied_by not in bypass_all:
            gateways = [p for p in remotes if p.uuid == proxied_by]
            if any(cluster_uuid in g.cluster_gateways for g in gateways):
                out.append(r)
    return out
