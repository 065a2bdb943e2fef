"""What needs an admin's attention (pure: computed from the snapshot, sizes, balance, reach)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from annextui.backend.units import format_rough
from annextui.console.balance_source import BalanceOverview
from annextui.console.reachability import Reachability
from annextui.console.sizes_source import SizesReport
from annextui.console.snapshot import Snapshot

FULL_THRESHOLD = 0.9


@dataclass(frozen=True, slots=True)
class Alert:
    severity: str  # "error", "warning", "ok", "muted"
    text: str
    subject: str = ""  # UUID or group the alert is about


def compute_alerts(
    snapshot: Snapshot,
    sizes: SizesReport | None,
    balance: BalanceOverview | None,
    reach: Mapping[str, Reachability],
) -> list[Alert]:
    out: list[Alert] = []
    nodes = snapshot.node_uuids
    watched = list(nodes) + [
        u for u, r in snapshot.repos.items() if r.maxsize and u not in nodes and not r.is_cluster
    ]
    if sizes is None:
        out.append(Alert("muted", "sizes are being computed…"))
    else:
        for u in watched:
            row = snapshot.repos.get(u)
            if row is None or not row.maxsize:
                continue
            used = sizes.sizes.get(u)
            b = used.size if used else 0
            frac = b / row.maxsize
            if frac >= FULL_THRESHOLD:
                word = "over its maxsize" if frac > 1 else f"{frac:.0%} full"
                out.append(
                    Alert(
                        "error",
                        f"{row.label} is {word} "
                        f"({format_rough(b, 1)} of {format_rough(row.maxsize, 1)})",
                        u,
                    )
                )
    for u in nodes:
        r = reach.get(u)
        if r is not None and r.state == "unreachable":
            out.append(Alert("error", f"{snapshot.label(u)} is unreachable: {r.detail}", u))
    if balance is not None:
        for g in balance.groups:
            plan = g.plan
            if not plan.empty:
                text = f"{g.group} is not balanced: {plan.describe()}"
                out.append(Alert("warning", text, g.group))
    checked = [u for u in nodes if u in reach]
    if not [a for a in out if a.severity in ("error", "warning")]:
        detail = f"; {len(checked)} of {len(nodes)} nodes checked reachable" if nodes else ""
        out.append(Alert("ok", f"no alerts{detail}"))
    return out
