"""Balance of content across groups of nodes, and what-if planning, for the console.

A thin layer over `annextui.backend.balance`: which groups to report on (groups of cluster nodes
and groups named by `balanced=`-style expressions, else the clusters themselves), and the
per-member and per-move rows the Balance view and the Overview alerts need.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from annextui.backend.repo import Repository
from annextui.console.sizes_source import SizesReport
from annextui.console.snapshot import Snapshot

if TYPE_CHECKING:  # the engine (preferred content) is imported when first used: faster start
    from annextui.backend.balance import Move, PlanTotals, Scenario


@dataclass(frozen=True, slots=True)
class MemberBalance:
    uuid: str
    label: str
    held_keys: int
    held_bytes: int
    want_get_keys: int | None  # None: its preferred content is not configured
    want_get_bytes: int | None
    to_drop_keys: int = 0  # held here, and this node would drop it (want-drop)
    to_get_keys: int = 0  # want-get here, not held
    maxsize: int | None = None
    expression: str = ""


@dataclass(frozen=True, slots=True)
class GroupBalance:
    group: str
    kind: str  # "group" or "cluster"
    expression: str
    members: tuple[MemberBalance, ...]
    pending: tuple[Move, ...] = ()  # what the configuration as it is would transfer or drop
    keys: int = 0  # keys considered

    @property
    def plan(self) -> PlanTotals:
        """The pending plan summed up, transfers and drops apart (as `annextui balance`)."""
        from annextui.backend.balance import PlanTotals

        return PlanTotals.of(self.pending)


@dataclass(frozen=True, slots=True)
class BalanceOverview:
    """The balanced groups' reports together (the backend's `BalanceReport` is one group's)."""

    groups: tuple[GroupBalance, ...] = ()
    seconds: float = 0.0
    rebalance: bool = False
    note: str = ""


@dataclass(frozen=True, slots=True)
class WhatIf:
    """One hypothetical change to a group: add a new node (with a maxsize), remove a member,
    or change a member's maxsize."""

    group: str
    kind: Literal["add", "remove", "maxsize"]
    target: str  # a new node's name, or a member's UUID
    maxsize: int | None = None
    rebalance: bool = False

    def describe(self, label: dict[str, str]) -> str:
        from annextui.backend.units import format_rough

        size = format_rough(self.maxsize, 1) if self.maxsize is not None else ""
        if self.kind == "add":
            return f"add a node {self.target}" + (f" with maxsize {size}" if size else "")
        name = label.get(self.target, self.target[:8])
        if self.kind == "remove":
            return f"remove {name}"
        return f"maxsize of {name} = {size}"

    def scenario(self) -> Scenario:
        from annextui.backend.balance import Scenario

        return Scenario(self.kind, self.target, maxsize=self.maxsize)


@dataclass(frozen=True, slots=True)
class WhatIfResult:
    what_if: WhatIf
    moves: tuple[Move, ...] = ()
    after: tuple[tuple[str, int, int, int | None], ...] = ()  # (uuid, keys, bytes, maxsize)
    names: tuple[tuple[str, str], ...] = ()  # labels of UUIDs a what-if made up
    error: str = ""
    seconds: float = 0.0
    keys: int = 0  # keys that would be copied or moved somewhere (drops not counted)
    bytes: int = 0


def balanced_groups(snapshot: Snapshot) -> list[str]:
    """Groups to report on: groups of cluster nodes and groups that `balanced=`-style
    expressions name; clusters whose nodes no such group covers are reported by name."""
    state = snapshot.info.state
    out: list[str] = []
    for u in snapshot.node_uuids:
        for g in sorted(state.groups.get(u, frozenset())):
            if g not in out:
                out.append(g)
    for expr in [*state.preferred.values(), *state.group_preferred.values()]:
        for word in expr.replace("(", " ").replace(")", " ").split():
            name, sep, value = word.partition("=")
            group = value.split(":", 1)[0]
            if (
                sep
                and name.endswith("balanced")
                and group not in out
                and state.group_members(group)
            ):
                out.append(group)
    # A cluster is reported by name only when no reported group has any of its nodes: else the
    # same keys would be counted under the group and again under the cluster.
    covered = {u for g in out for u in state.group_members(g)}
    for c in snapshot.info.clusters:
        if c.nodes and not covered & set(c.nodes):
            out.append(snapshot.cluster_name(c.uuid))
    return out


def group_balance(
    repo: Repository,
    group: str,
    *,
    rebalance: bool = False,
    label: Callable[[str], str] | None = None,
) -> GroupBalance:
    from annextui.backend.balance import Balance

    bal = Balance(repo, group, rebalance=rebalance)
    report = bal.report(pending=True)
    state = bal.state
    members = []
    for n in report.nodes:
        members.append(
            MemberBalance(
                uuid=n.uuid,
                label=label(n.uuid) if label else n.name or n.uuid[:8],
                held_keys=n.keys,
                held_bytes=n.size,
                want_get_keys=n.want_get_keys if n.configured else None,
                want_get_bytes=n.want_get_bytes if n.configured else None,
                to_drop_keys=n.to_drop_keys,
                to_get_keys=n.to_get_keys,
                maxsize=n.maxsize,
                expression=n.expression,
            )
        )
    expression = state.group_preferred.get(group, "")
    if not expression:
        exprs = {m.expression for m in members if m.expression}
        expression = exprs.pop() if len(exprs) == 1 else ""
    return GroupBalance(
        group=report.label,
        kind=report.kind,
        expression=expression,
        members=tuple(members),
        pending=report.pending.moves if report.pending else (),
        keys=report.keys,
    )


def balance_report(
    snapshot: Snapshot, sizes: SizesReport, *, rebalance: bool = False
) -> BalanceOverview:
    """Every balanced group's report (`sizes` are already cached by the backend)."""
    from annextui.backend.balance import BalanceError

    del sizes  # the backend reads its own (warm) size cache
    start = time.monotonic()
    repo = Repository(snapshot.path)
    groups = []
    notes = []
    for g in balanced_groups(snapshot):
        try:
            groups.append(group_balance(repo, g, rebalance=rebalance, label=snapshot.label))
        except BalanceError as exc:
            notes.append(str(exc))
    return BalanceOverview(tuple(groups), time.monotonic() - start, rebalance, "; ".join(notes))


def what_if(snapshot: Snapshot, sizes: SizesReport, change: WhatIf) -> WhatIfResult:
    from annextui.backend.balance import Balance, BalanceError

    del sizes
    start = time.monotonic()
    repo = Repository(snapshot.path)
    try:
        bal = Balance(repo, change.group, rebalance=change.rebalance)
        report = bal.report([change.scenario()], pending=False)
    except BalanceError as exc:
        return WhatIfResult(change, error=str(exc), seconds=time.monotonic() - start)
    res = report.scenarios[0]
    after = tuple((u, res.after[u][0], res.after[u][1], res.maxsizes.get(u)) for u in res.members)
    made_up = tuple((u, n) for u, n in report.names.items() if u not in snapshot.repos)
    return WhatIfResult(
        change,
        res.moves,
        after,
        made_up,
        seconds=time.monotonic() - start,
        keys=res.moved_keys,
        bytes=res.moved_bytes,
    )
