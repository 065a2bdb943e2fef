"""Why a repository wants a key or not: the explanation ``Evaluator.explain`` returns.

How a repository's preferred content is configured (``MatcherInfo``), every evaluated term in
order (``TermResult``, with ``BalancedDetail`` for the balanced family), the expression rendered
with ``[TRUE]``/``[FALSE]`` after each evaluated term (git-annex's ``describeMatchResult``
style), and the one-line reason for the decision. The evaluator records the trace; this module
turns it into text and never evaluates anything itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from annextui.backend.preferred.terms import (
    And,
    Empty,
    Not,
    Or,
    Term,
)
from annextui.values import Value

__all__ = [
    "BalancedDetail",
    "Explanation",
    "FileExplanation",
    "MatcherInfo",
    "Status",
    "TermResult",
    "conclude",
    "file_explanation",
    "unconfigured",
]

Status = Literal["configured", "unconfigured", "unparsable"]
Context = Literal["get", "drop"]


class BalancedDetail(Value):
    """How a balanced-family term decided for one repository and key."""

    kind: str
    group: str
    uuid: str
    members: tuple[str, ...]
    count: int
    candidates: tuple[str, ...]
    excluded: dict[str, str]
    picks: tuple[str, ...]
    picked: bool
    size_rule: bool = False
    size_ranked: tuple[tuple[str, float], ...] = ()
    present: bool | None = None
    enough_copies: bool | None = None
    rebalance: bool = False

    def describe(self) -> str:
        parts = [f"group {self.group!r} members {list(self.members)}"]
        if self.excluded:
            parts.append("excluded " + ", ".join(f"{u}: {r}" for u, r in self.excluded.items()))
        parts.append(f"candidates {list(self.candidates)}, N={self.count}")
        parts.append(f"picks {list(self.picks)} -> {'picked' if self.picked else 'not picked'}")
        if self.present is not None:
            parts.append(f"present={self.present}")
        if self.enough_copies is not None:
            parts.append(f"enough-copies-check={self.enough_copies}")
        return "; ".join(parts)


class TermResult(Value):
    """One evaluated term, in evaluation order (``children``: inside standard/groupwanted)."""

    token: str
    result: bool
    term: Term
    balanced: BalancedDetail | None = None
    children: tuple[TermResult, ...] = ()
    expansion: str | None = None
    error: str | None = None


class FileExplanation(Value):
    file: str | None
    matched: bool
    decided_by: TermResult | None
    trace: tuple[TermResult, ...]
    rendered: str
    error: str | None = None


class MatcherInfo(Value):
    """How a repository's preferred (or required) content is configured."""

    uuid: str
    status: Status
    preferred: str | None
    required: str | None
    error: str | None
    unstable: tuple[str, ...]
    expression: str

    @property
    def stable(self) -> bool:
        return not self.unstable


class Explanation(Value):
    uuid: str
    context: Context
    decision: bool
    info: MatcherInfo
    reason: str
    files: tuple[FileExplanation, ...] = ()

    @property
    def decided_by(self) -> TermResult | None:
        for f in self.files:
            if f.decided_by is not None:
                return f.decided_by
        return None

    def describe(self) -> str:
        verb = "wants to get" if self.context == "get" else "wants to drop"
        head = f"{self.uuid} {verb}: {'yes' if self.decision else 'no'} ({self.reason})"
        lines = [head]
        for f in self.files:
            lines.append(f"  {f.file or '<key only>'}: {f.rendered}")
            for t in _walk_results(f.trace):
                if t.balanced is not None:
                    lines.append(f"    {t.token}: {t.balanced.describe()}")
        return "\n".join(lines)


def _walk_results(trace: Iterable[TermResult]) -> list[TermResult]:
    out: list[TermResult] = []
    for t in trace:
        out.append(t)
        out.extend(_walk_results(t.children))
    return out


def file_explanation(
    file: str | None, matched: bool, trace: list[TermResult], root: object, error: str | None
) -> FileExplanation:
    """One file's evaluation: decided by the last term evaluated (short-circuit stops there)."""
    decided = trace[-1] if trace else None
    return FileExplanation(file, matched, decided, tuple(trace), _render(root, trace), error)


def unconfigured(uuid: str, context: Context, info: MatcherInfo, default: bool) -> Explanation:
    """No preferred content: the caller's default decides."""
    decision = default if context == "get" else not default
    return Explanation(uuid, context, decision, info, f"no preferred content; default {default}")


def conclude(
    uuid: str,
    context: Context,
    info: MatcherInfo,
    files: list[FileExplanation],
    unstable_terms: tuple[str, ...],
) -> Explanation:
    """The decision and its reason from the files evaluated (the last one decided)."""
    failed = next((f.error for f in files if f.error is not None), None)
    matched_any = any(f.matched for f in files)
    if failed is not None:
        reason = f"git-annex fails this check ({failed}); nothing is transferred or dropped"
        decision = False
    elif unstable_terms:
        reason = (
            "expression not stable due to negated use of "
            + " ".join(unstable_terms)
            + ", so git-annex will not use it (never matches)"
        )
        decision = context == "drop"
    else:
        decision = matched_any if context == "get" else not matched_any
        src = (
            "unparsable expression, behaving like present"
            if info.status == "unparsable"
            else "matches"
            if matched_any
            else "does not match"
        )
        dec = files[-1].decided_by
        reason = f"{src}" + (f"; decided by {dec.token}[{dec.result}]" if dec else "")
    return Explanation(uuid, context, decision, info, reason, tuple(files))


def _render(root: object, trace: list[TermResult]) -> str:
    """The expression with ``[TRUE]``/``[FALSE]`` after every evaluated term (git-annex's
    ``describeMatchResult`` style); terms short-circuit evaluation skipped stay bare."""
    pending = trace
    pos = 0

    def term_text(n: object) -> str:  # a term, or a resolved standard/groupwanted
        return str(getattr(n, "token", "?"))

    def go(n: object, evaluated: bool) -> tuple[str, bool | None]:
        nonlocal pos
        if isinstance(n, Empty):
            return "()", True if evaluated else None
        if isinstance(n, (And, Or)):
            parts: list[str] = []
            value: bool | None = None
            live = evaluated
            for child in n.items:
                s, v = go(child, live)
                parts.append(s)
                if live:
                    value = v
                    if (isinstance(n, And) and v is False) or (isinstance(n, Or) and v is True):
                        live = False
            sep = " and " if isinstance(n, And) else " or "
            return "(" + sep.join(parts) + ")", value
        if isinstance(n, Not):
            s, v = go(n.operand, evaluated)
            return f"not {s}", (None if v is None else not v)
        text = term_text(n)
        if not evaluated or pos >= len(pending):
            return text, None
        r = pending[pos]
        pos += 1
        return f"{text}[{'TRUE' if r.result else 'FALSE'}]", r.result

    s, _ = go(root, True)
    if s.startswith("(") and s.endswith(")"):
        s = s[1:-1]
    return s
