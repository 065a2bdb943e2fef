"""Preferred content: parser, semantics, balanced vectors, standard groups, explain, analysis.

Vectors come from the spec (git-annex 10.20261026); differential tests against the real binary
are in test_interop.py and test_glob.py.
"""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annextui.backend.ghcread import read_maybe_double, readish_int, words
from annextui.backend.preferred import (
    STANDARD_EXPRESSIONS,
    BalancedPicker,
    Evaluator,
    ExpressionError,
    KeyFacts,
    Repo,
    TrustLevel,
    World,
    analyze,
    parse,
)
from annextui.backend.preferred import parser as P
from annextui.backend.preferred.balanced import self_test
from annextui.backend.preferred.evaluate import split_path, take_directory
from annextui.backend.preferred.standard import standard_group_of
from tests.support.data import spec_example

VECTORS = spec_example("balanced-test-vectors.txt")

R1 = "2c2a1e0e-5d5a-4e8b-9b57-0e1b0c3e9a01"
R2 = "7f1b6c3d-1a2b-4c3d-8e4f-5a6b7c8d9e02"
R3 = "d4e5f6a7-b8c9-4dae-8f01-23456789ab03"
NAMES = {R1: "r1", R2: "r2", R3: "r3"}
G = frozenset({"g"})
FILL = "SHA256E-s100--" + "0" * 64 + ".bin"
K_F70 = "SHA256E-s100--f70a7fab8e37a8932f175646d1dbaeff189622856c377820f0bdc8310ebf75b5.bin"

VECTOR_TEXT = VECTORS.read_text()


def _sections() -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {}
    cur = None
    for line in VECTOR_TEXT.splitlines():
        m = re.match(r"## (\w)\.", line)
        if m:
            cur = m.group(1)
            out[cur] = []
        elif cur and re.match(r"^[A-Z0-9]+-", line):
            out[cur].append(line.split())
    return out


def _vector_world(**sizes: int) -> World:
    return World.build(
        [
            Repo(
                u,
                groups=G,
                maxsize=sizes.get(f"{NAMES[u]}max"),
                size=sizes.get(f"{NAMES[u]}size", 0),
            )
            for u in (R1, R2, R3)
        ]
    )


def _who(
    world: World, expr: str, key: str, locs: frozenset[str] = frozenset(), local: bool = False
) -> list[str]:
    """Which of r1..r3 match EXPR for KEY, each evaluated "in" that repo (matchexpression)."""
    out = []
    for u in (R1, R2, R3):
        w = World(
            repos=world.repos,
            group_wanted=world.group_wanted,
            numcopies=world.numcopies,
            here=u if local else None,
        )
        ev = Evaluator(w)
        facts = KeyFacts(key, locations=locs, local_present=False if local else None)
        if ev.evaluate(expr, u, facts):
            out.append(NAMES[u])
    return sorted(out)


# ---------------------------------------------------------------------------------------------
# balanced vectors (spec §6-7, examples/balanced-test-vectors.txt)

SECTION_SETUP = {
    "A": ("fullybalanced=g", {}),
    "B": ("fullybalanced=g:2", {}),
    "C": ("fullybalanced=g", {"r3max": 150, "r3size": 100}),
    "D": ("sizebalanced=g", {"r1max": 1000, "r2max": 500, "r3max": 150, "r3size": 100}),
    "E": (
        "sizebalanced=g",
        {"r1max": 1000, "r2max": 500, "r3max": 150, "r3size": 100, "r2size": 100},
    ),
    "F": (
        "sizebalanced=g:2",
        {"r1max": 1000, "r2max": 500, "r3max": 150, "r3size": 100, "r2size": 100},
    ),
}


def _vector_cases() -> list[tuple[str, str, str, dict[str, int], list[str]]]:
    cases = []
    for sec, rows in _sections().items():
        if sec not in SECTION_SETUP:
            continue
        expr, sizes = SECTION_SETUP[sec]
        for row in rows:
            cases.append((sec, row[0], expr, sizes, sorted(row[1:])))
    return cases


def test_vector_file_has_all_sections() -> None:
    secs = _sections()
    assert all(len(secs[s]) == 12 for s in "ABCDEF")


@pytest.mark.parametrize(
    ("section", "key", "expr", "sizes", "expected"),
    _vector_cases(),
    ids=[f"{c[0]}-{c[1][:24]}" for c in _vector_cases()],
)
def test_balanced_vectors(
    section: str, key: str, expr: str, sizes: dict[str, int], expected: list[str]
) -> None:
    assert _who(_vector_world(**sizes), expr, key) == expected


def test_vector_g_balanced_vs_fullybalanced() -> None:
    """State C; FILL logged in r3 (but not in r3's object store: matchexpression checks the
    local store for `present`), numcopies unset."""
    w = _vector_world(r3max=150, r3size=100)
    r3 = frozenset({R3})
    assert _who(w, "balanced=g", FILL, r3, local=True) == []
    assert _who(w, "fullybalanced=g", FILL, r3, local=True) == ["r3"]
    assert _who(w, "balanced=g:lackingcopies", FILL, r3, local=True) == []
    assert _who(w, "copies=g:1", FILL, r3, local=True) == ["r1", "r2", "r3"]
    assert _who(w, "balanced=g", K_F70, local=True) == ["r1"]
    assert _who(w, "fullybalanced=g", K_F70, local=True) == ["r1"]
    assert _who(w, "balanced=g:lackingcopies", K_F70, local=True) == ["r1"]
    assert _who(w, "copies=g:1", K_F70, local=True) == []
    # from another repository's point of view, r3 "has" FILL by the location log
    assert _who(w, "balanced=g", FILL, r3) == ["r3"]


def test_vector_i_maxsize_zero_and_dead() -> None:
    w = World.build(
        [
            Repo(R1, groups=G, maxsize=0, size=0),
            Repo(R2, groups=G, maxsize=0, size=0),
            Repo(R3, trust=TrustLevel.DEAD, maxsize=0, size=100),
        ]
    )
    worm, md5 = "WORM-s5-m1700000000--hello.txt", "MD5-s0--d41d8cd98f00b204e9800998ecf8427e"
    assert _who(w, "fullybalanced=g", worm) == []
    assert _who(w, "sizebalanced=g", worm) == []
    assert _who(w, "fullybalanced=g", md5) == ["r1"]
    assert _who(w, "sizebalanced=g", md5) == []
    # the hash alone (both candidates) would pick r1 for the WORM key
    assert BalancedPicker([R1, R2]).pick([R1, R2], worm, 1) == [R1]


def test_picker_upstream_self_test() -> None:
    assert self_test()
    us = [str(i) for i in range(1, 501)]
    p = BalancedPicker(us)
    assert p.pick(us, "WORM--test", 1) == ["332"]
    assert p.pick(us, "WORM--test", 3) == ["332", "333", "334"]
    assert p.pick(us, "WORM--test", 0) == []
    assert p.pick([], "WORM--test", 3) == []
    assert sorted(p.pick(["1", "2"], "WORM--test", 5)) == ["1", "2"]


def test_picker_secret_uses_all_members() -> None:
    """Vector C: candidates {r1, r2}, index = hash mod 2 with the 3-UUID secret."""
    p3 = BalancedPicker([R1, R2, R3])
    p2 = BalancedPicker([R1, R2])
    key = "SHA256E-s100--2b7413bb045bccde2def7828189b292ca0f877a86c05f17f4d55bbd4f11427d1.bin"
    assert p3.pick([R1, R2], key, 1) == [R2]
    assert p3.hash(key) != p2.hash(key)


def test_sim_capture_balanced_backup() -> None:
    """examples/sim-balanced-show.txt: 6 files of 1 MB spread over b1/b2/b3 by hash -- the
    sim's UUIDs are not in the capture, so only the 3/2/1 shape is checked via a picker over
    three members: every key is wanted by exactly one member."""
    members = ["b1", "b2", "b3"]
    p = BalancedPicker(members)
    picks = [p.pick(members, f"SHA256E-s1000000--{i:064x}", 1)[0] for i in range(60)]
    assert set(picks) == set(members)


# ---------------------------------------------------------------------------------------------
# parser: tokens, structure, left-to-right semantics


def test_tokenizer_splits_parens_and_haskell_whitespace() -> None:
    toks = P.tokenize("(a and(b)) or\u00a0c\x1cd")
    assert [t.text for t in toks] == ["(", "a", "and", "(", "b", ")", ")", "or", "c\x1cd"]
    assert [t.position for t in toks][:4] == [0, 1, 3, 6]
    assert words(" x\t y ") == [("x", 1), ("y", 4)]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        # strictly left to right, no precedence
        ("anything or nothing and nothing", False),  # (anything or nothing) and nothing
        ("nothing and nothing or anything", True),  # (nothing and nothing) or anything
        ("anything or not anything", True),
        ("nothing or not nothing", True),
        ("anything nothing", False),  # implicit and
        ("anything not nothing", True),
        ("anything not not not nothing", True),
        ("not ( anything and nothing )", True),
        ("not ( not ( not nothing ) )", True),
        ("anything and ( nothing or anything", True),  # missing ) tolerated
        ("anything ) ) or nothing", True),  # extra ) ignored
        ("nothing and or anything", False),  # and (anything-implied or anything)
        ("anything and or nothing", True),
        ("anything not", False),  # trailing not = not (match everything)
        ("not", False),
        ("anything or", True),
        ("( )", True),
        ("nothing ( anything )", False),
        ("( anything or nothing ) nothing", False),
    ],
)
def test_left_to_right_semantics(expr: str, expected: bool) -> None:
    ev = Evaluator(World())
    assert ev.evaluate(expr, "u", KeyFacts("WORM--k")) is expected


def test_empty_expressions() -> None:
    assert parse("").empty
    assert parse("   ").empty
    assert parse("( )").empty
    assert parse("() ()").empty
    # git-annex's top-down simplify leaves MAnd(MAny, MAny): configured, matches everything
    assert not parse("(() ()) and (() ())").empty
    assert not parse("not").empty
    assert not parse("anything").empty


def test_ast_is_flat_and_frozen() -> None:
    e = parse("include=a or include=b or include=c and present")
    assert isinstance(e.root, P.And)
    assert isinstance(e.root.items[0], P.Or)
    assert len(e.root.items[0].items) == 3
    assert e.root.items[1] == P.Present()
    with pytest.raises(AttributeError):
        e.root.items = ()  # type: ignore[misc]
    assert [type(t).__name__ for t in e.terms()] == ["Include", "Include", "Include", "Present"]


@pytest.mark.parametrize(
    ("token", "term"),
    [
        ("copies=2abc", P.Copies(2, token="copies=2abc")),
        ("copies=0x10", P.Copies(16, token="copies=0x10")),
        ("copies=-1", P.Copies(-1, token="copies=-1")),
        (
            "copies=99999999999999999999",
            P.Copies(7766279631452241919, token="copies=99999999999999999999"),
        ),
        ("copies=trusted:1", P.Copies(1, trust=TrustLevel.TRUSTED, token="copies=trusted:1")),
        (
            "copies=semitrusted+:2",
            P.Copies(
                2, trust=TrustLevel.SEMITRUSTED, trust_or_higher=True, token="copies=semitrusted+:2"
            ),
        ),
        ("copies=foo+:2", P.Copies(2, group="foo+", token="copies=foo+:2")),
        ("copies=:1", P.Copies(1, group="", token="copies=:1")),
        ("copies=g:2x", P.Copies(2, group="g", token="copies=g:2x")),
        ("include", P.Include("", token="include")),
        ("lackingcopies=1", P.LackingCopies(1, token="lackingcopies=1")),
        ("approxlackingcopies=2", P.LackingCopies(2, approx=True, token="approxlackingcopies=2")),
        ("largerthan=1.", P.LargerThan(1, token="largerthan=1.")),
        ("largerthan=0x10", P.LargerThan(16, token="largerthan=0x10")),
        ("smallerthan=1e", P.SmallerThan(10**18, token="smallerthan=1e")),  # 1 EB
        ("largerthan=1.5GiB", P.LargerThan(1610612736, token="largerthan=1.5GiB")),
        ("metadata=tag", P.MetaData("tag", "=", "", token="metadata=tag")),
        ("metadata=year<=2000", P.MetaData("year", "<=", "2000", token="metadata=year<=2000")),
        ("metadata=a=b=c", P.MetaData("a", "=", "b=c", token="metadata=a=b=c")),
        ("inallgroup=", P.InAllGroup("", token="inallgroup=")),
        (
            "balanced=",
            P.Balanced(
                "balanced", "", 1, P.Copies(1, group="", token="balanced="), token="balanced="
            ),
        ),
        ("fullybalanced=:2", P.Balanced("fullybalanced", "", 2, None, token="fullybalanced=:2")),
    ],
)
def test_term_values_parse_like_git_annex(token: str, term: P.Term) -> None:
    assert P.parse_term(token) == term


def test_balanced_terms() -> None:
    b = P.parse_term("balanced=g:lackingcopies")
    assert isinstance(b, P.Balanced)
    assert b.lacking
    assert b.enough == P.LackingCopies(1, token="balanced")
    b = P.parse_term("sizebalanced=g:3")
    assert isinstance(b, P.Balanced)
    assert b.count == 3
    assert b.enough == P.Copies(3, group="g", token="sizebalanced=g:3")
    b = P.parse_term("balanced=trusted")  # as in git-annex: copies=trusted:1 is a trust check
    assert isinstance(b, P.Balanced)
    assert b.enough is not None
    assert b.enough == P.Copies(1, trust=TrustLevel.TRUSTED, token="balanced=trusted")


@pytest.mark.parametrize(
    ("expr", "reason", "token", "column"),
    [
        ("foo", 'near "foo"', "foo", 1),
        ("include=* and AND", 'near "AND"', "AND", 15),
        ("copies=1e3", "bad number for copies", "copies=1e3", 1),
        ("copies=1.0", "bad number for copies", "copies=1.0", 1),
        ("copies=", "bad number for copies", "copies=", 1),
        ("copies=a:b:1", "bad number for copies", "copies=a:b:1", 1),
        ("copies=g:", "bad number for copies", "copies=g:", 1),
        ("largerthan=", "bad size", "largerthan=", 1),
        ("largerthan=10furlongs", "bad size", "largerthan=10furlongs", 1),
        ("metadata=", 'Illegal metadata field name, ""', "metadata=", 1),
        ("metadata=-x=1", 'Illegal metadata field name, "-x"', "metadata=-x=1", 1),
        ("  balanced=g:x", "bad number for balanced", "balanced=g:x", 3),
        ("sizebalanced=g:1:2", "bad value for sizebalanced", "sizebalanced=g:1:2", 1),
        ("present=1", 'near "present=1"', "present=1", 1),
        ("unused=x", 'near "unused=x"', "unused=x", 1),
        ("lackingcopies=", "bad value for number of lacking copies", "lackingcopies=", 1),
        ("copies=1 2", 'near "2"', "2", 10),
    ],
)
def test_parse_errors_name_token_and_position(
    expr: str, reason: str, token: str, column: int
) -> None:
    with pytest.raises(ExpressionError) as exc:
        parse(expr)
    err = exc.value
    assert err.token == token
    assert err.position == column - 1
    assert reason in str(err)
    assert f"column {column}" in str(err)
    assert err.git_annex_message.startswith("Parse failure: ")


def test_parse_error_lists_every_bad_token() -> None:
    with pytest.raises(ExpressionError) as exc:
        parse("copies=- 1 and foo")
    assert [i.token for i in exc.value.issues] == ["copies=-", "1", "foo"]
    assert exc.value.git_annex_message == (
        'Parse failure: bad number for copies Parse failure: near "1" Parse failure: near "foo"'
    )


def test_too_deep_nesting_is_an_expression_error() -> None:
    with pytest.raises(ExpressionError):
        parse("( " * 300 + "anything")
    with pytest.raises(ExpressionError):
        parse("not " * 300 + "anything")
    parse("( " * 100 + "anything")
    parse(" or ".join(["anything"] * 3000))  # long flat chains are fine


def test_readish_and_read_double() -> None:
    assert readish_int("12abc") == 12
    assert readish_int("0o17") == 15
    assert readish_int("0x") == 0
    assert readish_int("1e") == 1
    assert readish_int("1e5") is None
    assert readish_int("--1") is None
    assert readish_int("+1") is None
    assert readish_int("") is None
    assert read_maybe_double("2.5") == 2.5
    assert read_maybe_double(" -3 ") == -3.0
    assert read_maybe_double("1e3") == 1000.0
    assert read_maybe_double("0x10") == 16.0
    assert read_maybe_double(".5") is None
    assert read_maybe_double("5.") is None
    assert read_maybe_double("+5") is None
    assert read_maybe_double("5x") is None
    assert read_maybe_double("Infinity") == float("inf")


# ---------------------------------------------------------------------------------------------
# hypothesis: token soups never raise anything but ExpressionError; structure matches a
# direct port of Utility/Matcher.hs


SOUP = st.lists(
    st.one_of(
        st.sampled_from(
            ["and", "or", "not", "(", ")", "anything", "nothing", "present", "copies=1",
             "copies=", "balanced=g", "standard", "groupwanted", "include=*", "exclude=[",
             "metadata=a<3", "largerthan=1kB", "AND", "foo", "inallgroup=g", "unused",
             "balanced=g:x", "url=*", "sizebalanced=g:lackingcopies", ")(", "not("]
        ),
        st.text(max_size=12),
    ),
    max_size=40,
)  # fmt: skip


@settings(max_examples=400)
@given(SOUP)
def test_token_soups_only_raise_expression_error(tokens: list[str]) -> None:
    expr = " ".join(tokens)
    try:
        e = parse(expr)
    except ExpressionError as exc:
        issues = exc.issues
        assert issues
        return
    world = World.build(
        [Repo("u", groups=frozenset({"g"}), preferred=expr, maxsize=10, size=5)],
        group_wanted={"g": expr},
    )
    ev = Evaluator(world)
    facts = KeyFacts("SHA256E-s3--" + "a" * 64, locations=frozenset({"u"}), file="x/y")
    ev.wants_get("u", facts)
    ev.wants_drop("u", facts)
    ev.explain("u", facts, context="drop").describe()
    analyze(e, world, "u")


def _ref_generate(tokens: list[object]) -> object:
    """Straight port of Utility.Matcher.generate (recursive, binary)."""

    def token_groups(ts: list[object]) -> list[object]:
        if not ts:
            return []
        t, rest = ts[0], ts[1:]
        if t == "(":
            g, rest2 = find_close(rest)
            return [g, *token_groups(rest2)]
        if t == ")":
            return token_groups(rest)
        return [("one", t), *token_groups(rest)]

    def find_close(ts: list[object]) -> tuple[object, list[object]]:
        def go(c: list[object], ts: list[object]) -> tuple[list[object], list[object]]:
            if not ts:
                return c, []
            t, rest = ts[0], ts[1:]
            if t == ")":
                return c, rest
            if t == "(":
                c2, rest2 = go([], rest)
                return go([("group", list(reversed(c2))), *c], rest2)
            return go([("one", t), *c], rest)

        g, rest = go([], ts)
        return ("group", list(reversed(g))), rest

    def need(x: object) -> bool:
        return (isinstance(x, tuple) and x[0] == "group") or (
            isinstance(x, tuple) and x[0] == "one" and x[1] not in ("and", "or", "not")
        )

    def implicit_and(xs: list[object]) -> list[object]:
        out: list[object] = []
        for i, x in enumerate(xs):
            out.append(x)
            if i + 1 < len(xs) and need(x) and need(xs[i + 1]):
                out.append(("one", "and"))
        return out

    def process(m: object, ts: list[object]) -> object:
        while ts:
            m, ts = consume(m, ts)
        return m

    def consume(m: object, ts: list[object]) -> tuple[object, list[object]]:
        if not ts:
            return m, []
        t, rest = ts[0], ts[1:]
        assert isinstance(t, tuple)
        if t[0] == "group":
            return process(m, implicit_and(t[1])), rest
        v = t[1]
        if v == "and":
            p, r = consume("any", rest)
            return ("and", m, p), r
        if v == "or":
            p, r = consume("any", rest)
            return ("or", m, p), r
        if v == "not":
            p, r = consume("any", rest)
            return ("and", m, ("not", p)), r
        return ("and", m, ("op", v)), rest

    return process("any", implicit_and(token_groups(tokens)))


def _ref_eval(m: object) -> bool:
    if m == "any":
        return True
    assert isinstance(m, tuple)
    if m[0] == "op":
        return bool(m[1] == "anything")
    if m[0] == "not":
        return not _ref_eval(m[1])
    if m[0] == "and":
        return _ref_eval(m[1]) and _ref_eval(m[2])
    return _ref_eval(m[1]) or _ref_eval(m[2])


@settings(max_examples=500)
@given(st.lists(st.sampled_from(["and", "or", "not", "(", ")", "anything", "nothing"]),
                max_size=14))  # fmt: skip
def test_structure_matches_reference_port(tokens: list[str]) -> None:
    expr = " ".join(tokens)
    ref = _ref_generate(list(tokens))
    ev = Evaluator(World())
    assert ev.evaluate(expr, "u", KeyFacts("WORM--k")) is _ref_eval(ref)


# ---------------------------------------------------------------------------------------------
# semantics


A, B, C, D, CL = "aaaa", "bbbb", "cccc", "dddd", "ac5877b6-cda8-85ef-89fe-87438044ca0b"


def _world(**kw: object) -> World:
    repos = [
        Repo(A, groups=frozenset({"x"})),
        Repo(B, trust=TrustLevel.UNTRUSTED, groups=frozenset({"x", "y"})),
        Repo(C, trust=TrustLevel.TRUSTED, groups=frozenset({"y"})),
        Repo(D, trust=TrustLevel.DEAD, groups=frozenset({"x"})),
    ]
    return World.build(repos, **kw)  # type: ignore[arg-type]


def _ev(expr: str, locs: set[str], *, file: str | None = "f", u: str = A, **kw: object) -> bool:
    return Evaluator(_world(**kw)).evaluate(expr, u, KeyFacts("SHA256-s10--k", frozenset(locs),
                                                             file=file))  # fmt: skip


def test_copies_trust_groups_dead_and_clusters() -> None:
    locs = {A, B, C, D}
    assert _ev("copies=3", locs)
    assert not _ev("copies=4", locs)  # dead not counted
    assert not _ev("copies=dead:1", locs)
    assert _ev("copies=untrusted:1", locs)
    assert not _ev("copies=untrusted:2", locs)
    assert _ev("copies=semitrusted+:2", locs)  # A (semi), C (trusted)
    assert not _ev("copies=semitrusted+:3", locs)
    assert _ev("copies=untrusted+:3", locs)
    assert _ev("copies=x:2", locs)
    assert not _ev("copies=x:3", locs)
    # cluster UUIDs are added for nodes but never counted
    cl = {CL: frozenset({A})}
    assert _ev("copies=1", {A}, clusters=cl)
    assert not _ev("copies=2", {A}, clusters=cl)
    assert not _ev("copies=2", {A, CL}, clusters=cl)
    assert not _ev("onlyingroup=x", {A}, clusters=cl)  # the cluster is outside group x
    assert _ev("onlyingroup=x", {A})


def test_lackingcopies_and_numcopies() -> None:
    assert _ev("lackingcopies=1", {A}, numcopies=2)
    assert not _ev("lackingcopies=1", {A, C}, numcopies=2)
    assert _ev("lackingcopies=1", {A, B}, numcopies=2)  # untrusted does not count
    assert _ev("lackingcopies=1", {A, C}, numcopies=2, file_numcopies=lambda f: 3)
    assert not _ev("approxlackingcopies=1", {A, C}, numcopies=2, file_numcopies=lambda f: 3)
    # key-only: the file's attribute cannot be looked up
    assert not _ev("lackingcopies=1", {A, C}, numcopies=2, file=None, file_numcopies=lambda f: 3)
    assert not _ev("lackingcopies=1", {A}, numcopies=0)  # numcopies < 1 counts as 1


def test_inallgroup_onlyingroup() -> None:
    assert _ev("inallgroup=nogroup", set())
    assert not _ev("onlyingroup=nogroup", {A})
    assert _ev("inallgroup=y", {B, C})
    assert not _ev("inallgroup=x", {A, B})  # D (dead) is in x but excluded from locations
    assert _ev("onlyingroup=y", {B, C})
    assert not _ev("onlyingroup=y", {A, C})


def test_sizes_backends_urls_metadata() -> None:
    ev = Evaluator(World())
    meta = {"Tag": frozenset({"FooBar"}), "year": frozenset({"1999", "abc"})}
    k = KeyFacts("WORM-s100-m1--x", urls=("yt:https://v/1", ":local-thing"), metadata=meta)
    nosize = KeyFacts("SHA256E--" + "a" * 64 + ".bin")
    assert ev.evaluate("largerthan=99", "u", k)
    assert not ev.evaluate("largerthan=100", "u", k)
    assert ev.evaluate("smallerthan=101", "u", k)
    assert not ev.evaluate("largerthan=0", "u", nosize)
    assert ev.evaluate("smallerthan=0", "u", nosize)
    assert ev.evaluate("inbackend=WORM", "u", k)
    assert not ev.evaluate("securehash", "u", k)
    assert ev.evaluate("securehash and inbackend=SHA256E", "u", nosize)
    assert ev.evaluate("url=https://v/*", "u", k)
    assert ev.evaluate("url=local-*", "u", k)
    assert ev.evaluate("metadata=tag=foo*", "u", k)  # field and glob case-insensitive
    assert ev.evaluate("metadata=year<2000", "u", k)
    assert ev.evaluate("metadata=year>=abc", "u", k)  # string compare when not numbers
    assert not ev.evaluate("metadata=year<1000", "u", k)
    assert not ev.evaluate("metadata=other=*", "u", k)


def test_file_terms_and_key_only() -> None:
    w = World.build([Repo("u", preferreddir="pub")])
    ev = Evaluator(w)

    def m(expr: str, file: str | None) -> bool:
        return ev.evaluate(expr, "u", KeyFacts("WORM--k", file=file))

    assert m("include=*.bin", "a/b.bin")
    assert not m("include=*", None)
    assert m("exclude=*", None)  # git-annex: not (glob match) with no file = True
    assert not m("inpreferreddir", None)
    assert m("inpreferreddir", "pub/f")
    assert m("inpreferreddir", "a/pub/f")
    assert not m("inpreferreddir", "pub/sub/f")  # only the last directory (splitPath quirk)
    assert not m("inpreferreddir", "public/f")
    assert m("unused", None) is False
    ev2 = Evaluator(World(unused_keys=frozenset({"WORM--k"})))
    assert ev2.evaluate("unused", "u", KeyFacts("WORM--k"))
    assert not ev2.evaluate("unused", "u", KeyFacts("WORM--k", file="f"))


def test_path_helpers() -> None:
    assert take_directory("a/b/c") == "a/b"
    assert take_directory("c") == "."
    assert take_directory("/c") == "/"
    assert split_path("a/b/c") == ["a/", "b/", "c"]
    assert split_path("/x//y") == ["/", "x//", "y"]


def test_present_local_and_dead() -> None:
    w = World.build([Repo(A), Repo(D, trust=TrustLevel.DEAD)], here=A)
    ev = Evaluator(w)
    assert ev.evaluate("present", A, KeyFacts("WORM--k", frozenset({A})))
    assert not ev.evaluate("present", A, KeyFacts("WORM--k", frozenset({A}), local_present=False))
    assert ev.evaluate("present", A, KeyFacts("WORM--k", frozenset(), local_present=True))
    assert not ev.evaluate("present", D, KeyFacts("WORM--k", frozenset({D})))


def test_wants_get_and_drop_contexts() -> None:
    w = World.build(
        [
            Repo(A, preferred="not copies=1"),
            Repo(B, preferred="copies=2"),
            Repo(C),
            Repo("e", preferred="include=keep/*"),
        ]
    )
    ev = Evaluator(w)
    only_a = KeyFacts("WORM--k", frozenset({A}), file="f")
    assert not ev.wants_get(A, only_a)
    assert ev.wants_get(A, KeyFacts("WORM--k", file="f"))
    assert not ev.wants_drop(A, only_a)  # A assumed dropped -> 0 copies -> preferred
    assert ev.wants_drop(A, KeyFacts("WORM--k", frozenset({A, C}), file="f"))
    # copies=2 lets content be dropped only when there are 3 copies including this one
    assert ev.wants_drop(B, KeyFacts("WORM--k", frozenset({A, B}), file="f"))
    assert not ev.wants_drop(B, KeyFacts("WORM--k", frozenset({A, B, C}), file="f"))
    # unconfigured: caller's default
    assert ev.wants_get(C, only_a) is False
    assert ev.wants_get(C, only_a, default=True) is True
    assert ev.wants_drop(C, only_a) is True
    assert ev.wants_drop(C, only_a, default=True) is False
    # any preferred associated file keeps the key
    two = KeyFacts("WORM--k", frozenset({"e"}), file="x", other_files=("keep/y",))
    assert not ev.wants_drop("e", two)
    assert ev.wants_drop("e", KeyFacts("WORM--k", frozenset({"e"}), file="x"))


def test_required_or_preferred_and_unparsable() -> None:
    w = World.build(
        [
            Repo(A, preferred="include=a*", required="include=*.req"),
            Repo(B, required="include=*.req"),
            Repo(C, preferred="include=*", required="futureterm"),
            Repo(D, preferred="", required=""),
            Repo("e", preferred="( )"),
        ]
    )
    ev = Evaluator(w)

    def get(u: str, f: str, locs: frozenset[str] = frozenset()) -> bool:
        return ev.wants_get(u, KeyFacts("WORM--k", locs, file=f))

    assert get(A, "abc")
    assert get(A, "x.req")
    assert not get(A, "x")
    assert get(B, "x.req")
    assert not get(B, "x")
    assert ev.is_required(B, KeyFacts("WORM--k", file="x.req"))
    assert not ev.is_required(A, KeyFacts("WORM--k", file="abc"))
    # an unparsable half poisons the whole: behaves like present
    assert ev.matcher_info(C).status == "unparsable"
    assert not get(C, "x")
    assert get(C, "x", frozenset({C}))
    # empty expressions: not configured
    assert ev.matcher_info(D).status == "unconfigured"
    assert ev.matcher_info("e").status == "unconfigured"
    assert ev.wants_get("e", KeyFacts("WORM--k"), default=True)


def test_instability_guard() -> None:
    w = World.build(
        [
            Repo(A, preferred="not present", groups=frozenset({"g"})),
            Repo(B, preferred="include=* and not balanced=g", groups=frozenset({"g"})),
            Repo(C, preferred="not not present"),  # doubly negated: stable
            Repo(D, preferred="not fullybalanced=g"),  # fullybalanced has no present: stable
            Repo("e", preferred="not groupwanted", groups=frozenset({"h"})),
            Repo("f", preferred="not groupwanted", groups=frozenset({"g2"})),
        ],
        group_wanted={"h": "copies=1", "g2": "include=* and present"},
    )
    ev = Evaluator(w)
    k = KeyFacts("WORM--k", frozenset(), file="f")
    assert ev.matcher_info(A).unstable == ("present",)
    assert not ev.wants_get(A, k)
    assert ev.wants_drop(A, k)
    assert ev.matcher_info(B).unstable == ("balanced=g",)
    assert ev.matcher_info(C).stable
    assert not ev.wants_get(C, k)
    assert ev.matcher_info(D).stable
    assert ev.wants_get(D, k)  # D is not in g: fullybalanced false, negated true
    assert ev.matcher_info("e").stable
    assert ev.wants_get("e", k)
    assert ev.matcher_info("f").unstable == ("groupwanted",)
    e = ev.explain(A, k, context="drop")
    assert e.decision
    assert "not stable" in e.reason


def test_standard_and_groupwanted_resolution() -> None:
    w = World.build(
        [
            Repo("bk", groups=frozenset({"backup", "other"}), preferred="standard"),
            Repo("two", groups=frozenset({"backup", "archive"}), preferred="standard"),
            Repo("none", groups=frozenset({"other"}), preferred="standard"),
            Repo("gw", groups=frozenset({"g1", "unwanted"}), preferred="groupwanted"),
            Repo("gw2", groups=frozenset({"g1", "g2"}), preferred="groupwanted"),
            Repo("gwempty", groups=frozenset({"g3"}), preferred="groupwanted"),
            Repo("gwbad", groups=frozenset({"g4"}), preferred="groupwanted"),
            Repo("gwnest", groups=frozenset({"g5"}), preferred="groupwanted"),
        ],
        group_wanted={
            "g1": "standard or include=*.keep",
            "g2": "anything",
            "g3": "",
            "g4": "nonsense-term",
            "g5": "groupwanted or include=*.keep",
        },
    )
    ev = Evaluator(w)

    def get(u: str, locs: frozenset[str] = frozenset(), f: str = "x") -> bool:
        return ev.wants_get(u, KeyFacts("WORM--k", locs, file=f))

    assert get("bk")  # backup: anything
    assert not get("two")  # two standard groups: present
    assert get("two", frozenset({"two"}))
    assert not get("none")
    assert get("none", frozenset({"none"}))
    assert not get("gw")  # unwanted's standard expression: not anything
    assert get("gw", f="a.keep")
    assert not get("gw2")  # two groups with groupwanted: present
    assert get("gwempty")  # an empty groupwanted expression matches everything
    assert ev.matcher_info("gwbad").status == "unparsable"
    assert get("gwbad", frozenset({"gwbad"}))
    assert not get("gwnest")  # nested groupwanted is present
    assert get("gwnest", frozenset({"gwnest"}))
    assert get("gwnest", f="y.keep")


def test_standard_group_table() -> None:
    client = (
        "(include=* and ((exclude=*/archive/* and exclude=archive/*) or (not (copies=archive:1 "
        "or copies=smallarchive:1)))) or approxlackingcopies=1"
    )
    assert STANDARD_EXPRESSIONS["client"] == client
    assert STANDARD_EXPRESSIONS["transfer"] == (
        f"(not (inallgroup=client and copies=client:2) and ({client})) or approxlackingcopies=1"
    )
    assert STANDARD_EXPRESSIONS["backup"] == "anything"
    assert STANDARD_EXPRESSIONS["incrementalbackup"] == (
        "((not copies=backup:1) and (not copies=incrementalbackup:1)) or approxlackingcopies=1"
    )
    assert STANDARD_EXPRESSIONS["smallarchive"] == (
        "((include=*/archive/* or include=archive/*) and ((not (copies=archive:1 or "
        "copies=smallarchive:1)) or approxlackingcopies=1)) or approxlackingcopies=1"
    )
    assert STANDARD_EXPRESSIONS["archive"] == (
        "(not (copies=archive:1 or copies=smallarchive:1)) or approxlackingcopies=1"
    )
    assert STANDARD_EXPRESSIONS["source"] == "not (copies=1)"
    assert STANDARD_EXPRESSIONS["manual"] == f"present and ({client})"
    assert STANDARD_EXPRESSIONS["public"] == "inpreferreddir"
    assert STANDARD_EXPRESSIONS["unwanted"] == "not anything"
    for e in STANDARD_EXPRESSIONS.values():
        parse(e)
    assert standard_group_of({"backup", "foo"}) == "backup"
    assert standard_group_of({"backup", "client"}) is None


def test_balanced_rebalance_and_threshold() -> None:
    members = [Repo(u, groups=G, maxsize=1000, size=s) for u, s in ((R1, 950), (R2, 100), (R3, 0))]
    key = "SHA256E-s10--" + "b" * 64 + ".bin"
    for rebalance, threshold in ((False, 0.9), (True, 0.9), (True, 0.99)):
        w = World.build(members, rebalance=rebalance, fully_balanced_threshold=threshold)
        ev = Evaluator(w)
        wanted = [u for u in (R1, R2, R3) if ev.evaluate("balanced=g:3", u, KeyFacts(key))]
        if rebalance and threshold == 0.9:
            # 3 > 3 - 1 too full: size rule, the 3 emptiest (all that have space)
            assert wanted == [R1, R2, R3]
        else:
            assert wanted == [R1, R2, R3]  # n >= candidates: everybody picked
    # N=2 and two of three members too full (>= 90 %): with --rebalance the size rule picks
    # the emptiest repositories with space, without it the hash picks among all three
    full = [Repo(u, groups=G, maxsize=1000, size=s) for u, s in ((R1, 950), (R2, 920), (R3, 0))]
    ev = Evaluator(World.build(full, rebalance=True))
    assert [u for u in (R1, R2, R3) if ev.evaluate("balanced=g:2", u, KeyFacts(key))] == [R2, R3]
    ev = Evaluator(World.build(full))
    picked = [u for u in (R1, R2, R3) if ev.evaluate("balanced=g:2", u, KeyFacts(key))]
    assert picked == sorted(BalancedPicker([R1, R2, R3]).pick([R1, R2, R3], key, 2))


def test_explain_balanced() -> None:
    w = _vector_world(r3max=150, r3size=100)
    w = World(repos={**w.repos, R1: Repo(R1, groups=G, preferred="balanced=g")})
    ev = Evaluator(w)
    facts = KeyFacts(K_F70, file="f.bin")
    e = ev.explain(R1, facts)
    assert e.decision
    d = e.decided_by
    assert d is not None
    assert d.token == "balanced=g"
    assert d.balanced is not None
    assert d.balanced.candidates == (R1, R2)
    assert d.balanced.excluded.keys() == {R3}
    assert d.balanced.picks == (R1,)
    assert d.balanced.present is False
    assert d.balanced.enough_copies is True
    assert "picks" in e.describe()
    assert e.files[0].rendered == "balanced=g[TRUE]"
    e2 = ev.explain(R1, KeyFacts(K_F70, frozenset({R2}), file="f.bin"), context="drop")
    assert e2.decision  # another member has it: not copies=g:1 is false
    assert e2.files[0].rendered == "balanced=g[FALSE]"


def test_explain_shortcircuit_render() -> None:
    w = World.build([Repo(A, preferred="include=*.bin or copies=2 and not copies=5")])
    ev = Evaluator(w)
    e = ev.explain(A, KeyFacts("WORM--k", frozenset({A, B}), file="a.txt"))
    assert e.files[0].rendered == (
        "(include=*.bin[FALSE] or copies=2[TRUE]) and not copies=5[FALSE]"
    )
    assert e.decided_by is not None
    assert e.decided_by.token == "copies=5"
    assert e.decision


def test_explain_names_standard_and_groupwanted_by_their_token() -> None:
    """A standard/groupwanted term is rendered and traced under its own name, its expansion
    below it (the expansion is what decides)."""
    w = World.build(
        [
            Repo(A, groups=frozenset({"backup"}), preferred="standard and not copies=3"),
            Repo(B, groups=frozenset({"g1"}), preferred="groupwanted"),
        ],
        group_wanted={"g1": "include=*.keep"},
    )
    ev = Evaluator(w)
    e = ev.explain(A, KeyFacts("WORM--k", frozenset({A}), file="a.txt"))
    assert e.files[0].rendered == "standard[TRUE] and not copies=3[FALSE]"
    assert [t.token for t in e.files[0].trace] == ["standard", "copies=3"]
    assert e.files[0].trace[0].expansion == "backup: anything"
    e = ev.explain(B, KeyFacts("WORM--k", file="b.txt"))
    assert e.files[0].rendered == "groupwanted[FALSE]"
    assert e.reason == "does not match; decided by groupwanted[False]"
    assert e.files[0].trace[0].children[0].token == "include=*.keep"


def test_bad_glob_fails_the_check() -> None:
    w = World.build([Repo(A, preferred="include=[abc"), Repo(B, preferred="anything or include=[")])
    ev = Evaluator(w)
    k = KeyFacts("WORM--k", file="f")
    assert ev.wants_get(A, k) is False
    assert ev.wants_drop(A, k) is False
    assert ev.wants_get(B, k) is True  # short-circuit: never compiled
    assert not ev.wants_get(A, KeyFacts("WORM--k"))  # no file: glob never used
    assert "failed to compile regex" in ev.explain(A, k).reason


def test_many_decisions_are_fast() -> None:
    repos = [Repo(f"u{i:02d}", groups=frozenset({"g"}), preferred="balanced=g:2 or "
                  "(include=*.bin and copies=g:1) or lackingcopies=1", maxsize=10**9, size=0)
             for i in range(20)]  # fmt: skip
    w = World.build(repos, numcopies=2)
    ev = Evaluator(w)
    facts = [KeyFacts(f"SHA256E-s{i}--{i:064x}.bin", frozenset({f"u{i % 20:02d}"}),
                      file=f"d/{i}.bin") for i in range(2500)]  # fmt: skip
    t = time.perf_counter()
    n = 0
    for f in facts:
        for r in repos:
            ev.wants_get(r.uuid, f)
            n += 1
    elapsed = time.perf_counter() - t
    assert n == 50000
    assert elapsed < 10  # typically ~0.3 s: about 150k decisions per second


# ---------------------------------------------------------------------------------------------
# analysis


def _codes(expr: str, world: World | None = None, uuid: str | None = None) -> set[str]:
    return {w.code for w in analyze(expr, world, uuid)}


def test_analysis_warnings() -> None:
    assert "unstable-negation" in _codes("not present")
    assert "unstable-negation" in _codes("include=* and not balanced=g")
    assert "unstable-negation" not in _codes("not not present")
    assert "copies-race" in _codes("not copies=g:1")
    assert "copies-race" not in _codes("present or not copies=g:1")
    assert "copies-only" in _codes("copies=2")
    assert "fully-balanced" in _codes("fullybalanced=g")
    assert "bad-glob" in _codes("include=[abc")
    assert "glob-assertion" in _codes("include=it's*")
    assert "exclude-without-file" in _codes("exclude=*.tmp")
    assert "lenient-number" in _codes("copies=2abc")
    assert "dead-copies" in _codes("copies=dead:1")
    assert _codes("foo") == {"parse-error"}
    assert _codes("") == {"empty"}
    w = World.build(
        [Repo("u", groups=frozenset({"g", "trusted"}), maxsize=0), Repo("v", groups=G)],
        group_wanted={"g": "present"},
    )
    assert "unstable-negation" in _codes("not groupwanted", w, "u")
    assert "sizebalanced-no-maxsize" in _codes("sizebalanced=g", w, "u")
    assert "maxsize-zero" in _codes("balanced=g", w, "u")
    assert "unknown-group" in _codes("balanced=nope", w, "u")
    assert "unknown-group" in _codes("inallgroup=nope", w, "u")
    assert "group-shadowed" in _codes("copies=trusted:1", w, "u")
    for w_ in analyze("not present"):
        assert w_.message
