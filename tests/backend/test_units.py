"""Size units against git-annex 10.20261026: captured outputs, properties, and a differential
run of the real `git annex maxsize` / `git annex info`."""

from __future__ import annotations

import math
import random
import re
from fractions import Fraction

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from annextui.backend.units import (
    COMMITTEE_UNITS,
    DATA_UNITS,
    SizeError,
    format_percentage,
    format_precise,
    format_rough,
    parse_size,
    show_double,
    show_imprecise,
)
from tests.support.annex import AnnexEnv
from tests.support.data import spec_example


def _rows(name: str) -> list[str]:
    """The data lines of a captured example (``#`` lines are comments)."""
    text = spec_example(name).read_text()
    return [ln for ln in text.splitlines() if ln and not ln.startswith("#")]


def _captured_block(name: str, title: str) -> str:
    """The lines under the ``# TITLE`` header of a captured example, up to the blank line."""
    lines = spec_example(name).read_text().splitlines()
    start = lines.index(f"# {title}") + 1
    end = lines.index("", start)
    return "\n".join(lines[start:end]) + "\n"


# examples/size-parsing.txt: input | result | --bytes | `git annex maxsize here`
_ROW = re.compile(r'^"(.*)" \| (ok|FAILED) \| (\d+) \| (.*)$')
PARSING_CASES = [_ROW.match(line).groups() for line in _rows("size-parsing.txt")]  # type: ignore[union-attr]

# examples/maxsize-and-info-output.txt: `git annex maxsize` and `git annex maxsize --bytes`
OVERVIEW = _captured_block(
    "maxsize-and-info-output.txt", "git annex maxsize (overview) in the gateway repo, 10.20261026"
)
OVERVIEW_BYTES = _captured_block("maxsize-and-info-output.txt", "git annex maxsize --bytes")


def overview_row(size: int | None, maxsize: int | None, *, as_bytes: bool = False) -> str:
    """The columns before the UUID in `git annex maxsize` (Command/MaxSize.hs tablerow)."""

    def fmt(n: int | None) -> str:
        if n is None:
            return ""
        return str(n) if as_bytes else format_rough(n, 0)

    if size is not None and maxsize is not None:
        pct = format_percentage(size, maxsize) if size <= maxsize else ">100%"
    else:
        pct = ""
    return f"{fmt(size):>7} {fmt(maxsize):>7} {pct:>6}  "


def _bytes_rows() -> list[tuple[int, int | None, str]]:
    rows = []
    for line in OVERVIEW_BYTES.splitlines()[1:]:
        m = re.match(r"^ *(\d+) +(?:(\d+) +\d+%)? +([0-9a-f-]{36}) -- ", line)
        assert m, line
        rows.append((int(m[1]), int(m[2]) if m[2] else None, m[3]))
    return rows


# --------------------------------------------------------------------------------------------
# captured examples


def test_captured_examples_are_read() -> None:
    """The captures under tests/data/spec are all there (a parse slip must not empty a test)."""
    assert len(PARSING_CASES) == 25
    assert ("1 gbit", "ok", "125000000", "125.0 MB") in PARSING_CASES
    assert len(_bytes_rows()) == len(OVERVIEW.splitlines()) - 1 == 9


@pytest.mark.parametrize(("text", "result", "nbytes", "shown"), PARSING_CASES)
def test_size_parsing_examples(text: str, result: str, nbytes: str, shown: str) -> None:
    if result == "ok":
        n = parse_size(text)
        assert n == int(nbytes)
        assert format_precise(n) == shown
    else:
        with pytest.raises(SizeError, match=r"^Unable to parse size\.$"):
            parse_size(text)


def test_size_error_is_value_error() -> None:
    assert issubclass(SizeError, ValueError)
    assert str(SizeError()) == "Unable to parse size."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # verified against git-annex 10.20261026 (see the differential test for more)
        ("5.", 5),
        ("5.gb", 5),
        ("(5)kb", 5000),
        ("( 5 ) kb", 5000),
        ("((5))", 5),
        ("-5", -5),
        ("- 5", -5),
        ("(-5)", -5),
        ("-\t5", -5),
        ("0x10", 16),
        ("0x10gb", 16 * 10**9),
        ("0X1F", 31),
        ("0o17", 15),
        ("0O7", 7),
        ("0b101", 0),
        ("5_000", 5),
        ("1eb", 10**18),
        ("1e", 10**18),  # no exponent digits: unit "e" = "e" + "b" = EB
        ("1.5 e", 15 * 10**17),
        ("1e+3", 1000),
        ("1E3", 1000),
        ("1.5.5", 2),
        ("5'", 5),
        ("5 'a'", 5),
        ("-0", 0),
        ("1e-400", 0),
        ("0.0000001", 0),
        ("0e99999999999999999999", 0),
        ("1e-99999999999999999999", 0),
        ("9007199254740993", 9007199254740992),
        ("9007199254740995", 9007199254740996),
        ("0.5 kbit", 62),
        ("1.5 kbit", 188),
        ("1 b", 1),
        ("2 bytes", 2),
        ("1 kibibytes", 1024),
        ("1 K\u0130B", 1024),  # Data.Char.toLower: U+0130 -> 'i'
        ("1 \u212ab", 1000),  # KELVIN SIGN lowercases to 'k'
        ("1\u00a0kb", 1000),
        ("\u20033", 3),
        ("1e40", 10000000000000000303786028427003666890752),
        ("Infinity", 2**1024),
        ("Infinity gb", 2**1024),
        ("1e400", 2**1024),
        ("1e300 QB", 2**1024),
        ("0x" + "f" * 300, 2**1024),
        ("-Infinity", -(2**1024)),
        ("NaN", -3 * 2**1023),
        ("NaN kb", -3 * 2**1023),
        ("-NaN", 3 * 2**1023),
    ],
)
def test_parse_haskell_reads_corners(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "(5",
        "+5",
        "0x",
        "0o8",
        "1 bits",
        "1 bit",
        "1 KiBb",
        "1 mbitb",
        "3 Infinity",
        "Infinity'",
        "infinity",
        "nan",
        "--5",
        "-(5)",
        "-.5",
        "3 bytesx",
        "\u22125",  # MINUS SIGN
        "\u0665",  # ARABIC-INDIC DIGIT FIVE
    ],
)
def test_parse_failures(text: str) -> None:
    with pytest.raises(SizeError):
        parse_size(text)


def test_precise_display_corners() -> None:
    assert format_precise(0) == "0.0 B"
    assert format_precise(-5) == "-5.0 B"
    assert format_precise(10**40) == "1.0e10 QB"
    assert format_precise(12345678 * 10**30) == "1.2345678e7 QB"
    assert format_precise(1234567 * 10**30) == "1234567.0 QB"
    assert format_precise(2**1024) == "Infinity QB"
    assert format_precise(-3 * 2**1023) == "-Infinity QB"
    assert format_precise(9007199254740992) == "9.007199254740993 PB"
    assert format_precise(1000, long_names=True) == "1.0 kilobytes"
    assert format_precise(1) == "1.0 B"


def test_overview_rows_from_captured_bytes() -> None:
    shown = OVERVIEW.splitlines()[1:]
    as_bytes = OVERVIEW_BYTES.splitlines()[1:]
    for (size, maxsize, uuid), line, bline in zip(_bytes_rows(), shown, as_bytes, strict=True):
        assert line == overview_row(size, maxsize) + line[line.index(uuid) :]
        assert bline == overview_row(size, maxsize, as_bytes=True) + bline[bline.index(uuid) :]


def test_info_outputs() -> None:
    sizes = {"here": 623003222, "client": 623003090, "n3": 3090, "n1": 18}
    assert format_rough(sizes["here"], 2, long_names=True) == "623 megabytes"
    assert format_rough(sum(sizes.values()), 2, long_names=True) == "1.25 gigabytes"
    assert [format_rough(n, 2) for n in sizes.values()] == ["623 MB", "623 MB", "3.09 kB", "18 B"]
    assert format_rough(3090, 2, long_names=True) == "3.09 kilobytes"
    bloom = format_rough(32 * 2**20, 2, long_names=True, units=COMMITTEE_UNITS)
    assert f"{bloom} ({format_percentage(0, 32 * 2**20)} full)" == "32 mebibytes (0% full)"
    # maxsize REPO lines
    assert [format_precise(n) for n in (300 * 10**9, 800 * 10**9, 10**6)] == [
        "300.0 GB",
        "800.0 GB",
        "1.0 MB",
    ]


@pytest.mark.parametrize(
    ("n", "decimals", "long_names", "expected"),
    [
        (1000, 2, True, "1 kilobyte"),
        (200, 2, True, "200 bytes"),
        (1, 2, True, "1 byte"),
        (0, 2, True, "0 bytes"),
        (999500, 0, False, "1000 kB"),  # no carry into the next unit
        (999999, 2, False, "1000 kB"),
        (2500, 0, False, "2 kB"),  # half to even
        (3500, 0, False, "4 kB"),
        (2675000, 2, False, "2.67 MB"),  # 0.675 * 100 = 67.4999... in doubles
        (1005000, 2, False, "1 MB"),
        (1015000, 2, False, "1.01 MB"),
        (1995000, 2, False, "2 MB"),
        (-1500, 2, False, "-1.5 kB"),
        (2**1024, 0, False, f"{2**1024} QB"),
        (2**1024, 2, True, f"{2**1024} quettabytes"),
        (10**40, 2, False, "10000000000 QB"),
    ],
)
def test_rough(n: int, decimals: int, long_names: bool, expected: str) -> None:
    assert format_rough(n, decimals, long_names) == expected


def test_percentages() -> None:
    assert format_percentage(5, 0) == "0%"
    assert format_percentage(25, 1000) == "2%"
    assert format_percentage(35, 1000) == "4%"
    assert format_percentage(995, 1000) == "100%"
    assert format_percentage(1, 3) == "33%"
    assert format_percentage(1, 3, 2) == "33.33%"
    assert format_percentage(1100, 1000) == "110%"
    assert format_percentage(10**400, 1) == f"{2**1024}%"


def test_show_double() -> None:
    assert [show_double(x) for x in (0.0, 300.0, 0.05, 1e7, 9999999.5, 0.1, 1e22, -2.5)] == [
        "0.0",
        "300.0",
        "5.0e-2",
        "1.0e7",
        "9999999.5",
        "0.1",
        "1.0e22",
        "-2.5",
    ]
    assert [show_double(x) for x in (math.inf, -math.inf, math.nan, -0.0)] == [
        "Infinity",
        "-Infinity",
        "NaN",
        "-0.0",
    ]
    assert show_imprecise(2, -1.25) == "-1.-25"  # as Haskell's showImprecise does


# --------------------------------------------------------------------------------------------
# properties

UNIT_WORDS = sorted(
    {w for u in DATA_UNITS for w in (u.abbrev, u.name, u.name + "s", u.abbrev[:-1] or "b")}
)

number_text = st.builds(
    lambda ws, par, sign, i, f, e: (
        ws + "(" * par + sign + i + (("." + f) if f is not None else "") + e + ")" * par
    ),
    st.sampled_from(["", " ", "\t", "\u00a0"]),
    st.integers(0, 2),
    st.sampled_from(["", "-", "- ", "+"]),
    st.from_regex(r"\A[0-9]{1,25}\Z"),
    st.none() | st.from_regex(r"\A[0-9]{0,25}\Z"),
    st.sampled_from(["", "e3", "E-7", "e+400", "e-400", "e", "e99999999999999999999"]),
)
size_text = st.builds(
    lambda n, sp, unit, case, tail: n + sp + (unit.upper() if case else unit) + tail,
    number_text | st.sampled_from(["NaN", "Infinity", "0x1F", "0o17", "-NaN"]),
    st.sampled_from(["", " ", "  "]),
    st.sampled_from(["", *UNIT_WORDS, "furlongs", "bit"]),
    st.booleans(),
    st.sampled_from(["", " extra", "x", ".5", ")"]),
)


@given(st.text() | size_text)
@example("(" * 5000 + "5" + ")" * 5000)
@example("1" * 5000)
@example("1e" + "9" * 5000)
@example("0." + "0" * 5000 + "1e5005")
def test_parse_never_raises_anything_but_size_error(text: str) -> None:
    try:
        n = parse_size(text)
    except SizeError:
        return
    assert isinstance(n, int)


@given(st.integers(-(2**50), 2**50))
def test_precise_round_trip(n: int) -> None:
    assert parse_size(format_precise(n)) == n
    assert parse_size(format_precise(n, long_names=True)) == n


@given(st.integers(0, 2**62), st.integers(0, 3), st.booleans())
def test_rough_round_trip_is_close(n: int, decimals: int, long_names: bool) -> None:
    text = format_rough(n, decimals, long_names)
    back = parse_size(text)
    # at most half a unit of the last decimal shown (the unit is <= n), plus double rounding
    assert abs(back - n) <= n * (0.5 / 10**decimals) * (1 + 1e-9) + 1


@given(st.integers(0, 10**30), st.integers(1, 10**30))
def test_percentage_matches_exact_rounding(have: int, full: int) -> None:
    exact = Fraction(have * 100, full)
    assume(exact < 2**50)
    nearest = round(exact)
    # the double nearest to `exact` must not sit on the other side of a .5 tie
    assume(abs(exact - math.floor(exact) - Fraction(1, 2)) > exact / 2**50 + Fraction(1, 10**9))
    assert format_percentage(have, full) == f"{nearest}%"


@given(st.floats(0.1, 1e7, exclude_max=True))
def test_show_double_fixed_range_is_python_repr(x: float) -> None:
    assert show_double(x) == repr(x)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_show_double_round_trips(x: float) -> None:
    assert float(show_double(x)) == x


# --------------------------------------------------------------------------------------------
# differential: the real git-annex

# (maxsize argument, size of a key logged present in that repository or None)
DIFF_CASES: list[tuple[str, int | None]] = [
    ("100 gigabytes", 1246009420),
    ("1.5GiB", 3090),
    ("2.5", None),
    ("3.5", 18),  # larger than maxsize: >100%
    ("0.5 kbit", None),
    ("1.5 kbit", 1),
    ("(5)kb", 2675000),
    ("- 5", None),
    ("0x10gb", 999500),
    ("0o17", None),
    ("5_000", None),
    ("1eb", 9007199254740995),
    ("1e+3", 25),  # 2.5% -> 2%
    ("1000", 35),  # 3.5% -> 4%
    ("1000.0", 995),  # 99.5% -> 100%
    ("3", 1),  # 33%
    ("3 B", 2),  # 67%
    ("1 kB", 1000),  # 100%
    ("1.5.5", None),
    ("5.gb", None),
    ("9007199254740993", 999999),
    ("1e40", None),
    ("12345678e30", None),
    ("1.0000000000000002 QB", None),
    ("Infinity", 10**18),
    ("NaN", None),
    ("1e-400", None),
    ("999.5 kB", 1005000),
    ("2.675 MB", 2675000),
    ("1 K\u0130B", 1995000),
    ("0.000123 EB", 1015000),
    ("10 furlongs", 123456),
    ("1GBfoo", None),
    (".5gb", None),
    ("+5", None),
    ("(5", None),
    ("1 bits", None),
]


def _uuid(i: int) -> str:
    return f"22222222-0000-4000-8000-{i:012d}"


def test_differential_against_git_annex(annex_env: AnnexEnv) -> None:
    repo = annex_env.make_annex_repo(
        "r",
        uuid="11111111-0000-4000-8000-000000000000",
        config={"annex.alwayscommit": "false"},  # journal only: no commit per command
    )
    with (repo / ".git" / "config").open("a") as cfg:
        for i in range(len(DIFF_CASES)):
            cfg.write(f'[remote "r{i:02d}"]\n\turl = /nonexistent/r{i:02d}\n')
            cfg.write(f"\tannex-uuid = {_uuid(i)}\n")
    keys = "".join(
        f"SHA256E-s{size}--{i:064x} {_uuid(i)} 1\n"
        for i, (_t, size) in enumerate(DIFF_CASES)
        if size is not None
    )
    annex_env.annex(repo, "setpresentkey", "--batch", input=keys)

    expected_max: dict[str, int] = {}
    for i, (text, _size) in enumerate(DIFF_CASES):
        res = annex_env.annex(repo, "maxsize", f"r{i:02d}", "--", text, check=False)
        try:
            ours = parse_size(text)
        except SizeError:
            assert res.returncode == 1, (text, res.stdout)
            assert "git-annex: Unable to parse size." in res.stderr
            continue
        assert res.returncode == 0, (text, res.stderr)
        expected_max[_uuid(i)] = ours

    # bytes as git-annex recorded them
    [overview] = annex_env.annex_json(repo, "maxsize")
    recorded = {r["uuid"]: r["size"] for r in overview["repositories"]}
    for i, (text, _size) in enumerate(DIFF_CASES):
        if _uuid(i) in expected_max:
            assert recorded[_uuid(i)]["maxsize"] == expected_max[_uuid(i)], text

    # precise display, one repository at a time
    for i, (text, _size) in enumerate(DIFF_CASES):
        if _uuid(i) in expected_max:
            shown = annex_env.annex(repo, "maxsize", f"r{i:02d}").stdout.rstrip("\n")
            assert shown == format_precise(expected_max[_uuid(i)]), text

    # overview: rough sizes and %full
    lines = annex_env.annex(repo, "maxsize").stdout.splitlines()
    assert lines[0] == "   size maxsize  %full  repository"
    seen = set()
    for line in lines[1:]:
        m = re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", line)
        assert m, line
        u = m[0]
        sizes = recorded[u]
        assert line[: m.start()] == overview_row(sizes["size"], sizes["maxsize"]), line
        seen.add(u)
    assert set(expected_max) <= seen

    # info: abbreviated 2-decimal sizes per repository and long names
    [info] = annex_env.annex_json(repo, "info")
    by_uuid = {r["uuid"]: r["size"] for r in info["annex sizes of repositories"]}
    total = 0
    for i, (_text, size) in enumerate(DIFF_CASES):
        if size:
            assert by_uuid[_uuid(i)] == format_rough(size, 2), size
            total += size
    assert info["combined annex size of all repositories"] == format_rough(total, 2, True)
    remotes = [f"r{i:02d}" for i, (_t, size) in enumerate(DIFF_CASES) if size is not None]
    for rec in annex_env.annex_json(repo, "info", *remotes):
        i = int(rec["remote"][1:])
        size = DIFF_CASES[i][1]
        assert size is not None
        assert rec["remote annex size"] == format_rough(size, 2, True), size


def _random_size_strings(seed: int, count: int) -> list[str]:
    rnd = random.Random(seed)
    pieces = [
        *"0123456789",
        ".", "e", "E", "+", "-", "(", ")", " ", "\t", "_", "'", "x", "o",
        "\u00a0", "\u2003", "\u0130", "\u212a", "\u2212",
        "NaN", "Infinity", "0x", "0o",
        *{u.abbrev for u in DATA_UNITS}, "bytes", "kilobyte", "gibibytes", "Mbit", "furlong",
    ]  # fmt: skip
    out = []
    for _ in range(count):
        digits = "".join(rnd.choice("0123456789") for _ in range(rnd.randint(1, 6)))
        extra = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 5)))
        head = rnd.choice(["", " ", "-", "(", "- "])
        out.append(head + digits + extra if rnd.random() < 0.8 else extra)
    return out


def test_differential_random_strings(annex_env: AnnexEnv) -> None:
    """Random strings from a size-ish alphabet: git-annex and we agree on bytes or failure."""
    repo = annex_env.make_annex_repo("r", config={"annex.alwayscommit": "false"})
    for text in _random_size_strings(20261026, 30):
        res = annex_env.annex(repo, "maxsize", "here", "--", text, check=False)
        try:
            ours: int | None = parse_size(text)
        except SizeError:
            ours = None
        if res.returncode != 0:
            assert "Unable to parse size." in res.stderr, res.stderr
            assert ours is None, text
            continue
        theirs = int(annex_env.annex(repo, "maxsize", "here", "--bytes").stdout)
        assert ours == theirs, text
