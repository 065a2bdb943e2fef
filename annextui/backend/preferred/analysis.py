"""Static warnings for preferred-content expressions that are unstable, harmful or surprising.

``analyze(expression, world=None, uuid=None)`` never raises: a malformed expression yields one
``error`` warning per bad token. With a ``World`` (and the repository's ``uuid``) it also
checks groups, sizes and the ``standard``/``groupwanted`` expansions.

The reasoning quoted in the messages is upstream's (``doc/git-annex-preferred-content.mdwn``,
``doc/design/balanced_preferred_content.mdwn``, ``Annex/FileMatcher.hs``).
"""

from __future__ import annotations

from typing import Literal

from annextui.backend.ghcread import readish_int
from annextui.backend.preferred.glob import GlobError, compile_glob, wild_to_regex
from annextui.backend.preferred.model import World
from annextui.backend.preferred.parser import (
    Expression,
    ExpressionError,
    parse,
)
from annextui.backend.preferred.standard import STANDARD_EXPRESSIONS, standard_group_of
from annextui.backend.preferred.terms import (
    Balanced,
    Copies,
    Exclude,
    GroupWanted,
    InAllGroup,
    Include,
    LackingCopies,
    MetaData,
    Node,
    OnlyInGroup,
    Present,
    Standard,
    Url,
    negated_leaves,
)
from annextui.backend.trust import TrustLevel
from annextui.values import Value

__all__ = ["Finding", "Severity", "analyze"]

Severity = Literal["error", "warning", "info"]


class Finding(Value):
    """One finding. ``code`` is stable (for filtering); ``token`` is the term concerned."""

    code: str
    severity: Severity
    message: str
    token: str | None = None


_NOT_PRESENT = (
    'upstream: "`not present` is not a reasonable thing to put in a preferred content '
    "expression. It says to get content that's not present, but then drop it!\" -- git-annex "
    "recognises such expressions as not stable and makes them never match"
)


def _positive_present(root: Node) -> bool:
    return any(
        (isinstance(t, Present) or (isinstance(t, Balanced) and t.stabilised)) and not neg
        for t, neg in negated_leaves(root)
    )


def _expansion(world: World, uuid: str, term: Standard | GroupWanted) -> str | None:
    groups = world.repo(uuid).groups
    if isinstance(term, Standard):
        g = standard_group_of(groups)
        return STANDARD_EXPRESSIONS[g] if g else None
    found = [g for g in groups if g in world.group_wanted]
    return world.group_wanted[found[0]] if len(found) == 1 else None


def _has_unstable(expr: str | None, world: World, uuid: str, depth: int = 0) -> bool:
    if expr is None:
        return True  # falls back to present
    try:
        e = parse(expr)
    except ExpressionError:
        return True  # unparsable expansions make the whole expression behave like present
    for t, _ in negated_leaves(e.root):
        if isinstance(t, Present) or (isinstance(t, Balanced) and t.stabilised):
            return True
        if (
            isinstance(t, (Standard, GroupWanted))
            and depth < 2
            and _has_unstable(_expansion(world, uuid, t), world, uuid, depth + 1)
        ):
            return True
    return False


def _value(token: str) -> str:
    return token.partition("=")[2]


def analyze(
    expression: str | Expression, world: World | None = None, uuid: str | None = None
) -> list[Finding]:
    """Warnings for one expression (optionally in the context of a repository)."""
    if isinstance(expression, Expression):
        expr = expression
    else:
        try:
            expr = parse(expression)
        except ExpressionError as exc:
            return [
                Finding(
                    "parse-error",
                    "error",
                    f"{i.describe()}; git-annex refuses to set it, and an expression already on "
                    "the branch that it cannot parse behaves like `present`",
                    i.token,
                )
                for i in exc.issues
            ]
    out: list[Finding] = []
    if expr.empty:
        out.append(
            Finding(
                "empty",
                "info",
                "expression has no terms: git-annex treats it as not configured",
            )
        )
        return out
    terms = negated_leaves(expr.root)
    has_present = _positive_present(expr.root)

    for t, neg in terms:
        tok = t.token
        if neg and isinstance(t, Present):
            out.append(Finding("unstable-negation", "error", f"`not present`: {_NOT_PRESENT}", tok))
        elif neg and isinstance(t, Balanced) and t.stabilised:
            out.append(
                Finding(
                    "unstable-negation",
                    "error",
                    f'`not {tok}`: upstream: "not a reasonable thing to use in a preferred '
                    'content expression for the same reasons as `not present`" -- it contains '
                    "`present`, so git-annex never matches the whole expression",
                    tok,
                )
            )
        elif (
            neg
            and isinstance(t, (Standard, GroupWanted))
            and world is not None
            and uuid
            and _has_unstable(_expansion(world, uuid, t), world, uuid)
        ):
            out.append(
                Finding(
                    "unstable-negation",
                    "error",
                    f"`not {tok}`: its expansion for this repository uses present/"
                    "balanced (or falls back to `present`), so git-annex judges the whole "
                    "expression not stable and never matches it",
                    tok,
                )
            )
        if neg and isinstance(t, Copies) and not has_present:
            out.append(
                Finding(
                    "copies-race",
                    "warning",
                    f"`not {tok}` without `present`: a drop is checked as if this repository "
                    "had already dropped the key, so two repositories that both got a copy "
                    "each see the other's copy and may both drop it (upstream's balanced= is "
                    "`present or (not copies=G:N and fullybalanced=G:N)` for this reason)",
                    tok,
                )
            )
        if isinstance(t, Copies) and not neg and not has_present and t.count > 0:
            out.append(
                Finding(
                    "copies-only",
                    "info",
                    f"`{tok}` with no `present`: wanted only while other repositories hold "
                    f'enough copies; upstream: copies={t.count} "lets content be dropped only '
                    f"when there are currently {t.count + 1} copies of it, including the repo "
                    "it's being dropped from\"",
                    tok,
                )
            )
        if isinstance(t, Copies):
            raw = _value(tok).rpartition(":")[2]
            if raw and str(readish_int(raw)) != raw.strip():
                out.append(
                    Finding(
                        "lenient-number",
                        "warning",
                        f"`{tok}`: git-annex reads only the leading number ({t.count})",
                        tok,
                    )
                )
            if t.trust is TrustLevel.DEAD and not t.trust_or_higher and t.count > 0:
                out.append(
                    Finding(
                        "dead-copies",
                        "warning",
                        f"`{tok}` never matches: dead repositories are never counted as copies",
                        tok,
                    )
                )
            if t.trust is not None and world is not None:
                name = _value(tok).partition(":")[0].rstrip("+")
                if any(name in r.groups for r in world.repos.values()):
                    out.append(
                        Finding(
                            "group-shadowed",
                            "warning",
                            f"`{tok}`: a group is named {name!r}, but git-annex parses it as a "
                            "trust level",
                            tok,
                        )
                    )
        if isinstance(t, Balanced):
            out.extend(_balanced_warnings(t, world, has_present))
        if isinstance(t, (Include, Exclude, Url, MetaData)):
            out.extend(_glob_warnings(t))
        if isinstance(t, (Copies, InAllGroup, OnlyInGroup)) and world is not None:
            group = t.group
            if group and not any(group in r.groups for r in world.repos.values()):
                what = {
                    Copies: "counts no repository",
                    InAllGroup: "is always true",
                    OnlyInGroup: "is always false",
                }[type(t)]
                out.append(
                    Finding(
                        "unknown-group",
                        "warning",
                        f"`{tok}`: group {group!r} has no members, so the term {what}",
                        tok,
                    )
                )
        if isinstance(t, LackingCopies) and neg:
            out.append(
                Finding(
                    "negated-lackingcopies",
                    "info",
                    f"`not {tok}`: wants content that already has enough copies",
                    tok,
                )
            )
    return _dedupe(out)


def _balanced_warnings(t: Balanced, world: World | None, has_present: bool) -> list[Finding]:
    out: list[Finding] = []
    tok = t.token
    if t.kind in ("fullybalanced", "fullysizebalanced") and not has_present:
        out.append(
            Finding(
                "fully-balanced",
                "warning",
                f'`{tok}`: upstream: "allows moving content between repositories in the group '
                'at any time" -- adding a member or a change in sizes moves files around; '
                f"`{t.kind.removeprefix('fully')}=` is the stable form",
                tok,
            )
        )
    if t.count is not None and t.count <= 0:
        out.append(Finding("balanced-count", "warning", f"`{tok}`: N <= 0 picks nobody", tok))
    if world is None:
        return out
    members = [u for u, r in world.repos.items() if t.group in r.groups]
    if not members:
        out.append(
            Finding(
                "unknown-group",
                "warning",
                f"`{tok}`: group {t.group!r} has no members, "
                "so nobody wants anything through this term",
                tok,
            )
        )
        return out
    if t.sized:
        missing = sorted(u for u in members if world.repo(u).maxsize is None)
        if missing:
            out.append(
                Finding(
                    "sizebalanced-no-maxsize",
                    "warning",
                    f"`{tok}`: members without `git annex maxsize` never want anything: "
                    + ", ".join(missing),
                    tok,
                )
            )
    zero = sorted(u for u in members if world.repo(u).maxsize == 0)
    if zero:
        out.append(
            Finding(
                "maxsize-zero",
                "warning",
                f"`{tok}`: maxsize 0 recorded for {', '.join(zero)}: git-annex 10.20261026 "
                "treats such a repository as having no space for any non-empty key",
                tok,
            )
        )
    return out


def _glob_warnings(t: Include | Exclude | Url | MetaData) -> list[Finding]:
    out: list[Finding] = []
    if isinstance(t, MetaData):
        if t.op != "=":
            return out
        glob, filepath, case = t.value, False, False
    else:
        glob, filepath, case = t.glob, isinstance(t, (Include, Exclude)), True
    try:
        compile_glob(glob, case_sensitive=case, filepath=filepath)
    except GlobError as exc:
        out.append(
            Finding(
                "bad-glob",
                "error",
                f"`{t.token}`: {exc}; git-annex accepts the expression but every check that "
                "reaches this term fails",
                t.token,
            )
        )
        return out
    regex = wild_to_regex(glob, filepath)
    for c, what in (("\\'", "end of text"), ("\\`", "start of text"), ("\\<", "start of word"),
                    ("\\>", "end of word")):  # fmt: skip
        if c in regex:
            out.append(
                Finding(
                    "glob-assertion",
                    "warning",
                    f"`{t.token}`: {c[1]!r} becomes a regex {what} assertion in git-annex's "
                    "glob translation, it never matches that character literally (use `?`)",
                    t.token,
                )
            )
    if isinstance(t, Exclude):
        out.append(
            Finding(
                "exclude-without-file",
                "info",
                f"`{t.token}` is true for key-only checks (--all, bare repositories), where "
                "include= is false",
                t.token,
            )
        )
    return out


def _dedupe(ws: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str | None]] = set()
    out = []
    for w in ws:
        k = (w.code, w.token)
        if k not in seen:
            seen.add(k)
            out.append(w)
    return out
