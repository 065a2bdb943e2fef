"""Executing the balance plan: the moves ``annextui balance --rebalance`` predicts (what
``git annex move --rebalance`` would decide), key by key, as job steps.

The plan comes from ``Balance.plan()`` (backend/balance/simulation.py), the same pass over the
keys that computes the report's pending transfers: keys visited in branch order, live sizes
growing and shrinking as keys land and leave. Each key becomes one step: its copies (``move``
and ``copy``), then its drops (the source of a ``move``, and plain ``drop``s). A key no member
or reachable repository holds (``get``) cannot be fetched by the gateway and is only counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from annextui.backend.balance import Balance, KeyMove, PlanMove, Proof, placement_of_balance, prove
from annextui.backend.units import format_rough
from annextui.operations.jobs import Step
from annextui.operations.nodes import GatewayNodes

__all__ = ["RebalancePlan", "plan_rebalance", "rebalance_lines"]


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

    def summary(self) -> dict[str, object]:
        """The plan's figures, as `rebalance --dry-run --json` prints them and the job record
        keeps them (the console's Jobs view reads them)."""
        return {
            "target": self.label,
            "kind": self.kind,
            "members": list(self.members),
            "keys": len(self.steps),
            "copies": self.copies,
            "drops": self.drops,
            "bytes": self.bytes,
            "unsourced-keys": len(self.unsourced),
            "numcopies": self.needed,
        }

    def proof(self) -> Proof | None:
        """The convergence proof of the plan (backend/balance/proof.py): its copies and drops
        applied to the modelled placement, then every member's preferred content re-evaluated
        until nothing changes or a state repeats. None when the plan came from no simulation."""
        if self.balance is None:
            return None
        moves: list[PlanMove] = []
        for step in self.steps:
            moves += [PlanMove(step.key, None, dst) for _src, dst in step.copies]
            moves += [PlanMove(step.key, src, None) for src in step.drops]
        return prove(placement_of_balance(self.balance), moves)


def rebalance_lines(summary: Mapping[str, object]) -> list[str]:
    """A rebalance plan's figures in one line (from `RebalancePlan.summary`)."""
    line = (
        f"rebalance {summary.get('kind')} {summary.get('target')}: {summary.get('keys')} keys "
        f"to move, {summary.get('copies')} copies "
        f"({format_rough(int(str(summary.get('bytes', 0))), 2)}), {summary.get('drops')} drops"
    )
    if summary.get("unsourced-keys"):
        line += f", {summary.get('unsourced-keys')} wanted keys without a reachable copy"
    return [line]


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
