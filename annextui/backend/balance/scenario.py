"""What-if scenarios: add a node, remove a node, change a maxsize, change an expression.

A node added by a what-if gets a made-up UUID (derived from its name); ``balanced`` picks depend
on the UUIDs of all members, so the exact keys that move depend on it, the amounts do not in
expectation.
"""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass
from typing import Literal

from annextui.backend.balance.errors import BalanceError
from annextui.backend.preferred import ExpressionError, parse
from annextui.backend.units import SizeError, parse_size

__all__ = ["Scenario", "added_uuid", "parse_scenario"]


@dataclass(frozen=True, slots=True)
class Scenario:
    """One what-if: add NAME with maxsize; remove REPO; set REPO's maxsize or expression."""

    kind: Literal["add", "remove", "maxsize", "wanted"]
    target: str  # NAME for add, a repository (name, UUID, description, here) otherwise
    maxsize: int | None = None
    expression: str | None = None

    def describe(self) -> str:
        from annextui.backend.units import format_rough

        if self.kind == "add":
            if self.maxsize is None:
                return f"add node {self.target}"
            return f"add node {self.target} with maxsize {format_rough(self.maxsize, 2)}"
        if self.kind == "remove":
            return f"remove node {self.target}"
        if self.kind == "maxsize":
            return f"maxsize {self.target} {format_rough(self.maxsize or 0, 2)}"
        return f"wanted {self.target} {self.expression}"


def parse_scenario(text: str) -> Scenario:
    """``add:NAME:SIZE``, ``remove:REPO``, ``maxsize:REPO:SIZE``, ``wanted:REPO:EXPRESSION``."""
    kind, _, rest = text.partition(":")
    try:
        if kind == "add":
            name, _, size = rest.partition(":")
            if not name or ":" in name:
                raise BalanceError(f"what-if {text!r}: expected add:NAME:SIZE")
            return Scenario("add", name, maxsize=parse_size(size) if size else None)
        if kind == "remove":
            if not rest:
                raise BalanceError(f"what-if {text!r}: expected remove:REPO")
            return Scenario("remove", rest)
        if kind == "maxsize":
            target, _, size = rest.partition(":")
            if not target or not size:
                raise BalanceError(f"what-if {text!r}: expected maxsize:REPO:SIZE")
            return Scenario("maxsize", target, maxsize=parse_size(size))
        if kind == "wanted":
            target, _, expr = rest.partition(":")
            if not target:
                raise BalanceError(f"what-if {text!r}: expected wanted:REPO:EXPRESSION")
            try:
                parse(expr)
            except ExpressionError as exc:
                raise BalanceError(f"what-if {text!r}: {exc}") from exc
            return Scenario("wanted", target, expression=expr)
    except SizeError as exc:
        raise BalanceError(f"what-if {text!r}: unable to parse size") from exc
    raise BalanceError(
        f"what-if {text!r}: expected add:NAME:SIZE, remove:REPO, maxsize:REPO:SIZE "
        "or wanted:REPO:EXPRESSION"
    )


def added_uuid(name: str) -> str:
    """The made-up UUID of a node added by a what-if (stable for a name)."""
    return str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"annextui-what-if:{name}"))
