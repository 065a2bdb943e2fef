"""The snapshot: everything the console shows of a repository's branch and git config, read
once and immutable (shared between the worker that reads it and the views that show it), and
its rows (`RepoRow`, one per repository the branch knows)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from annextui.backend.branch import BranchView
from annextui.backend.info import ClusterEntry, RepositoryInfo, gather_info
from annextui.backend.repo import Remote, Repository, local_path_of_url
from annextui.backend.state import BUILTIN_DESCRIPTIONS, proxied_remotes, remote_names
from annextui.backend.trust import TrustLevel
from annextui.backend.uuids import is_cluster_uuid


def short_uuid(uuid: str) -> str:
    return uuid[:8]


@dataclass(frozen=True, slots=True)
class RepoRow:
    """A repository known to the branch, as this repository sees it."""

    uuid: str
    name: str  # remote name (configured or proxied), "here", or "" when not a remote
    description: str
    trust: TrustLevel
    groups: tuple[str, ...] = ()
    wanted: str | None = None
    required: str | None = None
    maxsize: int | None = None
    here: bool = False
    is_cluster: bool = False
    clusters: tuple[str, ...] = ()  # cluster UUIDs this repository is a node of
    proxied_by: str | None = None  # UUID of the proxy a client reaches it through
    url: str | None = None
    configured: bool = False  # a git remote of this repository (not instantiated from proxy.log)

    @property
    def label(self) -> str:
        if self.here:
            return self.description or "here"
        return self.name or self.description or short_uuid(self.uuid)

    @property
    def local_path(self) -> Path | None:
        return local_path_of_url(self.url)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the console needs from the branch and git config, read once."""

    path: Path
    uuid: str
    description: str
    role: str  # gateway, proxy, node, client (reaches proxied remotes) or repository
    info: RepositoryInfo
    repos: dict[str, RepoRow]
    remotes: dict[str, Remote]  # configured and proxied remotes by name
    configured: tuple[str, ...]  # names of configured git remotes
    local_clusters: dict[str, str]  # annex.cluster.NAME -> cluster UUID
    head: str | None
    bare: bool = False
    loaded_at: float = field(default_factory=time.time)

    def label(self, uuid: str) -> str:
        row = self.repos.get(uuid)
        if row is not None:
            return row.label
        # a node whose git-annex branch was not fetched yet is still known by its remote name
        named = next((n for n, r in self.remotes.items() if r.uuid == uuid), None)
        return named or BUILTIN_DESCRIPTIONS.get(uuid, short_uuid(uuid))

    def cluster(self, uuid: str) -> ClusterEntry | None:
        for c in self.info.clusters:
            if c.uuid == uuid:
                return c
        return None

    def cluster_name(self, uuid: str) -> str:
        for name, cu in self.local_clusters.items():
            if cu == uuid:
                return name
        c = self.cluster(uuid)
        if c is not None and c.names:
            return c.names[0]
        return self.label(uuid)

    @property
    def node_uuids(self) -> list[str]:
        out: set[str] = set()
        for c in self.info.clusters:
            out.update(c.nodes)
        return sorted(out, key=self.label)

    def node_remote_name(self, uuid: str) -> str:
        """How a command names this repository: its remote name, else its UUID."""
        row = self.repos.get(uuid)
        if row is not None and row.here:
            return "here"
        if row is not None and row.name:
            return row.name
        return uuid

    def candidate_nodes(self, cluster_uuid: str) -> list[str]:
        """Configured remotes with a UUID that are not yet nodes of the cluster."""
        c = self.cluster(cluster_uuid)
        nodes = set(c.nodes) if c else set()
        out = []
        for name in self.configured:
            r = self.remotes[name]
            if r.uuid and r.uuid not in nodes and not is_cluster_uuid(r.uuid):
                out.append(name)
        return out

    def extend_candidates(self) -> list[tuple[str, str, str]]:
        """(gateway remote, cluster name, cluster UUID) this repository could become a gateway
        of: proxied remotes `GW-NAME` with a cluster UUID, reached through a configured `GW`."""
        out = []
        mine = set(self.local_clusters.values())
        for name, r in sorted(self.remotes.items()):
            if name in self.configured or not r.uuid or not is_cluster_uuid(r.uuid):
                continue
            if r.uuid in mine:
                continue
            for gw in self.configured:
                if name.startswith(gw + "-") and self.remotes[gw].uuid == r.option(
                    "annex-proxied-by"
                ):
                    out.append((gw, name[len(gw) + 1 :], r.uuid))
        return out


def load_snapshot(path: Path) -> Snapshot:
    repo = Repository(path)
    info = gather_info(repo)
    state = info.state
    own = info.uuid
    names = remote_names(repo, state)
    proxied = proxied_remotes(repo, state)
    remotes = dict(repo.remotes)
    remotes.update(proxied)
    by_uuid: dict[str, Remote] = {}
    for r in remotes.values():
        if r.uuid and r.uuid not in by_uuid:
            by_uuid[r.uuid] = r
    node_clusters = state.node_to_clusters()
    repos: dict[str, RepoRow] = {}
    for entry in info.repositories:
        u = entry.uuid
        rr = by_uuid.get(u)
        repos[u] = RepoRow(
            uuid=u,
            name="here" if u == own else names.get(u, ""),
            description=state.description(u),
            trust=entry.trust,
            groups=entry.groups,
            wanted=state.preferred.get(u),
            required=state.required.get(u),
            maxsize=entry.maxsize,
            here=u == own,
            is_cluster=is_cluster_uuid(u),
            clusters=tuple(sorted(node_clusters.get(u, set()))),
            proxied_by=rr.option("annex-proxied-by") if rr is not None else None,
            url=rr.url if rr is not None else None,
            configured=rr is not None and rr.name in repo.remotes,
        )
    head = BranchView(repo, include_unmerged=False).head
    role = info.role
    if role == "repository" and len(remotes) > len(repo.remotes):
        role = "client"  # it reaches proxied remotes through a proxy
    return Snapshot(
        path=repo.top,
        uuid=own,
        description=info.description,
        role=role,
        info=info,
        repos=repos,
        remotes=remotes,
        configured=tuple(sorted(repo.remotes)),
        local_clusters=dict(repo.clusters),
        head=head.decode() if head else None,
        bare=repo.bare,
    )
