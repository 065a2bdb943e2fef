"""Balance report for a group of nodes: who holds what, who wants what, and what-if scenarios.

* ``members`` -- the nodes: a group's members or a cluster's nodes; names resolved to UUIDs;
* ``wanted`` -- the preferred-content world with current sizes, one key's facts, wanted-check;
* ``scenario`` -- what-if scenarios and how they are written;
* ``simulation`` -- ``Balance``: one pass over the keys, the table and every simulated world;
* ``report`` -- the report's rows, moves and results, as text and JSON;
* ``placement`` -- the modelled state a proof runs on (who holds which key, the configuration);
* ``proof`` -- ``prove``: apply a plan, re-evaluate until a fixed point or a cycle;
* ``proof_report`` -- a proof as text and JSON;
* ``simfile`` -- ``git annex sim`` scripts read as a placement.
"""

from annextui.backend.balance.errors import BalanceError
from annextui.backend.balance.members import resolve_members, resolve_repo
from annextui.backend.balance.placement import ModelKey, Placement, placement_of_balance
from annextui.backend.balance.proof import Oscillation, PlanMove, Proof, prove
from annextui.backend.balance.proof_report import proof_json, proof_text
from annextui.backend.balance.report import (
    BalanceReport,
    KeyMove,
    Move,
    MoveKind,
    NodeRow,
    PlanTotals,
    ScenarioResult,
)
from annextui.backend.balance.scenario import Scenario, added_uuid, parse_scenario
from annextui.backend.balance.simulation import Balance
from annextui.backend.balance.wanted import build_world, key_facts, replace_world, wanted_check

__all__ = [
    "Balance",
    "BalanceError",
    "BalanceReport",
    "KeyMove",
    "ModelKey",
    "Move",
    "MoveKind",
    "NodeRow",
    "Oscillation",
    "Placement",
    "PlanMove",
    "PlanTotals",
    "Proof",
    "Scenario",
    "ScenarioResult",
    "added_uuid",
    "build_world",
    "key_facts",
    "parse_scenario",
    "placement_of_balance",
    "proof_json",
    "proof_text",
    "prove",
    "replace_world",
    "resolve_members",
    "resolve_repo",
    "wanted_check",
]
