"""Deciding preferred content exactly as git-annex decides it.

``Evaluator(world)`` compiles every repository's expression once (to closures) and answers:

* ``wants_get(uuid, facts)`` -- would ``uuid`` want the key (``wantGetBy``; nothing assumed
  dropped);
* ``wants_drop(uuid, facts)`` -- would ``uuid`` want to drop it (``wantDrop``: evaluated as if
  ``uuid`` no longer had it; dropping is wanted iff no associated file is preferred);
* ``explain(...)`` -- the same decision with the term that decided it and, for balanced terms,
  the group, candidates and picks (the explanation's types and text: explain.py).

One concept, in one module on purpose: the compiler of expressions to closures and the
decisions made with them share the per-key state and the closures' calling convention, which
splitting would turn into a public interface the hot path pays for.

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

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from annextui.backend.ghcread import read_maybe_double
from annextui.backend.keys import Key, parse_key
from annextui.backend.preferred.balanced import (
    BalancedPicker,
    Candidates,
    fully_balanced_candidates,
    size_balanced_candidates,
)
from annextui.backend.preferred.explain import (
    BalancedDetail,
    Explanation,
    FileExplanation,
    MatcherInfo,
    Status,
    TermResult,
    conclude,
    file_explanation,
    unconfigured,
)
from annextui.backend.preferred.glob import GlobError, compile_glob
from annextui.backend.preferred.model import KeyFacts, World
from annextui.backend.preferred.parser import (
    Expression,
    ExpressionError,
    parse,
)
from annextui.backend.preferred.standard import STANDARD_EXPRESSIONS, standard_group_of
from annextui.backend.preferred.terms import (
    And,
    Anything,
    Balanced,
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
)
from annextui.backend.trust import TrustLevel
from annextui.backend.uuids import is_cluster_uuid

__all__ = ["Evaluator", "split_path", "take_directory"]

# ---------------------------------------------------------------------------------------------
# Keys

_SECURE_VARIETIES = frozenset(
    {
        "SHA224", "SHA256", "SHA384", "SHA512",
        "SHA3_224", "SHA3_256", "SHA3_384", "SHA3_512",
        "SKEIN256", "SKEIN512",
        "BLAKE2B160", "BLAKE2B224", "BLAKE2B256", "BLAKE2B384", "BLAKE2B512", "BLAKE2BP512",
        "BLAKE2S160", "BLAKE2S224", "BLAKE2S256", "BLAKE2SP224", "BLAKE2SP256",
    }
)  # fmt: skip
# Varieties git-annex 10.20261026 reports secure without a hash of their own (verified):
# VURL (its equivalent keys decide; none recorded -> secure), GITBUNDLE, GITMANIFEST.
_SECURE_OTHER = frozenset({"VURL", "GITBUNDLE", "GITMANIFEST"})


def _is_secure_variety(variety: str) -> bool:
    """``isCryptographicallySecureKey`` for the backends built into git-annex. External
    (``X...``) backends answer for themselves in git-annex; here they count as insecure."""
    if variety in _SECURE_VARIETIES or variety in _SECURE_OTHER:
        return True
    return variety.endswith("E") and variety[:-1] in _SECURE_VARIETIES


_LENIENT_KEY = re.compile(r"^([^-]+)(?:-s([0-9]+))?")


@dataclass(frozen=True, slots=True)
class _KeyInfo:
    text: str
    variety: str
    size: int | None
    secure: bool


@lru_cache(maxsize=65536)
def _key_info_str(text: str) -> _KeyInfo:
    try:
        k = parse_key(text)
    except ValueError:
        m = _LENIENT_KEY.match(text)
        variety = m.group(1) if m else text
        size = int(m.group(2)) if m and m.group(2) else None
        return _KeyInfo(text, variety, size, _is_secure_variety(variety))
    return _KeyInfo(text, k.variety, k.size, _is_secure_variety(k.variety))


def _key_info(key: str | Key) -> _KeyInfo:
    if isinstance(key, Key):
        return _KeyInfo(str(key), key.variety, key.size, _is_secure_variety(key.variety))
    return _key_info_str(key)


# ---------------------------------------------------------------------------------------------
# Paths (System.FilePath.Posix)


def take_directory(path: str) -> str:
    """``takeDirectory``: ``a/b/c`` -> ``a/b``, ``c`` -> ``.``, ``/c`` -> ``/``."""
    i = path.rfind("/")
    if i < 0:
        return "."
    file = path[: i + 1]
    res = file.rstrip("/")
    return res if res else file


def split_path(path: str) -> list[str]:
    """``splitPath``: components keep their trailing slashes (``a/b`` -> ``['a/', 'b']``)."""
    out: list[str] = []
    i, n = 0, len(path)
    if path.startswith("/"):
        j = i
        while j < n and path[j] == "/":
            j += 1
        out.append(path[:j])
        i = j
    while i < n:
        j = i
        while j < n and path[j] != "/":
            j += 1
        while j < n and path[j] == "/":
            j += 1
        out.append(path[i:j])
        i = j
    return out


def _strip_downloader(url: str) -> str:
    """``fst . getDownloader``."""
    scheme, sep, rest = url.partition(":")
    if sep and scheme in ("yt", "quvi", ""):
        return rest
    return url


# ---------------------------------------------------------------------------------------------
# Compiled matchers


class _MatchFailure(Exception):
    pass


class _KeyState:
    __slots__ = (
        "balanced", "facts", "info", "locs", "locs_noncluster", "locs_set", "logged_set",
        "metadata",
    )  # fmt: skip

    def __init__(self, world: World, facts: KeyFacts) -> None:
        self.facts = facts
        self.info = _key_info(facts.key)
        logged = set(facts.locations)
        for cluster, nodes in world.clusters.items():
            if cluster not in logged and not nodes.isdisjoint(facts.locations):
                logged.add(cluster)
        self.logged_set = frozenset(logged)
        trust = world.trust
        self.locs = tuple(u for u in sorted(logged) if trust(u) is not TrustLevel.DEAD)
        self.locs_set = frozenset(self.locs)
        self.locs_noncluster = tuple(u for u in self.locs if not is_cluster_uuid(u))
        self.balanced: dict[
            tuple[bool, str, int], tuple[Candidates, tuple[str, ...], frozenset[str]]
        ] = {}
        self.metadata: dict[str, list[str]] | None = None

    def meta_values(self, fieldname_folded: str) -> list[str]:
        if self.metadata is None:
            folded: dict[str, list[str]] = {}
            for f, vals in self.facts.metadata.items():
                folded.setdefault(f.casefold(), []).extend(sorted(vals))
            self.metadata = folded
        return self.metadata.get(fieldname_folded, [])


class _Ctx:
    __slots__ = ("file", "ks", "notpresent", "trace")

    def __init__(
        self,
        ks: _KeyState,
        notpresent: frozenset[str],
        file: str | None,
        trace: list[TermResult] | None,
    ) -> None:
        self.ks = ks
        self.notpresent = notpresent
        self.file = file
        self.trace = trace


Fn = Callable[[_Ctx], bool]


@dataclass(frozen=True, eq=False)
class _Sub:
    """A resolved ``standard``/``groupwanted``: its expansion (or the ``present`` fallback)."""

    term: Standard | GroupWanted
    root: object  # a Node tree that may contain _Sub leaves
    expansion: str

    @property
    def token(self) -> str:
        """The term's token: a _Sub stands where the term stood, in traces and renderings."""
        return self.term.token


@dataclass
class _Compiled:
    info: MatcherInfo
    fn: Fn | None  # None: unconfigured
    root: object = None
    unstable_terms: tuple[str, ...] = field(default=())
    traced: Fn | None = None  # the tracing variant, compiled on first explain()


class Evaluator:
    """Preferred-content decisions for one ``World`` (compile once, decide many times)."""

    def __init__(self, world: World, *, live_sizes: Mapping[str, int] | None = None) -> None:
        """live_sizes: repository sizes to use instead of the world's, read at every decision
        (a simulation that moves keys updates this mapping in place as it goes)."""
        self.world = world
        self._live_sizes = live_sizes
        members: dict[str, set[str]] = {}
        for u, r in world.repos.items():
            for g in r.groups:
                members.setdefault(g, set()).add(u)
        self._members: dict[str, frozenset[str]] = {g: frozenset(s) for g, s in members.items()}
        self._pickers: dict[str, BalancedPicker] = {}
        self._compiled: dict[tuple[str, str], _Compiled] = {}
        self._last: tuple[KeyFacts, _KeyState] | None = None

    # -- world lookups --------------------------------------------------------------------
    def group_members(self, group: str) -> frozenset[str]:
        return self._members.get(group, frozenset())

    def picker(self, group: str) -> BalancedPicker | None:
        p = self._pickers.get(group)
        if p is None:
            m = self._members.get(group)
            if not m:
                return None
            p = self._pickers[group] = BalancedPicker(m)
        return p

    def _maxsize_of(self, u: str) -> int | None:
        r = self.world.repos.get(u)
        return r.maxsize if r is not None else None

    def _size_of(self, u: str) -> int | None:
        if self._live_sizes is not None:
            return self._live_sizes.get(u)
        r = self.world.repos.get(u)
        return r.size if r is not None else None

    def _numcopies(self, file: str | None) -> int:
        if file is not None and self.world.file_numcopies is not None:
            n = self.world.file_numcopies(file)
            if n is not None:
                return n if n > 0 else 1
        return self.world.global_numcopies()

    def _key_state(self, facts: KeyFacts) -> _KeyState:
        last = self._last
        if last is not None and last[0] is facts:
            return last[1]
        ks = _KeyState(self.world, facts)
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
                    parsed = self._parse(e)
                    if not parsed.empty:
                        roots.append(self._resolve(uuid, parsed.root, True, True))
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
        unstable = self._negated_unstable(root) if root is not None else ()
        info = MatcherInfo(uuid, status, pref, req, error, unstable, source)
        fn = self._compile(uuid, root) if root is not None and status != "unconfigured" else None
        compiled = _Compiled(info, fn, root, unstable)
        self._compiled[(uuid, which)] = compiled
        return compiled

    @staticmethod
    @lru_cache(maxsize=4096)
    def _parse(text: str) -> Expression:
        return parse(text)

    def _resolve(self, uuid: str, node: Node, expand_std: bool, expand_gw: bool) -> object:
        """Replace ``standard``/``groupwanted`` terms with their expansions (``makeMatcher``)."""
        if isinstance(node, (And, Or)):
            items = tuple(self._resolve(uuid, n, expand_std, expand_gw) for n in node.items)
            return type(node)(items)  # type: ignore[arg-type]
        if isinstance(node, Not):
            return Not(self._resolve(uuid, node.operand, expand_std, expand_gw))  # type: ignore[arg-type]
        if isinstance(node, Standard):
            if expand_std:
                group = standard_group_of(self.world.repo(uuid).groups)
                if group is not None:
                    text = STANDARD_EXPRESSIONS[group]
                    sub = self._resolve(uuid, self._parse(text).root, False, False)
                    return _Sub(node, sub, f"{group}: {text}")  # type: ignore[arg-type]
                return _Sub(node, Present(), "present (not in exactly one standard group)")
            return _Sub(node, Present(), "present (standard inside standard)")
        if isinstance(node, GroupWanted):
            if expand_gw:
                groups = self.world.repo(uuid).groups
                found = sorted(g for g in groups if g in self.world.group_wanted)
                if len(found) == 1:
                    text = self.world.group_wanted[found[0]]
                    sub = self._resolve(uuid, self._parse(text).root, True, False)
                    return _Sub(node, sub, f"{found[0]}: {text}")  # type: ignore[arg-type]
                why = "no group" if not found else f"groups {found}"
                return _Sub(node, Present(), f"present ({why} with a groupwanted expression)")
            return _Sub(node, Present(), "present (groupwanted inside groupwanted)")
        return node

    @staticmethod
    def _op_unstable(op: object) -> bool:
        if isinstance(op, Present):
            return True
        if isinstance(op, Balanced):
            return op.stabilised
        if isinstance(op, _Sub):
            return any(Evaluator._op_unstable(t) for t in _leaves(op.root))
        return False

    def _negated_unstable(self, root: object) -> tuple[str, ...]:
        """``findNegated`` + ``matchNegationUnstable`` over the top-level matcher."""
        found: list[str] = []
        stack: list[tuple[object, bool]] = [(root, False)]
        while stack:
            n, neg = stack.pop()
            if isinstance(n, (And, Or)):
                stack.extend((c, neg) for c in reversed(n.items))
            elif isinstance(n, Not):
                stack.append((n.operand, not neg))
            elif isinstance(n, Empty):
                continue
            elif neg and self._op_unstable(n):
                tok = n.token  # type: ignore[attr-defined]
                if tok not in found:
                    found.append(tok)
        return tuple(found)

    # -- compilation ----------------------------------------------------------------------
    def _compile(self, uuid: str, node: object, trace: bool = False) -> Fn:
        if isinstance(node, Empty):
            return _true
        if isinstance(node, And):
            fns = tuple(self._compile(uuid, n, trace) for n in node.items)
            if len(fns) == 2:
                a, b = fns
                return lambda c: a(c) and b(c)

            def and_(c: _Ctx) -> bool:
                for f in fns:  # noqa: SIM110 - a plain loop is faster than any()/all()
                    if not f(c):
                        return False
                return True

            return and_
        if isinstance(node, Or):
            fns = tuple(self._compile(uuid, n, trace) for n in node.items)
            if len(fns) == 2:
                a, b = fns
                return lambda c: a(c) or b(c)

            def or_(c: _Ctx) -> bool:
                for f in fns:  # noqa: SIM110 - a plain loop is faster than any()/all()
                    if f(c):
                        return True
                return False

            return or_
        if isinstance(node, Not):
            inner = self._compile(uuid, node.operand, trace)
            return lambda c: not inner(c)
        if isinstance(node, _Sub):
            return self._compile_sub(uuid, node, trace)
        return self._compile_term(uuid, node, trace)  # type: ignore[arg-type]

    def _compile_sub(self, uuid: str, sub: _Sub, trace: bool) -> Fn:
        inner = self._compile(uuid, sub.root, trace)
        if not trace:
            return inner
        token = sub.term.token

        def call(c: _Ctx) -> bool:
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

    def _compile_term(self, uuid: str, term: Term, trace: bool) -> Fn:
        fn = self._term_fn(uuid, term)
        if not trace or isinstance(term, Balanced):
            return fn  # records its own (detailed) trace entry
        token = term.token

        def traced(c: _Ctx) -> bool:
            if c.trace is None:
                return fn(c)
            try:
                r = fn(c)
            except _MatchFailure as exc:
                c.trace.append(TermResult(token, False, term, error=str(exc)))
                raise
            c.trace.append(TermResult(token, r, term))
            return r

        return traced

    def _glob_fn(self, glob: str, *, case_sensitive: bool, filepath: bool) -> Callable[[str], bool]:
        try:
            return compile_glob(glob, case_sensitive=case_sensitive, filepath=filepath)
        except GlobError as exc:
            message = str(exc)

            def failing(_value: str) -> bool:
                raise _MatchFailure(message)

            return failing

    def _term_fn(self, uuid: str, term: Term) -> Fn:
        world = self.world
        if isinstance(term, Anything):
            return _true
        if isinstance(term, Nothing):
            return _false
        if isinstance(term, Include):
            m = self._glob_fn(term.glob, case_sensitive=True, filepath=True)
            return lambda c: c.file is not None and m(c.file)
        if isinstance(term, Exclude):
            m = self._glob_fn(term.glob, case_sensitive=True, filepath=True)
            return lambda c: c.file is None or not m(c.file)
        if isinstance(term, Copies):
            return self._copies_fn(term)
        if isinstance(term, LackingCopies):
            return self._lacking_fn(term.count, term.approx)
        if isinstance(term, InBackend):
            name = term.name
            return lambda c: c.ks.info.variety == name
        if isinstance(term, SecureHash):
            return lambda c: c.ks.info.secure
        if isinstance(term, LargerThan):
            limit = term.size

            def larger(c: _Ctx) -> bool:
                s = c.ks.info.size
                return s is not None and s > limit

            return larger
        if isinstance(term, SmallerThan):
            limit = term.size

            def smaller(c: _Ctx) -> bool:
                s = c.ks.info.size
                return s is None or s < limit

            return smaller
        if isinstance(term, MetaData):
            return self._metadata_fn(term)
        if isinstance(term, Url):
            m = self._glob_fn(term.glob, case_sensitive=True, filepath=False)
            return lambda c: any(m(_strip_downloader(u)) for u in c.ks.facts.urls)
        if isinstance(term, Present):
            return self._present_fn(uuid)
        if isinstance(term, InPreferredDir):
            pd = world.repo(uuid).preferreddir
            d = "public" if pd is None else pd
            return lambda c: c.file is not None and d in split_path(take_directory(c.file))
        if isinstance(term, InAllGroup):
            want = self.group_members(term.group)
            if not want:
                return _true
            return lambda c: want.isdisjoint(c.notpresent) and want <= c.ks.locs_set
        if isinstance(term, OnlyInGroup):
            want = self.group_members(term.group)
            if not want:
                return _false

            def only(c: _Ctx) -> bool:
                present = c.ks.locs_set - c.notpresent
                return not present.isdisjoint(want) and present <= want

            return only
        if isinstance(term, Unused):
            unused = world.unused_keys
            return lambda c: c.file is None and c.ks.info.text in unused
        if isinstance(term, Balanced):
            return self._balanced_fn(uuid, term)
        if isinstance(term, (Standard, GroupWanted)):  # only reachable via evaluate(expand=False)
            return _true
        raise AssertionError(f"unknown term {term!r}")  # pragma: no cover

    def _present_fn(self, uuid: str) -> Fn:
        if uuid == self.world.here:

            def present_here(c: _Ctx) -> bool:
                lp = c.ks.facts.local_present
                return lp if lp is not None else uuid in c.ks.locs_set

            return present_here
        return lambda c: uuid in c.ks.locs_set

    def _copies_fn(self, term: Copies) -> Fn:
        n = term.count
        trust = self.world.trust
        good: Callable[[str], bool] | None
        if term.group is not None:
            members = self.group_members(term.group)
            good = members.__contains__
        elif term.trust is not None:
            level = term.trust
            if term.trust_or_higher:
                good = lambda u: level <= trust(u)  # noqa: E731
            else:
                good = lambda u: trust(u) is level  # noqa: E731
        else:
            good = None

        def copies(c: _Ctx) -> bool:
            locs = c.ks.locs_noncluster
            np = c.notpresent
            if good is None:
                if not np:
                    return len(locs) >= n
                return sum(1 for u in locs if u not in np) >= n
            return sum(1 for u in locs if u not in np and good(u)) >= n

        return copies

    def _have_for_numcopies(self, c: _Ctx) -> int:
        trust = self.world.trust
        np = c.notpresent
        return sum(
            1 for u in c.ks.locs_noncluster if u not in np and trust(u) is not TrustLevel.UNTRUSTED
        )

    def _lacking_fn(self, needed: int, approx: bool) -> Fn:
        def lacking(c: _Ctx) -> bool:
            numcopies = self.world.global_numcopies() if approx else self._numcopies(c.file)
            return numcopies - self._have_for_numcopies(c) >= needed

        return lacking

    def _metadata_fn(self, term: MetaData) -> Fn:
        folded = term.field.casefold()
        v = term.value
        if term.op == "=":
            m = self._glob_fn(v, case_sensitive=False, filepath=False)
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

    # -- balanced ---------------------------------------------------------------------------
    def _balanced_fn(self, uuid: str, term: Balanced) -> Fn:
        present = self._present_fn(uuid)
        enough_fn: Fn | None = None
        enough_negate = True
        if term.stabilised and term.enough is not None:
            if isinstance(term.enough, LackingCopies):
                enough_fn = self._lacking_fn(1, False)
                enough_negate = False
            else:
                enough_fn = self._copies_fn(term.enough)
        members = self.group_members(term.group)
        sorted_members = tuple(sorted(members))
        any_maxsize = any(self._maxsize_of(u) is not None for u in members)
        rebalance = self.world.rebalance
        count = term.count
        sized = term.sized

        def fully(c: _Ctx, detail: list[BalancedDetail] | None) -> bool:
            ks = c.ks
            if count is None:
                n = self._numcopies(c.file) - self._have_for_numcopies(c)
            else:
                n = count
            # candidates and picks do not depend on the deciding repository: cache per key
            cache_key = (sized, term.group, n)
            cached = ks.balanced.get(cache_key)
            if cached is None:
                cached = ks.balanced[cache_key] = self._balanced_picks(
                    ks, term.group, sized, n, sorted_members, any_maxsize
                )
            cands, picks, picked = cached
            wanted = uuid in picked
            if detail is not None:
                detail.append(
                    BalancedDetail(
                        term.kind,
                        term.group,
                        uuid,
                        cands.members,
                        n,
                        cands.candidates,
                        dict(cands.excluded),
                        picks,
                        wanted,
                        cands.size_rule,
                        cands.size_ranked,
                        rebalance=rebalance,
                    )
                )
            return wanted

        def decide(
            c: _Ctx, detail: list[BalancedDetail] | None
        ) -> tuple[bool, bool | None, bool | None]:
            if not term.stabilised or rebalance or enough_fn is None:
                return fully(c, detail), None, None
            p = present(c)
            if p:
                return True, True, None
            e = enough_fn(c)
            check = (not e) if enough_negate else e
            if not check:
                return False, False, check
            return fully(c, detail), False, check

        token = term.token

        def balanced(c: _Ctx) -> bool:
            if c.trace is None:
                return decide(c, None)[0]
            detail: list[BalancedDetail] = []
            r, p, e = decide(c, detail)
            bd = None
            if detail:
                d0 = detail[0]
                bd = BalancedDetail(
                    d0.kind, d0.group, d0.uuid, d0.members, d0.count, d0.candidates,
                    d0.excluded, d0.picks, d0.picked, d0.size_rule, d0.size_ranked,
                    present=p, enough_copies=e, rebalance=d0.rebalance,
                )  # fmt: skip
            elif p is not None or e is not None:
                bd = BalancedDetail(
                    term.kind, term.group, uuid, sorted_members, term.count or 0, (), {}, (),
                    False, present=p, enough_copies=e, rebalance=rebalance,
                )  # fmt: skip
            c.trace.append(TermResult(token, r, term, balanced=bd))
            return r

        return balanced

    def _balanced_picks(
        self,
        ks: _KeyState,
        group: str,
        sized: bool,
        n: int,
        members: tuple[str, ...],
        any_maxsize: bool,
    ) -> tuple[Candidates, tuple[str, ...], frozenset[str]]:
        keysize = ks.info.size or 0
        rebalance = self.world.rebalance
        cands: Candidates
        if sized:
            cands = size_balanced_candidates(
                n, keysize, ks.logged_set, members, self._maxsize_of, self._size_of
            )
        elif not any_maxsize and not (rebalance and n > 1):
            cands = Candidates(members, members, {})
        else:
            cands = fully_balanced_candidates(
                n,
                keysize,
                ks.logged_set,
                members,
                self._maxsize_of,
                self._size_of,
                rebalance=rebalance,
                threshold=self.world.fully_balanced_threshold,
            )
        picker = self.picker(group)
        picks: list[str] = []
        if cands.candidates and picker is not None and n > 0:
            picks = picker.pick(cands.candidates, ks.info.text, n)
        return cands, tuple(picks), frozenset(picks)

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
            return comp.fn(_Ctx(self._key_state(facts), notpresent, file, None))
        except _MatchFailure:
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
        ctx = _Ctx(self._key_state(facts), np, facts.file, None)
        try:
            if comp.fn(ctx):
                return False
            for f in facts.other_files:
                if f == facts.file:
                    continue
                ctx.file = f
                if comp.fn(ctx):
                    return False
        except _MatchFailure:
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
        expr = expression if isinstance(expression, Expression) else self._parse(expression)
        if expr.empty:
            return True
        root = self._resolve(uuid, expr.root, True, True) if expand_groups else expr.root
        if self._negated_unstable(root):
            return False
        fn = self._compile(uuid, root)
        try:
            return fn(_Ctx(self._key_state(facts), assume_not_present, facts.file, None))
        except _MatchFailure:
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
            comp.traced = self._compile(uuid, comp.root, trace=True)
        traced = comp.traced
        for f in files:
            trace: list[TermResult] = []
            err = None
            try:
                r = traced(_Ctx(ks, np, f, trace))
            except _MatchFailure as exc:
                r, err = False, str(exc)
            out.append(file_explanation(f, r, trace, comp.root, err))
            if err is not None or context == "get" or r:
                break  # a failure ends it; get asks one file; drop stops at a wanted one
        return conclude(uuid, context, comp.info, out, comp.unstable_terms)


def _true(_c: _Ctx) -> bool:
    return True


def _false(_c: _Ctx) -> bool:
    return False


def _leaves(node: object) -> list[object]:
    out: list[object] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, (And, Or)):
            stack.extend(n.items)
        elif isinstance(n, Not):
            stack.append(n.operand)
        elif not isinstance(n, Empty):
            out.append(n)
    return out
