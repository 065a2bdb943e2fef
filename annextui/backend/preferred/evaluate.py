"""Deciding preferred content exactly as git-annex decides it.

``Evaluator(world)`` compiles every repository's expression once (to closures) and answers:

* ``wants_get(uuid, facts)`` -- would ``uuid`` want the key (``wantGetBy``; nothing assumed
  dropped);
* ``wants_drop(uuid, facts)`` -- would ``uuid`` want to drop it (``wantDrop``: evaluated as if
  ``uuid`` no longer had it; dropping is wanted iff no associated file is preferred);
* ``explain(...)`` -- the same decision with the term that decided it and, for balanced terms,
  the group, candidates and picks (the explanation's types and text: explain.py).

Here: each repository's matcher configured and compiled once, and the decisions made with
it. The parts: expand.py (``standard``/``groupwanted``, the instability guard), compiler.py
(the tree to one closure), termfns.py, copies.py, balancedterm.py (one closure per term),
context.py (the per-key state and the closures' calling convention), lookups.py (what terms
read of the World), keyinfo.py and filepath.py (what they read of a key and a path).

Rules reproduced from git-annex (``Logs/PreferredContent.hs``, ``Annex/FileMatcher.hs``,
``Limit.hs``, ``Annex/Wanted.hs``):

* preferred content is ``preferred or required`` (either alone when the other is unset or
  empty); nothing configured (or only empty expressions) -> the caller's ``default``.
* a configured expression that does not parse (either half, or a ``standard``/``groupwanted``
  it expands) behaves like ``present``.
* ``standard`` expands the repo's standard group (exactly one, else ``present``);
  ``groupwanted`` the expression of the single group of the repo that has one (else
  ``present``); inside ``groupwanted`` ``standard`` expands but ``groupwanted`` is ``present``;
  inside ``standard`` both are ``present``.
* instability guard: if ``present``, ``balanced=``/``sizebalanced=``, or a ``standard``/
  ``groupwanted`` whose expansion contains one of them, appears under an odd number of
  ``not``, the expression never matches (so ``wants_get`` is False and ``wants_drop`` True).
* locations: the location log minus dead repositories, plus the cluster of any node that has
  the key; cluster UUIDs are never counted as copies.
* a glob that git-annex cannot compile makes that decision fail in git-annex (no transfer, no
  drop); here both ``wants_get`` and ``wants_drop`` return False and ``explain`` says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from annextui.backend.preferred.balanced import BalancedPicker
from annextui.backend.preferred.compiler import compile_node
from annextui.backend.preferred.context import Ctx, Fn, KeyState, MatchFailure
from annextui.backend.preferred.expand import negated_unstable, parse_cached, resolve
from annextui.backend.preferred.explain import (
    Explanation,
    FileExplanation,
    MatcherInfo,
    Status,
    TermResult,
    conclude,
    file_explanation,
    unconfigured,
)
from annextui.backend.preferred.filepath import split_path, take_directory
from annextui.backend.preferred.lookups import WorldLookups
from annextui.backend.preferred.model import KeyFacts, World
from annextui.backend.preferred.parser import Expression, ExpressionError
from annextui.backend.preferred.terms import Or, Present

__all__ = ["Evaluator", "split_path", "take_directory"]


class _Compiled:
    """One repository's compiled expression; `traced` is filled in by the first explain()."""

    __slots__ = ("fn", "info", "root", "traced", "unstable_terms")

    def __init__(
        self,
        info: MatcherInfo,
        fn: Fn | None,  # None: unconfigured
        root: object = None,
        unstable_terms: tuple[str, ...] = (),
    ) -> None:
        self.info = info
        self.fn = fn
        self.root = root
        self.unstable_terms = unstable_terms
        self.traced: Fn | None = None  # the tracing variant, compiled on first explain()


class Evaluator:
    """Preferred-content decisions for one ``World`` (compile once, decide many times)."""

    def __init__(self, world: World, *, live_sizes: Mapping[str, int] | None = None) -> None:
        """live_sizes: repository sizes to use instead of the world's, read at every decision
        (a simulation that moves keys updates this mapping in place as it goes)."""
        self.world = world
        self._lookups = WorldLookups(world, live_sizes)
        self._compiled: dict[tuple[str, str], _Compiled] = {}
        self._last: tuple[KeyFacts, KeyState] | None = None

    # -- world lookups --------------------------------------------------------------------
    def group_members(self, group: str) -> frozenset[str]:
        return self._lookups.group_members(group)

    def picker(self, group: str) -> BalancedPicker | None:
        return self._lookups.picker(group)

    def _key_state(self, facts: KeyFacts) -> KeyState:
        last = self._last
        if last is not None and last[0] is facts:
            return last[1]
        ks = KeyState(self.world, facts)
        self._last = (facts, ks)
        return ks

    # -- configuration --------------------------------------------------------------------
    def matcher_info(
        self, uuid: str, which: Literal["preferred", "required"] = "preferred"
    ) -> MatcherInfo:
        """How ``uuid``'s preferred (incl. required) or required content is configured."""
        return self._compile_for(uuid, which).info

    def _compile_for(self, uuid: str, which: Literal["preferred", "required"]) -> _Compiled:
        cached = self._compiled.get((uuid, which))
        if cached is not None:
            return cached
        repo = self.world.repo(uuid)
        pref = repo.preferred if which == "preferred" else None
        req = repo.required
        exprs = [e for e in (pref, req) if e is not None]
        error: str | None = None
        root: object = None
        status: Status
        if not exprs:
            status = "unconfigured"
        else:
            try:
                roots = []
                for e in exprs:
                    parsed = parse_cached(e)
                    if not parsed.empty:
                        roots.append(resolve(self.world, uuid, parsed.root, True, True))
                if not roots:
                    status = "unconfigured"
                else:
                    status = "configured"
                    root = roots[0] if len(roots) == 1 else Or((roots[0], roots[1]))  # type: ignore[arg-type]
            except ExpressionError as exc:
                status = "unparsable"
                error = str(exc)
                root = Present()
        source = (
            " or ".join(f"({e})" for e in exprs) if len(exprs) > 1 else (exprs[0] if exprs else "")
        )
        if status == "unparsable":
            source = "present"
        unstable = negated_unstable(root) if root is not None else ()
        info = MatcherInfo(uuid, status, pref, req, error, unstable, source)
        fn = (
            compile_node(self._lookups, uuid, root)
            if root is not None and status != "unconfigured"
            else None
        )
        compiled = _Compiled(info, fn, root, unstable)
        self._compiled[(uuid, which)] = compiled
        return compiled

    # -- decisions --------------------------------------------------------------------------
    def is_preferred(
        self,
        uuid: str,
        facts: KeyFacts,
        *,
        assume_not_present: frozenset[str] = frozenset(),
        default: bool = False,
    ) -> bool:
        """``isPreferredContent`` (preferred or required) for ``facts.file``.

        Raises nothing; a glob git-annex cannot compile makes the check False.
        """
        comp = self._compile_for(uuid, "preferred")
        return self._check(comp, facts, assume_not_present, facts.file, default)

    def is_required(
        self,
        uuid: str,
        facts: KeyFacts,
        *,
        assume_not_present: frozenset[str] = frozenset(),
        default: bool = False,
    ) -> bool:
        """``isRequiredContent``."""
        comp = self._compile_for(uuid, "required")
        return self._check(comp, facts, assume_not_present, facts.file, default)

    def _check(
        self,
        comp: _Compiled,
        facts: KeyFacts,
        notpresent: frozenset[str],
        file: str | None,
        default: bool,
    ) -> bool:
        if comp.fn is None:
            return default
        if comp.unstable_terms:
            return False
        try:
            return comp.fn(Ctx(self._key_state(facts), notpresent, file, None))
        except MatchFailure:
            return False

    def wants_get(self, uuid: str, facts: KeyFacts, *, default: bool = False) -> bool:
        """``wantGetBy``: does ``uuid`` want the key (for ``facts.file``)?

        ``default`` is returned when ``uuid`` has no (non-empty) preferred/required content.
        """
        return self.is_preferred(uuid, facts, default=default)

    def wants_drop(self, uuid: str, facts: KeyFacts, *, default: bool = False) -> bool:
        """``wantDrop``: would ``uuid`` drop the key? Evaluated with ``uuid`` assumed to no
        longer have it; True iff neither ``facts.file`` nor any of ``facts.other_files`` is
        preferred. ``default`` is the preferred-content value when nothing is configured
        (so an unconfigured repo wants to drop unless ``default=True``)."""
        comp = self._compile_for(uuid, "preferred")
        if comp.fn is None:
            return not default
        if comp.unstable_terms:
            return True
        np = frozenset((uuid,))
        ctx = Ctx(self._key_state(facts), np, facts.file, None)
        try:
            if comp.fn(ctx):
                return False
            for f in facts.other_files:
                if f == facts.file:
                    continue
                ctx.file = f
                if comp.fn(ctx):
                    return False
        except MatchFailure:
            return False
        return True

    def evaluate(
        self,
        expression: str | Expression,
        uuid: str,
        facts: KeyFacts,
        *,
        assume_not_present: frozenset[str] = frozenset(),
        expand_groups: bool = True,
    ) -> bool:
        """Match an ad-hoc expression for ``uuid`` (raises ExpressionError when malformed).

        expand_groups=False evaluates ``standard``/``groupwanted`` as "match everything", as
        ``git annex matchexpression`` does. The instability guard applies.
        """
        expr = expression if isinstance(expression, Expression) else parse_cached(expression)
        if expr.empty:
            return True
        root = resolve(self.world, uuid, expr.root, True, True) if expand_groups else expr.root
        if negated_unstable(root):
            return False
        fn = compile_node(self._lookups, uuid, root)
        try:
            return fn(Ctx(self._key_state(facts), assume_not_present, facts.file, None))
        except MatchFailure:
            return False

    # -- explanation ------------------------------------------------------------------------
    def explain(
        self,
        uuid: str,
        facts: KeyFacts,
        *,
        context: Literal["get", "drop"] = "get",
        default: bool = False,
    ) -> Explanation:
        """The ``wants_get``/``wants_drop`` decision with the reasoning behind it."""
        comp = self._compile_for(uuid, "preferred")
        if comp.fn is None:
            return unconfigured(uuid, context, comp.info, default)
        np = frozenset((uuid,)) if context == "drop" else frozenset()
        files: list[str | None] = [facts.file]
        if context == "drop":
            files += [f for f in facts.other_files if f != facts.file]
        out: list[FileExplanation] = []
        ks = self._key_state(facts)
        if comp.traced is None:
            comp.traced = compile_node(self._lookups, uuid, comp.root, trace=True)
        traced = comp.traced
        for f in files:
            trace: list[TermResult] = []
            err = None
            try:
                r = traced(Ctx(ks, np, f, trace))
            except MatchFailure as exc:
                r, err = False, str(exc)
            out.append(file_explanation(f, r, trace, comp.root, err))
            if err is not None or context == "get" or r:
                break  # a failure ends it; get asks one file; drop stops at a wanted one
        return conclude(uuid, context, comp.info, out, comp.unstable_terms)
