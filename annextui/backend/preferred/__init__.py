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

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from annextui.backend.trust import TrustLevel  # the terms need it anyway
from annextui.backend.uuids import is_cluster_uuid

if TYPE_CHECKING:
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

# Where each name lives, imported on first use (PEP 562): importing one module of this package
# runs this file first, and annextui-shell, which evaluates preferred content for a cluster PUT
# at every such connection, needs neither the analysis nor the explanations.
_HOMES = {
    "Finding": "analysis",
    "analyze": "analysis",
    "BalancedPicker": "balanced",
    "Evaluator": "evaluate",
    "BalancedDetail": "explain",
    "Explanation": "explain",
    "FileExplanation": "explain",
    "MatcherInfo": "explain",
    "TermResult": "explain",
    "GlobError": "glob",
    "compile_glob": "glob",
    "KeyFacts": "model",
    "Repo": "model",
    "World": "model",
    "Expression": "parser",
    "ExpressionError": "parser",
    "parse": "parser",
    "STANDARD_EXPRESSIONS": "standard",
    "STANDARD_GROUPS": "standard",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # later lookups are plain module attributes
    return value


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
