"""Executing the balance plan: the moves ``annextui balance --rebalance`` predicts (what
``git annex move --rebalance`` would decide), key by key, as job steps.

The plan comes from ``Balance.plan()`` (backend/balance/simulation.py), the same pass over the
keys that computes the report's pending transfers: keys visited in branch order, live sizes
growing and shrinking as keys land and leave. Each key becomes one step: its copies (``move``
and ``copy``), then its drops (the source of a ``move``, and plain ``drop``s). A key no member
or reachable repository holds (``get``) cannot be fetched by the gateway and is only counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from annextui.backend.balance import Balance, KeyMove
from annextui.operations.jobs import Step
from annextui.operations.nodes import GatewayNodes

__all__ = ["RebalancePlan", "plan_rebalance"]


@dataclass
class RebalancePlan:
    label: str
    kind: str  # "cluster" or "group"
    members: tuple[str, ...]
    needed: int
    steps: list[Step] = field(default_factory=list)
    unsourced: list[KeyMove] = field(default_factory=list)  # wanted, no reachable copy
    balance: Balance | None = None  # the simulation the plan came from (for its proof)

    @property
    def copies(self) -> int:
        return sum(len(s.copies) for s in self.steps)

    @property
    def drops(self) -> int:
        return sum(len(s.drops) for s in self.steps)

    @property
    def bytes(self) -> int:
        return sum(s.size * len(s.copies) for s in self.steps)


def plan_rebalance(nodes: GatewayNodes, name: str) -> RebalancePlan:
    bal = Balance(nodes.repo, name, rebalance=True)
    plan = RebalancePlan(
        bal.label,
        bal.kind,
        bal.members,
        max(bal.world.global_numcopies(), bal.world.mincopies or 1),
        balance=bal,
    )
    by_key: dict[str, list[KeyMove]] = {}
    for m in bal.plan():
        by_key.setdefault(m.key, []).append(m)
    for key, moves in by_key.items():
        copies: list[tuple[str, str]] = []
        drops: list[str] = []
        for m in moves:
            if m.kind == "drop" and m.src is not None:
                drops.append(m.src)
                continue
            if m.src is None or m.dst is None or nodes.remote_of(m.src) is None:
                plan.unsourced.append(m)
                continue
            copies.append((m.src, m.dst))
            if m.kind == "move":
                drops.append(m.src)
        if copies or drops:
            plan.steps.append(Step(key, moves[0].size, tuple(copies), tuple(drops)))
    return plan
