"""The expression tree of preferred content: one frozen value (annextui.values) per term
(``copies=``, ``balanced=`` ...) and the operators over them (n-ary ``And``/``Or`` for
left-to-right chains, ``Not``, ``Empty``). parser.py builds it, evaluate.py compiles it,
analysis.py inspects it."""

from __future__ import annotations

from typing import Literal, TypeAlias

from annextui.backend.trust import TrustLevel
from annextui.values import Value

__all__ = [
    "And",
    "Anything",
    "Balanced",
    "BalancedKind",
    "Copies",
    "Empty",
    "Exclude",
    "GroupWanted",
    "InAllGroup",
    "InBackend",
    "InPreferredDir",
    "Include",
    "LackingCopies",
    "LargerThan",
    "MetaData",
    "MetaOp",
    "Node",
    "Not",
    "Nothing",
    "OnlyInGroup",
    "Or",
    "Present",
    "SecureHash",
    "SmallerThan",
    "Standard",
    "Term",
    "Unused",
    "Url",
    "is_term",
    "iter_terms",
    "negated_leaves",
]


class Anything(Value):
    token: str = "anything"


class Nothing(Value):
    token: str = "nothing"


class Include(Value):
    glob: str
    token: str = ""


class Exclude(Value):
    glob: str
    token: str = ""


class Copies(Value):
    """``copies=N``, ``copies=LEVEL:N``, ``copies=LEVEL+:N`` or ``copies=GROUP:N``."""

    count: int
    trust: TrustLevel | None = None
    trust_or_higher: bool = False
    group: str | None = None
    token: str = ""


class LackingCopies(Value):
    """``lackingcopies=N`` (approx=False) / ``approxlackingcopies=N`` (approx=True)."""

    count: int
    approx: bool = False
    token: str = ""


class InBackend(Value):
    name: str
    token: str = ""


class SecureHash(Value):
    token: str = "securehash"


class LargerThan(Value):
    size: int
    token: str = ""


class SmallerThan(Value):
    size: int
    token: str = ""


MetaOp = Literal["=", "<", "<=", ">", ">="]


class MetaData(Value):
    """``metadata=FIELD=GLOB`` (case-insensitive glob) or ``FIELD<N`` / ``<=`` / ``>`` / ``>=``."""

    field: str
    op: MetaOp
    value: str
    token: str = ""


class Url(Value):
    glob: str
    token: str = ""


class Present(Value):
    token: str = "present"


class InPreferredDir(Value):
    token: str = "inpreferreddir"


class InAllGroup(Value):
    group: str
    token: str = ""


class OnlyInGroup(Value):
    group: str
    token: str = ""


class Standard(Value):
    token: str = "standard"


class GroupWanted(Value):
    token: str = "groupwanted"


class Unused(Value):
    token: str = "unused"


BalancedKind = Literal["balanced", "fullybalanced", "sizebalanced", "fullysizebalanced"]


class Balanced(Value):
    """``balanced=G[:N|:lackingcopies]`` and the fully/size variants.

    count: N (1 without ``:N``); None with ``:lackingcopies``. enough: for the stabilised
    forms (balanced, sizebalanced) the "enough copies" term git-annex builds: ``copies=G:N``
    (``copies=G:1`` without ``:N``; note a group named like a trust level becomes a trust
    check there, as in git-annex) or ``lackingcopies=1``.
    """

    kind: BalancedKind
    group: str
    count: int | None
    enough: Copies | LackingCopies | None = None
    token: str = ""

    @property
    def lacking(self) -> bool:
        return self.count is None

    @property
    def sized(self) -> bool:
        return self.kind in ("sizebalanced", "fullysizebalanced")

    @property
    def stabilised(self) -> bool:
        return self.kind in ("balanced", "sizebalanced")


Term: TypeAlias = (
    Anything
    | Nothing
    | Include
    | Exclude
    | Copies
    | LackingCopies
    | InBackend
    | SecureHash
    | LargerThan
    | SmallerThan
    | MetaData
    | Url
    | Present
    | InPreferredDir
    | InAllGroup
    | OnlyInGroup
    | Standard
    | GroupWanted
    | Unused
    | Balanced
)


class Empty(Value):
    """``MAny``: matches everything (an expression with no terms)."""


class And(Value):
    items: tuple[Node, ...]


class Or(Value):
    items: tuple[Node, ...]


class Not(Value):
    operand: Node


Node: TypeAlias = Empty | And | Or | Not | Term

_TERM_TYPES = (
    Anything,
    Nothing,
    Include,
    Exclude,
    Copies,
    LackingCopies,
    InBackend,
    SecureHash,
    LargerThan,
    SmallerThan,
    MetaData,
    Url,
    Present,
    InPreferredDir,
    InAllGroup,
    OnlyInGroup,
    Standard,
    GroupWanted,
    Unused,
    Balanced,
)


def is_term(node: object) -> bool:
    return isinstance(node, _TERM_TYPES)


def negated_leaves(node: Node) -> list[tuple[Term, bool]]:
    """Every term, left to right, with whether it sits under an odd number of ``not``
    (``findNegated``'s walk); ``Empty`` has none."""
    out: list[tuple[Term, bool]] = []
    stack: list[tuple[Node, bool]] = [(node, False)]
    while stack:
        n, neg = stack.pop()
        if isinstance(n, (And, Or)):
            stack.extend((c, neg) for c in reversed(n.items))
        elif isinstance(n, Not):
            stack.append((n.operand, not neg))
        elif not isinstance(n, Empty):
            out.append((n, neg))
    return out


def iter_terms(node: Node) -> list[Term]:
    return [t for t, _ in negated_leaves(node)]
