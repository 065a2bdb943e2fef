"""Preferred content: git-annex's expression language, decided exactly as git-annex decides.

Quick use::

    from annextui.backend.preferred import Evaluator, KeyFacts, Repo, World

    g = frozenset({"backup"})
    world = World.build(
        [
            Repo("uuid-a", groups=g, preferred="balanced=backup", maxsize=10**12, size=0),
            Repo("uuid-b", groups=g, preferred="balanced=backup", maxsize=10**12, size=0),
            Repo("uuid-c", preferred="include=*.jpg or lackingcopies=1"),
        ],
        numcopies=2,
    )
    ev = Evaluator(world)  # compile once per World snapshot
    facts = KeyFacts("SHA256E-s100--...", locations=frozenset({"uuid-c"}), file="photos/a.jpg")
    ev.wants_get("uuid-a", facts)     # wantGetBy
    ev.wants_drop("uuid-c", facts)    # wantDrop (uuid-c assumed to no longer have it)
    print(ev.explain("uuid-a", facts).describe())
"""

from annextui.backend.preferred.analysis import Finding, analyze
from annextui.backend.preferred.balanced import BalancedPicker
from annextui.backend.preferred.evaluate import Evaluator
from annextui.backend.preferred.explain import (
    BalancedDetail,
    Explanation,
    FileExplanation,
    MatcherInfo,
    TermResult,
)
from annextui.backend.preferred.glob import GlobError, compile_glob
from annextui.backend.preferred.model import KeyFacts, Repo, World
from annextui.backend.preferred.parser import Expression, ExpressionError, parse
from annextui.backend.preferred.standard import STANDARD_EXPRESSIONS, STANDARD_GROUPS
from annextui.backend.trust import TrustLevel
from annextui.backend.uuids import is_cluster_uuid

__all__ = [
    "STANDARD_EXPRESSIONS",
    "STANDARD_GROUPS",
    "BalancedDetail",
    "BalancedPicker",
    "Evaluator",
    "Explanation",
    "Expression",
    "ExpressionError",
    "FileExplanation",
    "Finding",
    "GlobError",
    "KeyFacts",
    "MatcherInfo",
    "Repo",
    "TermResult",
    "TrustLevel",
    "World",
    "analyze",
    "compile_glob",
    "is_cluster_uuid",
    "parse",
]
