"""`annextui info`: the repository, known repositories, proxies, clusters and maxsize.

The repository lists use git-annex's own JSON field names (`trusted repositories`, …) so that a
script reading `git annex info --json` reads ours too; proxies and clusters are our additions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from annextui.backend.branch import BranchView
from annextui.backend.repo import Repository
from annextui.backend.state import AnnexState, display_description, load_state, remote_names
from annextui.backend.trust import TrustLevel


@dataclass(frozen=True, slots=True)
class RepoEntry:
    uuid: str
    description: str  # with ` [remote]` as git-annex's JSON shows it (`here` is a flag)
    trust: TrustLevel
    here: bool
    maxsize: int | None
    groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ProxyEntry:
    proxy_uuid: str
    proxy_description: str
    proxied: tuple[tuple[str, str, str], ...]  # (uuid, name as logged, client-side name)


@dataclass(frozen=True, slots=True)
class ClusterEntry:
    uuid: str
    names: tuple[str, ...]
    description: str
    gateways: tuple[str, ...]
    nodes: tuple[str, ...]


@dataclass
class RepositoryInfo:
    uuid: str
    description: str
    repositories: list[RepoEntry] = field(default_factory=list)
    proxies: list[ProxyEntry] = field(default_factory=list)
    clusters: list[ClusterEntry] = field(default_factory=list)
    state: AnnexState = field(default_factory=AnnexState)

    @property
    def role(self) -> str:
        """gateway (serves a cluster), proxy (proxies remotes), node (in a cluster) or plain."""
        if any(self.uuid in c.gateways for c in self.clusters):
            return "gateway"
        if any(p.proxy_uuid == self.uuid and p.proxied for p in self.proxies):
            return "proxy"
        if any(self.uuid in c.nodes for c in self.clusters):
            return "node"
        return "repository"

    def to_json(self) -> dict[str, object]:
        def repo_json(r: RepoEntry) -> dict[str, object]:
            return {"description": r.description, "here": r.here, "uuid": r.uuid}

        out: dict[str, object] = {"command": "info", "uuid": self.uuid, "role": self.role}
        for level, label in (
            (TrustLevel.TRUSTED, "trusted repositories"),
            (TrustLevel.SEMITRUSTED, "semitrusted repositories"),
            (TrustLevel.UNTRUSTED, "untrusted repositories"),
        ):
            out[label] = [repo_json(r) for r in self.repositories if r.trust is level]
        out["proxies"] = [
            {
                "proxy": p.proxy_uuid,
                "description": p.proxy_description,
                "proxying": [{"uuid": u, "name": n, "remote": rn} for u, n, rn in p.proxied],
            }
            for p in self.proxies
        ]
        out["clusters"] = [
            {
                "uuid": c.uuid,
                "names": list(c.names),
                "description": c.description,
                "gateways": list(c.gateways),
                "nodes": list(c.nodes),
            }
            for c in self.clusters
        ]
        out["maxsize"] = {r.uuid: r.maxsize for r in self.repositories if r.maxsize is not None}
        out["success"] = True
        return out

    def to_text(self) -> list[str]:
        lines = [f"uuid: {self.uuid}", f"description: {self.description}", f"role: {self.role}"]
        for level, label in (
            (TrustLevel.TRUSTED, "trusted repositories"),
            (TrustLevel.SEMITRUSTED, "semitrusted repositories"),
            (TrustLevel.UNTRUSTED, "untrusted repositories"),
        ):
            entries = [r for r in self.repositories if r.trust is level]
            lines.append(f"{label}: {len(entries)}")
            lines.extend(
                f"\t{r.uuid} -- {r.description}{' [here]' if r.here else ''}" for r in entries
            )
        lines.append(f"proxies: {len(self.proxies)}")
        for p in self.proxies:
            lines.append(f"\t{p.proxy_uuid} -- {p.proxy_description}")
            lines.extend(f"\t\tproxying: {rn} ({u})" for u, _n, rn in p.proxied)
        lines.append(f"clusters: {len(self.clusters)}")
        for c in self.clusters:
            lines.append(f"\t{c.uuid} -- {c.description}")
            lines.extend(f"\t\tgateway: {g}" for g in c.gateways)
            lines.extend(f"\t\tnode: {n}" for n in c.nodes)
        sized = [r for r in self.repositories if r.maxsize is not None]
        if sized:
            from annextui.backend.units import format_precise

            lines.append("maxsize:")
            lines.extend(f"\t{r.uuid} -- {format_precise(r.maxsize or 0)}" for r in sized)
        return lines


def gather_info(repo: Repository) -> RepositoryInfo:
    own = repo.require_annex()
    state = load_state(BranchView(repo))
    names = remote_names(repo, state)
    repos = []
    for u in sorted(state.known_uuids() | {own}):
        if state.is_dead(u):
            continue
        desc = state.description(u)
        if u in names and u != own:
            desc = display_description(repo, state, u, names)
        repos.append(
            RepoEntry(
                uuid=u,
                description=desc,
                trust=state.trust_of(u),
                here=u == own,
                maxsize=state.maxsize.get(u),
                groups=tuple(sorted(state.groups.get(u, frozenset()))),
            )
        )
    proxies = []
    for pu, proxied in sorted(state.proxies.items()):
        if not proxied:
            continue
        remote_name = names.get(pu)
        entries = tuple(
            (p.uuid, p.name, f"{remote_name}-{p.name}" if remote_name else p.name)
            for p in sorted(proxied, key=lambda p: p.name)
        )
        proxies.append(ProxyEntry(pu, state.description(pu), entries))
    clusters = []
    # A cluster initialised here exists before updatecluster records nodes for it; one deleted
    # (dead, its node set emptied) no longer does.
    local = {cu: name for name, cu in repo.clusters.items()}
    for cu in sorted(set(state.clusters) | set(local)):
        if state.is_dead(cu):
            continue
        gateways = {
            pu for pu, proxied in state.proxies.items() if any(p.uuid == cu for p in proxied)
        }
        cnames = {p.name for ps in state.proxies.values() for p in ps if p.uuid == cu}
        if cu in local:
            gateways.add(own)
            cnames.add(local[cu])
        nodes = state.clusters.get(cu, frozenset())
        clusters.append(
            ClusterEntry(
                cu,
                tuple(sorted(cnames)),
                state.description(cu),
                tuple(sorted(gateways)),
                tuple(sorted(nodes)),
            )
        )
    return RepositoryInfo(
        uuid=own,
        description=state.description(own),
        repositories=repos,
        proxies=proxies,
        clusters=clusters,
        state=state,
    )
