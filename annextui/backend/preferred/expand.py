"""`standard` and `groupwanted` expanded in place (`makeMatcher`), and the instability guard
(`findNegated`, `matchNegationUnstable`) over the expanded tree.

An expansion stays a `Sub` node where the term stood, so traces and renderings show the term
with what it expanded to; an expansion that is not possible (no single standard group, no
single group with a groupwanted expression, a nested one) is `present`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import cast

from annextui.backend.preferred.model import World
from annextui.backend.preferred.parser import Expression, parse
from annextui.backend.preferred.standard import STANDARD_EXPRESSIONS, standard_group_of
from annextui.backend.preferred.terms import (
    And,
    Balanced,
    GroupWanted,
    Node,
    Not,
    Or,
    Present,
    Standard,
    Term,
    negated_leaves,
)
from annextui.values import Value


@lru_cache(maxsize=4096)
def parse_cached(text: str) -> Expression:
    return parse(text)


class Sub(Value):
    """A resolved ``standard``/``groupwanted``: its expansion (or the ``present`` fallback)."""

    term: Standard | GroupWanted
    root: object  # a Node tree that may contain Sub leaves
    expansion: str

    __eq__ = object.__eq__  # identity, as each resolution is its own
    __hash__ = object.__hash__

    @property
    def token(self) -> str:
        """The term's token: a Sub stands where the term stood, in traces and renderings."""
        return self.term.token


def resolve(world: World, uuid: str, node: Node, expand_std: bool, expand_gw: bool) -> object:
    """Replace ``standard``/``groupwanted`` terms with their expansions (``makeMatcher``)."""
    if isinstance(node, (And, Or)):
        items = tuple(resolve(world, uuid, n, expand_std, expand_gw) for n in node.items)
        return type(node)(items)  # type: ignore[arg-type]
    if isinstance(node, Not):
        return Not(resolve(world, uuid, node.operand, expand_std, expand_gw))  # type: ignore[arg-type]
    if isinstance(node, Standard):
        if expand_std:
            group = standard_group_of(world.repo(uuid).groups)
            if group is not None:
                text = STANDARD_EXPRESSIONS[group]
                sub = resolve(world, uuid, parse_cached(text).root, False, False)
                return Sub(node, sub, f"{group}: {text}")
            return Sub(node, Present(), "present (not in exactly one standard group)")
        return Sub(node, Present(), "present (standard inside standard)")
    if isinstance(node, GroupWanted):
        if expand_gw:
            groups = world.repo(uuid).groups
            found = sorted(g for g in groups if g in world.group_wanted)
            if len(found) == 1:
                text = world.group_wanted[found[0]]
                sub = resolve(world, uuid, parse_cached(text).root, True, False)
                return Sub(node, sub, f"{found[0]}: {text}")
            why = "no group" if not found else f"groups {found}"
            return Sub(node, Present(), f"present ({why} with a groupwanted expression)")
        return Sub(node, Present(), "present (groupwanted inside groupwanted)")
    return node


def _op_unstable(op: object) -> bool:
    if isinstance(op, Present):
        return True
    if isinstance(op, Balanced):
        return op.stabilised
    if isinstance(op, Sub):
        return any(_op_unstable(t) for t, _ in _leaves(op.root))
    return False


def negated_unstable(root: object) -> tuple[str, ...]:
    """``findNegated`` + ``matchNegationUnstable`` over the top-level matcher."""
    found: list[str] = []
    for n, neg in _leaves(root):
        if neg and _op_unstable(n):
            tok = n.token
            if tok not in found:
                found.append(tok)
    return tuple(found)


def _leaves(root: object) -> list[tuple[Term | Sub, bool]]:
    """The terms of an expanded tree, a `Sub` standing where its term stood."""
    return negated_leaves(cast(Node, root))  # type: ignore[return-value]
