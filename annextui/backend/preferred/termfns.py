"""One term of an expression compiled to a closure (`Limit.hs`): globs on the file and URLs,
key variety and size, metadata comparisons, groups, `unused`, `inpreferreddir`; the copies
terms (copies.py) and balanced terms (balancedterm.py) have modules of their own."""

from __future__ import annotations

from collections.abc import Callable

from annextui.backend.ghcread import read_maybe_double
from annextui.backend.preferred.balancedterm import balanced_fn
from annextui.backend.preferred.context import Ctx, Fn, MatchFailure, always, never
from annextui.backend.preferred.copies import copies_fn, lacking_fn, present_fn
from annextui.backend.preferred.filepath import split_path, strip_downloader, take_directory
from annextui.backend.preferred.glob import GlobError, compile_glob
from annextui.backend.preferred.lookups import WorldLookups
from annextui.backend.preferred.terms import (
    Anything,
    Balanced,
    Copies,
    Exclude,
    GroupWanted,
    InAllGroup,
    InBackend,
    Include,
    InPreferredDir,
    LackingCopies,
    LargerThan,
    MetaData,
    Nothing,
    OnlyInGroup,
    Present,
    SecureHash,
    SmallerThan,
    Standard,
    Term,
    Unused,
    Url,
)


def glob_fn(glob: str, *, case_sensitive: bool, filepath: bool) -> Callable[[str], bool]:
    """The glob's matcher; one git-annex cannot compile fails every decision it is part of."""
    try:
        return compile_glob(glob, case_sensitive=case_sensitive, filepath=filepath)
    except GlobError as exc:
        message = str(exc)

        def failing(_value: str) -> bool:
            raise MatchFailure(message)

        return failing


def term_fn(lookups: WorldLookups, uuid: str, term: Term) -> Fn:
    world = lookups.world
    if isinstance(term, Anything):
        return always
    if isinstance(term, Nothing):
        return never
    if isinstance(term, Include):
        m = glob_fn(term.glob, case_sensitive=True, filepath=True)
        return lambda c: c.file is not None and m(c.file)
    if isinstance(term, Exclude):
        m = glob_fn(term.glob, case_sensitive=True, filepath=True)
        return lambda c: c.file is None or not m(c.file)
    if isinstance(term, Copies):
        return copies_fn(lookups, term)
    if isinstance(term, LackingCopies):
        return lacking_fn(lookups, term.count, term.approx)
    if isinstance(term, InBackend):
        name = term.name
        return lambda c: c.ks.info.variety == name
    if isinstance(term, SecureHash):
        return lambda c: c.ks.info.secure
    if isinstance(term, LargerThan):
        limit = term.size

        def larger(c: Ctx) -> bool:
            s = c.ks.info.size
            return s is not None and s > limit

        return larger
    if isinstance(term, SmallerThan):
        limit = term.size

        def smaller(c: Ctx) -> bool:
            s = c.ks.info.size
            return s is None or s < limit

        return smaller
    if isinstance(term, MetaData):
        return metadata_fn(term)
    if isinstance(term, Url):
        m = glob_fn(term.glob, case_sensitive=True, filepath=False)
        return lambda c: any(m(strip_downloader(u)) for u in c.ks.facts.urls)
    if isinstance(term, Present):
        return present_fn(lookups, uuid)
    if isinstance(term, InPreferredDir):
        pd = world.repo(uuid).preferreddir
        d = "public" if pd is None else pd
        return lambda c: c.file is not None and d in split_path(take_directory(c.file))
    if isinstance(term, InAllGroup):
        want = lookups.group_members(term.group)
        if not want:
            return always
        return lambda c: want.isdisjoint(c.notpresent) and want <= c.ks.locs_set
    if isinstance(term, OnlyInGroup):
        want = lookups.group_members(term.group)
        if not want:
            return never

        def only(c: Ctx) -> bool:
            present = c.ks.locs_set - c.notpresent
            return not present.isdisjoint(want) and present <= want

        return only
    if isinstance(term, Unused):
        unused = world.unused_keys
        return lambda c: c.file is None and c.ks.info.text in unused
    if isinstance(term, Balanced):
        return balanced_fn(lookups, uuid, term)
    if isinstance(term, (Standard, GroupWanted)):  # only reachable via evaluate(expand=False)
        return always
    raise AssertionError(f"unknown term {term!r}")  # pragma: no cover


def metadata_fn(term: MetaData) -> Fn:
    folded = term.field.casefold()
    v = term.value
    if term.op == "=":
        m = glob_fn(v, case_sensitive=False, filepath=False)
        return lambda c: any(m(x) for x in c.ks.meta_values(folded))
    d = read_maybe_double(v)
    op = term.op

    def cmp(a: object, b: object) -> bool:
        if op == "<":
            return a < b  # type: ignore[operator,no-any-return]
        if op == "<=":
            return a <= b  # type: ignore[operator,no-any-return]
        if op == ">":
            return a > b  # type: ignore[operator,no-any-return]
        return a >= b  # type: ignore[operator,no-any-return]

    def check(x: str) -> bool:
        dx = read_maybe_double(x)
        if d is not None and dx is not None:
            return cmp(dx, d)
        return cmp(x, v)

    return lambda c: any(check(x) for x in c.ks.meta_values(folded))
