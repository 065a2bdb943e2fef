"""Who is balanced: the members of a group (``group.log``) or the nodes of a cluster (by
cluster name, cluster remote name or cluster UUID), and names resolved to UUIDs as git-annex
resolves them."""

from __future__ import annotations

from typing import Literal

from annextui.backend.balance.errors import BalanceError
from annextui.backend.repo import Repository
from annextui.backend.state import AnnexState, proxied_remotes
from annextui.backend.uuids import is_cluster_uuid

__all__ = ["resolve_members", "resolve_repo"]


def resolve_repo(repo: Repository, state: AnnexState, ident: str) -> str:
    """A remote name, UUID, description or ``here`` -> UUID (as ``Remote.nameToUUID``)."""
    own = repo.uuid
    if ident in ("here", "."):
        if not own:
            raise BalanceError(f"{repo.top}: not a git-annex repository (no annex.uuid)")
        return own
    remotes = list(repo.remotes.values()) + list(proxied_remotes(repo, state).values())
    for r in remotes:
        if r.name == ident and r.uuid:
            return r.uuid
    if any(r.uuid == ident for r in remotes):  # a remote's UUID, even if uuid.log lacks it
        return ident
    if ident in state.known_uuids() or ident == own or ident in state.maxsize:
        return ident
    matches = [u for u, d in state.descriptions.items() if d == ident]
    if len(matches) == 1:
        return matches[0]
    raise BalanceError(f'there is no available git remote named "{ident}"')


def _cluster_names(repo: Repository, state: AnnexState) -> dict[str, str]:
    """Cluster name -> cluster UUID: local config, proxy.log names and cluster remotes."""
    out: dict[str, str] = {}
    for ps in state.proxies.values():
        for p in ps:
            if is_cluster_uuid(p.uuid):
                out.setdefault(p.name, p.uuid)
    for name, cu in repo.clusters.items():
        out[name] = cu
    for r in proxied_remotes(repo, state).values():
        if r.uuid and is_cluster_uuid(r.uuid):
            out.setdefault(r.name, r.uuid)
    return out


def resolve_members(
    repo: Repository, state: AnnexState, name: str
) -> tuple[str, Literal["group", "cluster"], tuple[str, ...]]:
    """GROUP (from group.log) or cluster name/UUID -> (label, kind, member UUIDs, sorted)."""
    members = state.group_members(name)
    if members:
        return name, "group", tuple(sorted(members))
    cu = name if name in state.clusters else _cluster_names(repo, state).get(name)
    if cu is not None:
        nodes = state.clusters.get(cu, frozenset())
        if not nodes:
            raise BalanceError(f"cluster {name} has no nodes")
        return name, "cluster", tuple(sorted(nodes))
    raise BalanceError(f"{name} is neither a group with members nor a cluster")
