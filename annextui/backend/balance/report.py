"""The balance report: per node, like Ceph's ``osd df``, keys and bytes held (location logs),
maxsize, %use, VAR (use / mean use of the nodes with a maxsize) -- and, from the
preferred-content engine, in git-annex's words: the keys the node wants (``want-get``, what
``git annex find --want-get-by=NODE`` matches), of those the ones it lacks (``to get``: with
``--not --in=NODE``) and the held keys it would drop (``to drop``: ``--want-drop-by=NODE
--in=NODE``); then the plan of each simulated world, transfers (copy, move, get) and drops
counted apart. Text as ``annextui balance`` prints it, and JSON; the console uses the same
words and the same `PlanTotals`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from annextui.backend.balance.scenario import Scenario

__all__ = [
    "BalanceReport",
    "KeyMove",
    "Move",
    "MoveKind",
    "NodeRow",
    "PlanTotals",
    "ScenarioResult",
    "use_percent",
]

MoveKind = Literal["move", "copy", "drop", "get"]


@dataclass(frozen=True, slots=True)
class NodeRow:
    uuid: str
    name: str
    keys: int
    size: int
    maxsize: int | None
    use: float | None  # percent of maxsize
    var: float | None  # use / mean use (Ceph's VAR)
    configured: bool
    expression: str
    want_get_keys: int = 0  # the node's preferred content wants it (held or not)
    want_get_bytes: int = 0
    to_drop_keys: int = 0  # held, and the node would drop it (want-drop)
    to_drop_bytes: int = 0
    to_get_keys: int = 0  # want-get, not held
    to_get_bytes: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "uuid": self.uuid,
            "name": self.name,
            "keys": self.keys,
            "size": self.size,
            "maxsize": self.maxsize,
            "use": self.use,
            "var": self.var,
            "configured": self.configured,
            "expression": self.expression,
            "want-get": {"keys": self.want_get_keys, "bytes": self.want_get_bytes},
            "to-get": {"keys": self.to_get_keys, "bytes": self.to_get_bytes},
            "to-drop": {"keys": self.to_drop_keys, "bytes": self.to_drop_bytes},
        }


@dataclass(frozen=True, slots=True)
class KeyMove:
    """One key's part of a plan: ``kind`` as in ``Move`` (``move``: dst gets it and src drops
    it; ``copy``: src keeps it; ``drop``: dst is None; ``get``: src is None, no known copy)."""

    key: str
    size: int
    src: str | None
    dst: str | None
    kind: MoveKind


@dataclass(frozen=True, slots=True)
class Move:
    """Keys that would go from ``src`` to ``dst``.

    kind: ``move`` (src drops its copy once dst has one), ``copy`` (src keeps it), ``drop``
    (``dst`` None: src drops it, no new copy in the group), ``get`` (``src`` None: dst wants a
    key no repository is known to have).
    """

    src: str | None
    dst: str | None
    keys: int
    bytes: int
    kind: MoveKind = "copy"

    def to_json(self, names: dict[str, str]) -> dict[str, object]:
        return {
            "kind": self.kind,
            "from": self.src,
            "from-name": names.get(self.src, "") if self.src else None,
            "to": self.dst,
            "to-name": names.get(self.dst, "") if self.dst else None,
            "keys": self.keys,
            "bytes": self.bytes,
        }


@dataclass(frozen=True, slots=True)
class PlanTotals:
    """A plan summed up: keys transferred (copy, move, get: a new copy somewhere) and keys
    dropped without a new copy in their place, kept apart so neither hides the other."""

    transfer_keys: int = 0
    transfer_bytes: int = 0
    drop_keys: int = 0
    drop_bytes: int = 0

    @classmethod
    def of(cls, moves: Iterable[Move]) -> PlanTotals:
        t = [0, 0, 0, 0]
        for m in moves:
            i = 2 if m.dst is None else 0
            t[i] += m.keys
            t[i + 1] += m.bytes
        return cls(*t)

    @property
    def empty(self) -> bool:
        return not self.transfer_keys and not self.drop_keys

    def describe(self) -> str:
        """`3 keys to transfer (1.2 GB), 2 keys to drop (712.6 MB)`; `nothing to do`."""
        from annextui.backend.units import format_rough

        if self.empty:
            return "nothing to transfer or drop"
        parts = []
        for n, b, verb in (
            (self.transfer_keys, self.transfer_bytes, "transfer"),
            (self.drop_keys, self.drop_bytes, "drop"),
        ):
            if n:
                parts.append(f"{n} key{'s' if n != 1 else ''} to {verb} ({format_rough(b, 1)})")
        return ", ".join(parts)

    def to_json(self) -> dict[str, dict[str, int]]:
        return {
            "transfer": {"keys": self.transfer_keys, "bytes": self.transfer_bytes},
            "drop": {"keys": self.drop_keys, "bytes": self.drop_bytes},
        }


@dataclass(frozen=True)
class ScenarioResult:
    scenario: Scenario | None  # None: the configuration as it is
    moves: tuple[Move, ...]
    after: dict[str, tuple[int, int]]  # node -> (keys, bytes) once the moves are done
    members: tuple[str, ...]
    maxsizes: dict[str, int | None]

    @property
    def totals(self) -> PlanTotals:
        return PlanTotals.of(self.moves)

    @property
    def moved_keys(self) -> int:
        return self.totals.transfer_keys

    @property
    def moved_bytes(self) -> int:
        return self.totals.transfer_bytes

    def to_json(self, names: dict[str, str]) -> dict[str, object]:
        return {
            "scenario": self.scenario.describe() if self.scenario else None,
            **self.totals.to_json(),
            "moves": [m.to_json(names) for m in self.moves],
            "after": [
                {
                    "uuid": u,
                    "name": names.get(u, ""),
                    "keys": self.after[u][0],
                    "size": self.after[u][1],
                    "maxsize": self.maxsizes.get(u),
                    "use": use_percent(self.after[u][1], self.maxsizes.get(u)),
                }
                for u in self.members
            ],
        }


@dataclass(frozen=True)
class BalanceReport:
    label: str
    kind: str
    members: tuple[str, ...]
    nodes: tuple[NodeRow, ...]
    names: dict[str, str]
    keys: int  # keys considered (every key with a location log)
    mean_use: float | None
    pending: ScenarioResult | None  # transfers the configuration itself would make
    scenarios: tuple[ScenarioResult, ...] = ()
    seconds: float = 0.0

    @property
    def min_var(self) -> float | None:
        vs = [n.var for n in self.nodes if n.var is not None]
        return min(vs) if vs else None

    @property
    def max_var(self) -> float | None:
        vs = [n.var for n in self.nodes if n.var is not None]
        return max(vs) if vs else None

    @property
    def stddev(self) -> float | None:
        uses = [n.use for n in self.nodes if n.use is not None]
        if not uses or self.mean_use is None:
            return None
        m = self.mean_use
        return float((sum((u - m) ** 2 for u in uses) / len(uses)) ** 0.5)

    def to_json(self) -> dict[str, object]:
        return {
            "group": self.label,
            "kind": self.kind,
            "members": list(self.members),
            "keys": self.keys,
            "nodes": [n.to_json() for n in self.nodes],
            "total": self.totals.to_json(),
            "mean-use": self.mean_use,
            "min-var": self.min_var,
            "max-var": self.max_var,
            "stddev": self.stddev,
            "pending": self.pending.to_json(self.names) if self.pending else None,
            "what-if": [
                s.to_json(self.names)
                | (
                    {
                        "vs-pending": {
                            "keys": s.moved_keys - self.pending.moved_keys,
                            "bytes": s.moved_bytes - self.pending.moved_bytes,
                        }
                    }
                    if self.pending is not None
                    else {}
                )
                for s in self.scenarios
            ],
        }

    def to_text(self, *, max_moves: int = 12) -> list[str]:
        from annextui.backend.units import format_rough

        def sz(n: int | None) -> str:
            return "-" if n is None else format_rough(n, 1)

        def pct(x: float | None, fmt: str = "{:.2f}") -> str:
            return "-" if x is None else fmt.format(x)

        lines = [f"{self.kind} {self.label}: {len(self.members)} nodes, {self.keys} keys"]
        head = (
            f"{'KEYS':>9} {'SIZE':>9} {'MAXSIZE':>9} {'%USE':>6} {'VAR':>5} "
            f"{'WANT-GET':>9} {'TO-GET':>7} {'TO-DROP':>8}  NODE"
        )
        lines.append(head)
        for n in self.nodes:
            w = str(n.want_get_keys) if n.configured else "-"
            g = str(n.to_get_keys) if n.configured else "-"
            d = str(n.to_drop_keys) if n.configured else "-"
            lines.append(
                f"{n.keys:>9} {sz(n.size):>9} {sz(n.maxsize):>9} {pct(n.use):>6} "
                f"{pct(n.var):>5} {w:>9} {g:>7} {d:>8}  {n.uuid} -- {n.name}"
            )
        t = self.totals
        lines.append(
            f"{t.keys:>9} {sz(t.size):>9} {'':>9} {'':>6} {'':>5} {t.want_get_keys:>9} "
            f"{t.to_get_keys:>7} {t.to_drop_keys:>8}  TOTAL (copies on the nodes)"
        )
        lines.append(
            f"MIN/MAX VAR: {pct(self.min_var)}/{pct(self.max_var)}  STDDEV: {pct(self.stddev)}"
        )
        results = ([self.pending] if self.pending else []) + list(self.scenarios)
        for res in results:
            title = res.scenario.describe() if res.scenario else "pending (current configuration)"
            lines.append("")
            lines.append(f"{title}: {res.totals.describe()}")
            for mv in res.moves[:max_moves]:
                src = self._label(mv.src) if mv.src else "(no known copy)"
                dst = self._label(mv.dst) if mv.dst else "(dropped)"
                lines.append(
                    f"  {mv.kind:<4} {src} -> {dst}: {mv.keys} keys, {format_rough(mv.bytes, 2)}"
                )
            if len(res.moves) > max_moves:
                rest = res.moves[max_moves:]
                lines.append(
                    f"  ... {len(rest)} more: {sum(m.keys for m in rest)} keys, "
                    f"{format_rough(sum(m.bytes for m in rest), 2)}"
                )
            if res.scenario is not None and self.pending is not None:
                dk = res.moved_keys - self.pending.moved_keys
                db = res.moved_bytes - self.pending.moved_bytes
                sign = "-" if db < 0 else "+"
                lines.append(
                    f"  compared with pending: {dk:+d} keys to transfer, "
                    f"{sign}{format_rough(abs(db), 2)}"
                )
            if res.scenario is not None:
                for u in res.members:
                    k, b = res.after[u]
                    use = use_percent(b, res.maxsizes.get(u))
                    lines.append(
                        f"  after: {self._label(u)}: {k} keys, {sz(b)}"
                        + (f", {use:.2f}% of {sz(res.maxsizes.get(u))}" if use is not None else "")
                    )
        return lines

    @property
    def totals(self) -> NodeRow:
        """The table's TOTAL row: every column summed over the nodes (copies, not keys)."""
        return NodeRow(
            uuid="",
            name="TOTAL",
            keys=sum(n.keys for n in self.nodes),
            size=sum(n.size for n in self.nodes),
            maxsize=None,
            use=None,
            var=None,
            configured=True,
            expression="",
            want_get_keys=sum(n.want_get_keys for n in self.nodes),
            want_get_bytes=sum(n.want_get_bytes for n in self.nodes),
            to_drop_keys=sum(n.to_drop_keys for n in self.nodes),
            to_drop_bytes=sum(n.to_drop_bytes for n in self.nodes),
            to_get_keys=sum(n.to_get_keys for n in self.nodes),
            to_get_bytes=sum(n.to_get_bytes for n in self.nodes),
        )

    def _label(self, u: str) -> str:
        name = self.names.get(u)
        return f"{u} ({name})" if name else u


def use_percent(size: int, maxsize: int | None) -> float | None:
    if maxsize is None or maxsize <= 0:
        return None
    return size * 100 / maxsize
