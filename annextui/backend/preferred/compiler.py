"""An expanded expression tree compiled to one closure: `and`/`or`/`not` over the terms'
closures (termfns.py), and with `trace=True` the variant that records a `TermResult` per term
and per expansion for `explain()`."""

from __future__ import annotations

from annextui.backend.preferred.context import Ctx, Fn, MatchFailure, always
from annextui.backend.preferred.expand import Sub
from annextui.backend.preferred.explain import TermResult
from annextui.backend.preferred.lookups import WorldLookups
from annextui.backend.preferred.termfns import term_fn
from annextui.backend.preferred.terms import And, Balanced, Empty, Not, Or, Term


def compile_node(lookups: WorldLookups, uuid: str, node: object, trace: bool = False) -> Fn:
    if isinstance(node, Empty):
        return always
    if isinstance(node, And):
        fns = tuple(compile_node(lookups, uuid, n, trace) for n in node.items)
        if len(fns) == 2:
            a, b = fns
            return lambda c: a(c) and b(c)

        def and_(c: Ctx) -> bool:
            for f in fns:  # noqa: SIM110 - a plain loop is faster than any()/all()
                if not f(c):
                    return False
            return True

        return and_
    if isinstance(node, Or):
        fns = tuple(compile_node(lookups, uuid, n, trace) for n in node.items)
        if len(fns) == 2:
            a, b = fns
            return lambda c: a(c) or b(c)

        def or_(c: Ctx) -> bool:
            for f in fns:  # noqa: SIM110 - a plain loop is faster than any()/all()
                if f(c):
                    return True
            return False

        return or_
    if isinstance(node, Not):
        inner = compile_node(lookups, uuid, node.operand, trace)
        return lambda c: not inner(c)
    if isinstance(node, Sub):
        return _compile_sub(lookups, uuid, node, trace)
    return _compile_term(lookups, uuid, node, trace)  # type: ignore[arg-type]


def _compile_sub(lookups: WorldLookups, uuid: str, sub: Sub, trace: bool) -> Fn:
    inner = compile_node(lookups, uuid, sub.root, trace)
    if not trace:
        return inner
    token = sub.term.token

    def call(c: Ctx) -> bool:
        if c.trace is None:
            return inner(c)
        outer = c.trace
        c.trace = []
        try:
            r = inner(c)
        finally:
            children, c.trace = tuple(c.trace), outer
        outer.append(TermResult(token, r, sub.term, children=children, expansion=sub.expansion))
        return r

    return call


def _compile_term(lookups: WorldLookups, uuid: str, term: Term, trace: bool) -> Fn:
    fn = term_fn(lookups, uuid, term)
    if not trace or isinstance(term, Balanced):
        return fn  # records its own (detailed) trace entry
    token = term.token

    def traced(c: Ctx) -> bool:
        if c.trace is None:
            return fn(c)
        try:
            r = fn(c)
        except MatchFailure as exc:
            c.trace.append(TermResult(token, False, term, error=str(exc)))
            raise
        c.trace.append(TermResult(token, r, term))
        return r

    return traced
