"""Tokenizer and parser for preferred-content expressions (spec §3-4); the tree it builds is
terms.py (re-exported here).

Ported from git-annex ``Annex/FileMatcher.hs`` (tokens) and ``Utility/Matcher.hs`` (structure):

* words are split on Haskell ``isSpace``; ``(`` and ``)`` are always tokens of their own; no
  quoting. ``and``/``or``/``not``/``(``/``)`` are syntax; any other word is a term, ``name`` or
  ``name=value`` split at the first ``=``.
* strictly left to right, no precedence: ``a or b and c`` = ``(a or b) and c``; adjacent
  terms/groups get an implicit ``and``; ``not`` takes the next term or group; a missing ``)``
  is tolerated and an extra ``)`` ignored. Odd sequences keep git-annex's exact meaning, e.g.
  ``a and or b`` = ``a and (anything or b)``, a trailing ``not`` = ``not anything``.
* values are parsed like git-annex does (``copies=2abc`` is 2, ``copies=0x10`` is 16 ...).

``parse`` raises ``ExpressionError`` naming every bad token with its column; it never raises
anything else. The result is an ``Expression`` whose ``root`` is a tree of frozen values
(n-ary ``And``/``Or`` for left-to-right chains, ``Not``, terms, ``Empty``).
"""

from __future__ import annotations

from typing import Any

from annextui.backend.ghcread import readish_int, words
from annextui.backend.preferred.terms import (
    And,
    Anything,
    Balanced,
    BalancedKind,
    Copies,
    Empty,
    Exclude,
    GroupWanted,
    InAllGroup,
    InBackend,
    Include,
    InPreferredDir,
    LackingCopies,
    LargerThan,
    MetaData,
    MetaOp,
    Node,
    Not,
    Nothing,
    OnlyInGroup,
    Or,
    Present,
    SecureHash,
    SmallerThan,
    Standard,
    Term,
    Unused,
    Url,
    iter_terms,
)
from annextui.backend.trust import TrustLevel
from annextui.values import Value

__all__ = [
    "MAX_DEPTH",
    "And",
    "Anything",
    "Balanced",
    "Copies",
    "Empty",
    "Exclude",
    "Expression",
    "ExpressionError",
    "GroupWanted",
    "InAllGroup",
    "InBackend",
    "InPreferredDir",
    "Include",
    "LackingCopies",
    "LargerThan",
    "MetaData",
    "Node",
    "Not",
    "Nothing",
    "OnlyInGroup",
    "Or",
    "ParseIssue",
    "Present",
    "SecureHash",
    "SmallerThan",
    "Standard",
    "Term",
    "Token",
    "Unused",
    "Url",
    "iter_terms",
    "parse",
    "parse_term",
    "tokenize",
]

#: Deepest nesting (parentheses / chains of ``not``) accepted. git-annex has no limit; deeper
#: expressions are refused here (ExpressionError) rather than risking Python recursion limits.
MAX_DEPTH = 256


# ---------------------------------------------------------------------------------------------
# Errors


class ParseIssue(Value):
    """One bad token: its text, 0-based character offset, 0-based token index and why."""

    token: str
    position: int
    index: int
    reason: str

    def describe(self) -> str:
        where = f"column {self.position + 1} (token {self.index + 1})"
        return f"{self.reason} in {self.token!r} at {where}"


class ExpressionError(ValueError):
    """A malformed preferred-content expression. ``issues`` lists every bad token."""

    def __init__(self, expression: str, issues: tuple[ParseIssue, ...]) -> None:
        self.expression = expression
        self.issues = issues
        first = issues[0] if issues else None
        self.token = first.token if first else None
        self.position = first.position if first else None
        super().__init__(
            "bad preferred content expression: " + "; ".join(i.describe() for i in issues)
        )

    @property
    def git_annex_message(self) -> str:
        """What ``git annex wanted`` would print after ``Parse error:``."""
        return " ".join(f"Parse failure: {i.reason}" for i in self.issues)


class _TokenError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------------------------------------
# Tokens


class Token(Value):
    text: str
    position: int
    index: int


def tokenize(expression: str) -> tuple[Token, ...]:
    """``tokenizeMatcher``: words, with every ``(`` and ``)`` split off as its own token."""
    out: list[Token] = []
    for word, start in words(expression):
        seg_start = 0
        for i, c in enumerate(word):
            if c in "()":
                if i > seg_start:
                    out.append(Token(word[seg_start:i], start + seg_start, len(out)))
                out.append(Token(c, start + i, len(out)))
                seg_start = i + 1
        if seg_start < len(word):
            out.append(Token(word[seg_start:], start + seg_start, len(out)))
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# The result


class Expression(Value):
    """A parsed expression.

    empty: git-annex's ``isEmpty`` of the generated matcher (no terms at all, e.g. ``""`` or
    ``( )``): a configured-but-empty expression counts as *not configured*.
    """

    source: str
    root: Node
    tokens: tuple[Token, ...]
    empty: bool

    def terms(self) -> list[Term]:
        return list(iter_terms(self.root))

    def __str__(self) -> str:
        return self.source


# ---------------------------------------------------------------------------------------------
# Terms


def _parse_count(value: str, what: str) -> int:
    n = readish_int(value)
    if n is None:
        raise _TokenError(what)
    return n


def parse_copies(value: str, token: str) -> Copies:
    """``limitCopies``: ``N``, ``LEVEL:N``, ``LEVEL+:N`` or ``GROUP:N`` (split at every ``:``)."""
    parts = value.split(":")
    if len(parts) == 1:
        return Copies(_parse_count(parts[0], "bad number for copies"), token=token)
    if len(parts) != 2:
        raise _TokenError("bad number for copies")
    spec, num = parts
    n = _parse_count(num, "bad number for copies")
    if spec.endswith("+"):
        level = TrustLevel.parse(spec[:-1])
        if level is not None:
            return Copies(n, trust=level, trust_or_higher=True, token=token)
    else:
        level = TrustLevel.parse(spec)
        if level is not None:
            return Copies(n, trust=level, token=token)
    return Copies(n, group=spec, token=token)


def _parse_balanced(kind: BalancedKind, value: str, token: str) -> Balanced:
    parts = value.split(":")
    count: int | None
    if len(parts) == 1:
        count = 1
    elif len(parts) == 2:
        if parts[1] == "lackingcopies":
            count = None
        else:
            n = readish_int(parts[1])
            if n is None:
                raise _TokenError(f"bad number for {_term_name(kind)}")
            count = n
    else:
        raise _TokenError(f"bad value for {_term_name(kind)}")
    enough: Copies | LackingCopies | None = None
    if kind in ("balanced", "sizebalanced"):
        if value.endswith(":lackingcopies"):
            enough = LackingCopies(1, approx=False, token=kind)
        else:
            enough = parse_copies(value if ":" in value else value + ":1", token)
    return Balanced(kind, parts[0], count, enough, token=token)


def _term_name(kind: BalancedKind) -> str:
    # fullybalanced reports itself as "balanced" when it is the inner term of balanced=
    return kind


_META_OPS: tuple[MetaOp, ...] = ("<=", ">=", "=", "<", ">")


def _legal_field(name: str) -> bool:
    if not name or not name[0].isalnum():
        return False
    return all(c.isalnum() or c in "_-." for c in name[1:])


def _parse_metadata(value: str, token: str) -> MetaData:
    i = 0
    while i < len(value) and value[i] not in "=<>":
        i += 1
    fieldname, rest = value[:i], value[i:]
    if not _legal_field(fieldname):
        raise _TokenError(f'Illegal metadata field name, "{fieldname}"')
    op: MetaOp
    if rest.startswith("="):
        op, v = "=", rest[1:]
    elif rest.startswith("<="):
        op, v = "<=", rest[2:]
    elif rest.startswith("<"):
        op, v = "<", rest[1:]
    elif rest.startswith(">="):
        op, v = ">=", rest[2:]
    elif rest.startswith(">"):
        op, v = ">", rest[1:]
    else:  # no operator: checkglob ""
        op, v = "=", ""
    return MetaData(fieldname, op, v, token=token)


def _parse_size(value: str) -> int:
    try:
        from annextui.backend.units import SizeError, parse_size
    except ImportError:  # pragma: no cover - units.py is part of the package
        raise _TokenError("bad size") from None
    try:
        return parse_size(value)
    except SizeError:
        raise _TokenError("bad size") from None


_SIMPLE: dict[str, Term] = {
    "anything": Anything(),
    "nothing": Nothing(),
    "present": Present(),
    "securehash": SecureHash(),
    "inpreferreddir": InPreferredDir(),
    "standard": Standard(),
    "groupwanted": GroupWanted(),
    "unused": Unused(),
}


def parse_term(text: str) -> Term:
    """One non-syntax token as ``parseToken`` does it; raises ExpressionError when bad."""
    try:
        return _parse_term(text)
    except _TokenError as exc:
        raise ExpressionError(text, (ParseIssue(text, 0, 0, exc.reason),)) from None


def _parse_term(t: str) -> Term:
    simple = _SIMPLE.get(t)
    if simple is not None:
        return simple
    k, _, v = t.partition("=")
    if k == "include":
        return Include(v, token=t)
    if k == "exclude":
        return Exclude(v, token=t)
    if k == "copies":
        return parse_copies(v, t)
    if k == "lackingcopies":
        return LackingCopies(_parse_count(v, "bad value for number of lacking copies"), token=t)
    if k == "approxlackingcopies":
        return LackingCopies(
            _parse_count(v, "bad value for number of lacking copies"), approx=True, token=t
        )
    if k == "inbackend":
        return InBackend(v, token=t)
    if k == "metadata":
        return _parse_metadata(v, t)
    if k == "url":
        return Url(v, token=t)
    if k == "inallgroup":
        return InAllGroup(v, token=t)
    if k == "onlyingroup":
        return OnlyInGroup(v, token=t)
    if k in ("balanced", "fullybalanced", "sizebalanced", "fullysizebalanced"):
        return _parse_balanced(k, v, t)  # type: ignore[arg-type]
    if k == "largerthan":
        return LargerThan(_parse_size(v), token=t)
    if k == "smallerthan":
        return SmallerThan(_parse_size(v), token=t)
    raise _TokenError(f"near {_hs_show(t)}")


def _hs_show(s: str) -> str:
    """Haskell ``show`` of a String (close enough for messages)."""
    out = ['"']
    for c in s:
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif 32 <= ord(c) < 127:
            out.append(c)
        else:
            out.append(f"\\{ord(c)}")
    out.append('"')
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Structure (Utility/Matcher.hs generate), on an internal binary form

_AND, _OR, _NOT, _OPEN, _CLOSE = "and", "or", "not", "(", ")"
_SYNTAX = frozenset((_AND, _OR, _NOT, _OPEN, _CLOSE))

# internal matcher: ("any",) | ("and", a, b) | ("or", a, b) | ("not", a) | ("op", Term)
_M = tuple[Any, ...]
_MANY: _M = ("any",)


class _Group:
    __slots__ = ("items",)

    def __init__(self, items: list[object]) -> None:
        self.items = items


def _token_groups(toks: list[object]) -> list[object]:
    """``tokenGroups``: nest parenthesised runs; stray ``)`` dropped, missing ``)`` closed."""
    root: list[object] = []
    stack: list[list[object]] = [root]
    for t in toks:
        if t == _OPEN:
            new: list[object] = []
            stack[-1].append(_Group(new))
            stack.append(new)
            if len(stack) > MAX_DEPTH:
                raise _TokenError("parentheses nested too deeply")
        elif t == _CLOSE:
            if len(stack) > 1:
                stack.pop()
        else:
            stack[-1].append(t)
    return root


def _implicit_and(items: list[object]) -> list[object]:
    def need(x: object) -> bool:
        return isinstance(x, _Group) or x not in _SYNTAX

    out: list[object] = []
    for i, x in enumerate(items):
        out.append(x)
        if i + 1 < len(items) and need(x) and need(items[i + 1]):
            out.append(_AND)
    return out


def _process(m: _M, items: list[object], depth: int) -> _M:
    if depth > MAX_DEPTH:
        raise _TokenError("expression nested too deeply")
    ts = _implicit_and(items)
    i = 0
    while i < len(ts):
        m, i = _consume(m, ts, i, depth)
    return m


def _consume(m: _M, ts: list[object], i: int, depth: int) -> tuple[_M, int]:
    wrappers: list[tuple[str, _M]] = []
    cur = m
    while True:
        if i >= len(ts):
            base = cur
            break
        t = ts[i]
        i += 1
        if isinstance(t, _Group):
            base = _process(cur, t.items, depth + 1)
            break
        if t in (_AND, _OR, _NOT):
            wrappers.append((t, cur))  # type: ignore[arg-type]
            if len(wrappers) > MAX_DEPTH:
                raise _TokenError("too many consecutive and/or/not")
            cur = _MANY
            continue
        base = ("and", cur, ("op", t))
        break
    for kind, mm in reversed(wrappers):
        if kind == _AND:
            base = ("and", mm, base)
        elif kind == _OR:
            base = ("or", mm, base)
        else:
            base = ("and", mm, ("not", base))
    return base, i


def _top_is_empty(m: _M) -> bool:
    """``isEmpty (simplify m)`` with git-annex's top-down ``simplify``."""
    while True:
        if m[0] == "any":
            return True
        if m[0] != "and":
            return False
        if m[1][0] == "any":
            m = m[2]
        elif m[2][0] == "any":
            m = m[1]
        else:
            return False


def _to_node(m: _M) -> Node:
    """Convert to the public tree, dropping ``MAny`` operands of ``and`` and flattening
    left-to-right chains (same semantics: short-circuit evaluation left to right)."""
    # iterative post-order over the internal tree
    result: dict[int, Node] = {}
    stack: list[tuple[_M, bool]] = [(m, False)]
    while stack:
        node, done = stack.pop()
        kind = node[0]
        if kind == "any":
            result[id(node)] = Empty()
            continue
        if kind == "op":
            result[id(node)] = node[1]
            continue
        if not done:
            stack.append((node, True))
            for child in node[1:]:
                stack.append((child, False))
            continue
        if kind == "not":
            result[id(node)] = Not(result[id(node[1])])
            continue
        a, b = result[id(node[1])], result[id(node[2])]
        if kind == "and":
            if isinstance(a, Empty):
                result[id(node)] = b
                continue
            if isinstance(b, Empty):
                result[id(node)] = a
                continue
            left = a.items if isinstance(a, And) else (a,)
            result[id(node)] = And((*left, b))
        else:
            left = a.items if isinstance(a, Or) else (a,)
            result[id(node)] = Or((*left, b))
    return result[id(m)]


def _depth(node: Node) -> int:
    best = 0
    stack: list[tuple[Node, int]] = [(node, 1)]
    while stack:
        n, d = stack.pop()
        best = max(best, d)
        if isinstance(n, (And, Or)):
            stack.extend((c, d + 1) for c in n.items)
        elif isinstance(n, Not):
            stack.append((n.operand, d + 1))
    return best


def parse(expression: str) -> Expression:
    """Parse a preferred-content expression; raises ExpressionError (only) when malformed."""
    tokens = tokenize(expression)
    issues: list[ParseIssue] = []
    parsed: list[object] = []
    for tok in tokens:
        if tok.text in _SYNTAX:
            parsed.append(tok.text)
            continue
        try:
            parsed.append(_parse_term(tok.text))
        except _TokenError as exc:
            issues.append(ParseIssue(tok.text, tok.position, tok.index, exc.reason))
    if issues:
        raise ExpressionError(expression, tuple(issues))
    try:
        m = _process(_MANY, _token_groups(parsed), 0)
        root = _to_node(m)
        if _depth(root) > MAX_DEPTH:
            raise _TokenError("expression nested too deeply")
    except _TokenError as exc:
        first = tokens[0] if tokens else Token("", 0, 0)
        raise ExpressionError(
            expression, (ParseIssue(first.text, first.position, first.index, exc.reason),)
        ) from None
    return Expression(expression, root, tokens, _top_is_empty(m))
