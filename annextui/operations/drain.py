"""Draining a cluster node: every key it holds copied to the other nodes, then dropped from
it, then the node taken out of the cluster.

Where each key goes (`plan_drain`): the other nodes (or the ``--to`` ones) that want it by
their preferred content, evaluated as if the drained node were already dead (the what-if
``remove:NODE`` of ``annextui balance``), with live sizes so ``maxsize`` and ``balanced`` see
the node fill up; then, while the key would have fewer than max(numcopies, mincopies) copies
the job can lock, the targets with the most room. Copies count only on repositories this
gateway reaches (the drop must lock them). A key no target has room for makes the whole plan
refused before anything moves, with figures.

After the last key: ``remote.NAME.annex-cluster-node`` is unset and ``updatecluster`` records
the cluster without the node, as ``annextui updatecluster`` (backend/admin.py) does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from annextui import values
from annextui.backend.balance import BalanceError, build_world, resolve_repo
from annextui.backend.preferred import Evaluator, KeyFacts, TrustLevel
from annextui.backend.sizes import key_locations, key_of_path, key_size_of_path, repo_sizes
from annextui.backend.units import format_rough
from annextui.backend.uuids import is_cluster_uuid
from annextui.operations.jobs import Step
from annextui.operations.nodes import GatewayNodes

__all__ = ["DrainPlan", "DrainRefused", "drain_lines", "leave_clusters", "plan_drain"]


class DrainRefused(Exception):
    """The other nodes cannot hold the node's content (the message has the figures)."""


@dataclass
class DrainPlan:
    node: str
    clusters: tuple[str, ...]  # cluster UUIDs the node leaves
    targets: tuple[str, ...]
    needed: int  # copies that must remain, locked, before a drop
    steps: list[Step] = field(default_factory=list)
    unplaced: list[tuple[str, int]] = field(default_factory=list)  # (key, size)
    free: dict[str, int | None] = field(default_factory=dict)  # target -> room left (None: any)

    @property
    def keys(self) -> int:
        return len(self.steps) + len(self.unplaced)

    @property
    def bytes(self) -> int:
        return sum(s.size for s in self.steps) + sum(n for _k, n in self.unplaced)

    def summary(self) -> dict[str, object]:
        """The plan's figures, as `cluster drain --dry-run --json` prints them and the job
        record keeps them (the console's review and Jobs view read them)."""
        return {
            "node": self.node,
            "targets": list(self.targets),
            "keys": self.keys,
            "bytes": self.bytes,
            "copies": sum(len(s.copies) for s in self.steps),
            "numcopies": self.needed,
            "unplaced-keys": len(self.unplaced),
        }

    def refusal(self, nodes: GatewayNodes) -> str:
        lost = sum(n for _k, n in self.unplaced)
        lines = [
            f"cannot drain {nodes.name(self.node)}: the other nodes cannot hold its content; "
            f"{len(self.unplaced)} of {self.keys} keys ({format_rough(lost, 2)} of "
            f"{format_rough(self.bytes, 2)}) would have fewer than {self.needed} copies"
        ]
        for t in self.targets:
            free = self.free.get(t)
            room = "no maxsize" if free is None else f"{format_rough(max(free, 0), 2)} free"
            lines.append(f"  {nodes.name(t)}: {room} after the keys that fit")
        return "\n".join(lines)


def drain_lines(summary: Mapping[str, object], name: Callable[[str], str]) -> list[str]:
    """A drain plan's figures in one line; `name` shows a UUID (a remote name, a label)."""
    targets = summary.get("targets")
    names = ", ".join(name(str(t)) for t in targets) if isinstance(targets, list) else ""
    size = format_rough(int(str(summary.get("bytes", 0))), 2)
    return [
        f"drain {name(str(summary.get('node', '')))}: {summary.get('keys')} keys ({size}), "
        f"{summary.get('copies')} copies to make on {names}, "
        f"numcopies {summary.get('numcopies')}",
    ]


def resolve_node(nodes: GatewayNodes, ident: str) -> tuple[str, tuple[str, ...]]:
    """The node's UUID and the clusters it is a node of (BalanceError: usage)."""
    uuid = resolve_repo(nodes.repo, nodes.state, ident)
    clusters = tuple(sorted(cu for cu, ns in nodes.state.clusters.items() if uuid in ns))
    if not clusters:
        raise BalanceError(f"{ident} is not a node of any cluster")
    return uuid, clusters


def plan_drain(nodes: GatewayNodes, ident: str, to: Sequence[str] = ()) -> DrainPlan:
    repo, state = nodes.repo, nodes.state
    node, clusters = resolve_node(nodes, ident)
    if to:
        targets = tuple(dict.fromkeys(resolve_repo(repo, state, t) for t in to))
        if node in targets:
            raise BalanceError(f"{ident} cannot be drained to itself")
    else:
        found = [r.uuid for cu in clusters for r in nodes.cluster_remotes(cu) if r.uuid]
        targets = tuple(dict.fromkeys(u for u in found if u != node))
    if not targets:
        raise BalanceError(f"{ident}: there is no other node to drain it to")
    sizes = repo_sizes(repo, state=state)
    world = build_world(repo, state, sizes)
    needed = max(world.global_numcopies(), world.mincopies or 1)
    live = sizes.sizes()
    dead = values.replace(world.repo(node), trust=TrustLevel.DEAD)
    ev = Evaluator(values.replace(world, repos={**world.repos, node: dead}), live_sizes=live)
    plan = DrainPlan(node, clusters, targets, needed)

    def room(u: str, size: int) -> bool:
        maxsize = state.maxsize.get(u)
        return maxsize is None or live.get(u, 0) + size <= maxsize

    def emptiest(u: str) -> tuple[float, int]:
        maxsize = state.maxsize.get(u)
        used = live.get(u, 0)
        return (used / maxsize if maxsize else 0.0, used)

    kl = key_locations(repo)
    bit = kl.bit(node)
    for path, mask in kl.items():
        if not mask & bit:
            continue
        key, size = key_of_path(path), key_size_of_path(path)
        locs = kl.uuids_of(mask)
        kept = sum(
            1
            for u in locs
            if u != node and not is_cluster_uuid(u) and nodes.remote_of(u) is not None
        )
        facts = KeyFacts(key, locations=locs)
        chosen = [t for t in targets if t not in locs and room(t, size) and ev.wants_get(t, facts)]
        spare = sorted((t for t in targets if t not in locs and t not in chosen), key=emptiest)
        for t in spare:
            if kept + len(chosen) >= needed:
                break
            if room(t, size):
                chosen.append(t)
        if kept + len(chosen) < needed:
            plan.unplaced.append((key, size))
            continue
        for t in chosen:
            live[t] = live.get(t, 0) + size
        plan.steps.append(Step(key, size, tuple((node, t) for t in chosen), (node,)))
    plan.free = {
        t: (state.maxsize[t] - live.get(t, 0)) if t in state.maxsize else None for t in targets
    }
    return plan


def leave_clusters(nodes: GatewayNodes, node: str) -> list[str]:
    """Unset the node remote's ``annex-cluster-node`` and record the clusters without it."""
    from annextui.backend.admin import Admin

    repo = nodes.repo
    for r in repo.remotes.values():
        if r.uuid == node and r.cluster_nodes:
            repo.require_writable()
            repo.config_unset(f"remote.{r.name}.annex-cluster-node")
    return Admin(repo).updatecluster().lines
