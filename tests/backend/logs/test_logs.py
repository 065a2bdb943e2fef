"""Branch log parsers: captured files round-trip byte for byte; resolution follows git-annex."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from annextui.backend.clock import Clock, parse_clock
from annextui.backend.logs import (
    PresenceStatus,
    change_presence,
    parse_map_log,
    parse_presence_log,
    parse_uuid_log,
    present_infos,
    resolve_map_log,
    resolve_presence_log,
    resolve_uuid_log,
    serialize_map_log,
    serialize_presence_log,
    serialize_uuid_log,
    set_map_value,
    set_uuid_value,
)
from annextui.backend.logs.single import (
    parse_single_log,
    resolve_single_log,
    serialize_single_log,
    set_single_value,
)
from annextui.backend.logs.values import (
    parse_proxy_value,
    parse_remote_config,
    parse_trust,
    serialize_proxy_value,
    serialize_remote_config,
)
from annextui.backend.trust import TrustLevel
from tests.support.data import SPEC_EXAMPLES

EXAMPLES = SPEC_EXAMPLES

MAP_LOGS = {"proxy.log", "cluster.log", "maxsize.log", "group-preferred-content.log"}
SINGLE_LOGS = {"numcopies.log", "mincopies.log"}


def _roundtrip(name: str, data: bytes) -> bytes:
    if name.endswith(".log") and "_" in name and "SHA" in name:
        return serialize_presence_log(parse_presence_log(data))
    if name in MAP_LOGS:
        return serialize_map_log(parse_map_log(data))
    if name in SINGLE_LOGS:
        return serialize_single_log(parse_single_log(data))
    return serialize_uuid_log(parse_uuid_log(data))


def _example_files() -> list[Path]:
    files = sorted((EXAMPLES / "branch").glob("*.log"))
    files += sorted((EXAMPLES / "branch" / "location").glob("*.log"))
    files += sorted((EXAMPLES / "journal-before-commit").glob("*"))
    return files


@pytest.mark.parametrize("path", _example_files(), ids=lambda p: p.name)
def test_captured_logs_roundtrip_byte_for_byte(path: Path) -> None:
    data = path.read_bytes()
    assert _roundtrip(path.name, data) == data


def test_there_are_captured_examples() -> None:
    assert len(_example_files()) >= 16


def test_uuid_log_values_with_spaces_and_empty_values() -> None:
    data = (
        b"dddddddd-0000-4000-8000-000000000004 node four with spaces timestamp=1795546765s\n"
        b"44444444-4444-4444-8444-444444444444  timestamp=1700000001s\n"
    )
    lines = parse_uuid_log(data)
    assert lines[0].value == "node four with spaces"
    assert lines[1].value == ""
    assert serialize_uuid_log(lines) == data


def test_uuid_log_later_line_wins_on_equal_clock() -> None:
    data = b"U a timestamp=5s\nU b timestamp=5s\nU c timestamp=4s\n"
    assert resolve_uuid_log(parse_uuid_log(data))["U"].value == "b"


def test_uuid_log_line_without_timestamp_is_oldest() -> None:
    data = b"U new timestamp=1s\nU legacy value\n"
    winner = resolve_uuid_log(parse_uuid_log(data))["U"]
    assert winner.value == "new"


def test_map_log_tie_break_later_line_wins() -> None:
    # Captured: maxsize "U 111" then "U 222" at one clock -> 222; reversed -> 111.
    a = resolve_map_log(parse_map_log(b"1700000000s U 111\n1700000000s U 222\n"))
    b = resolve_map_log(parse_map_log(b"1700000000s U 222\n1700000000s U 111\n"))
    assert a["U"].value == "222"
    assert b["U"].value == "111"


def test_presence_log_tie_break_earlier_line_wins() -> None:
    assert present_infos(b"1700000000s 1 U\n1700000000s 0 U\n") == {"U"}
    assert present_infos(b"1700000000s 0 U\n1700000000s 1 U\n") == set()


def test_map_log_empty_value_keeps_trailing_space() -> None:
    data = b"1700000011s 44444444-4444-4444-8444-444444444444 \n"
    lines = parse_map_log(data)
    assert lines[0].value == ""
    assert serialize_map_log(lines) == data


def test_set_map_value_advances_clock_within_one_second() -> None:
    # Three maxsize writes in one clock second -> ...0002s, as captured.
    clock = Clock.from_seconds(1700000000)
    data = b""
    for size in ("1000000000", "2000000000", "3000000000"):
        data = set_map_value(parse_map_log(data), "U", size, clock)
    assert data == b"1700000002s U 3000000000\n"


def test_set_uuid_value_rewrites_sorted_by_uuid() -> None:
    data = b"b x timestamp=1s\na y timestamp=1s\n"
    out = set_uuid_value(parse_uuid_log(data), "c", "z", Clock.from_seconds(5))
    assert out == b"a y timestamp=1s\nb x timestamp=1s\nc z timestamp=5s\n"


def test_single_value_unchanged_is_not_rewritten() -> None:
    data = b"1700000000s 3\n"
    assert set_single_value(parse_single_log(data), 3, Clock.from_seconds(1700000001)) is None
    new = set_single_value(parse_single_log(data), 4, Clock.from_seconds(1700000000))
    assert new == b"1700000001s 4\n"
    best = resolve_single_log(parse_single_log(b"5s 2\n5s 7\n4s 9\n"))
    assert best is not None
    assert best.value == 7


def test_change_presence_appends_new_uuid_and_compacts_existing() -> None:
    base = (
        b"1795546780s 1 11111111-1111-4111-8111-111111111111\n"
        b"1795546836s 1 33333333-3333-4333-8333-333333333333\n"
        b"1795546836s 1 cccccccc-0000-4000-8000-000000000003\n"
    )
    dropped = change_presence(
        base,
        "33333333-3333-4333-8333-333333333333",
        PresenceStatus.MISSING,
        Clock.from_seconds(1795546936),
    )
    assert dropped == (
        b"1795546780s 1 11111111-1111-4111-8111-111111111111\n"
        b"1795546936s 0 33333333-3333-4333-8333-333333333333\n"
        b"1795546836s 1 cccccccc-0000-4000-8000-000000000003\n"
    )
    added = change_presence(base, "0000", PresenceStatus.PRESENT, Clock.from_seconds(1))
    assert added == base + b"1s 1 0000\n"
    same = change_presence(
        base, "11111111-1111-4111-8111-111111111111", PresenceStatus.PRESENT, Clock(0)
    )
    assert same is None


def test_dead_line_with_picosecond_clock_roundtrips() -> None:
    data = b"1795546937.000000000001s X 44444444-4444-4444-8444-444444444444\n"
    lines = parse_presence_log(data)
    assert lines[0].status is PresenceStatus.DEAD
    assert lines[0].clock.picos == 1795546937 * 10**12 + 1
    assert serialize_presence_log(lines) == data


def test_clock_never_loses_twelve_digit_fractions() -> None:
    a = parse_clock("1795546937.000000000001s")
    b = parse_clock("1795546937s")
    assert a > b
    assert a.format() == "1795546937.000000000001s"


def test_proxy_and_remote_config_values() -> None:
    proxied = parse_proxy_value("bb:n2 aa:n1 cc:bad..name ac58:mycluster")
    assert [p.name for p in proxied] == ["n2", "n1", "mycluster"]
    assert serialize_proxy_value(proxied) == "aa:n1 ac58:mycluster bb:n2"
    cfg = {"name": "x", "directory": "/a b&c", "type": "directory"}
    assert parse_remote_config(serialize_remote_config(cfg)) == cfg
    assert serialize_remote_config(cfg) == "directory=/a&32;b&38;c name=x type=directory"
    assert parse_trust("X") is TrustLevel.DEAD
    assert parse_trust("") is TrustLevel.TRUSTED
    assert parse_trust("?") is TrustLevel.SEMITRUSTED
    assert parse_trust("weird") is TrustLevel.SEMITRUSTED


_Line = TypeVar("_Line")  # one log family's line type


# -- properties ------------------------------------------------------------------------------
_token = st.text(
    alphabet=st.characters(exclude_characters="\n\r ", exclude_categories=["Cs"]),
    min_size=1,
    max_size=12,
)
_clock = st.builds(Clock, st.integers(min_value=0, max_value=10**22))
_value = st.lists(_token, max_size=4).map(" ".join)


@given(st.lists(st.tuples(_clock, _token, _value), max_size=8))
def test_map_log_serialize_parse_is_stable(entries: list[tuple[Clock, str, str]]) -> None:
    from annextui.backend.logs import MapLine

    lines = [MapLine(c, f, v) for c, f, v in entries]
    data = serialize_map_log(lines)
    assert parse_map_log(data) == lines
    assert serialize_map_log(parse_map_log(data)) == data


@given(st.lists(st.tuples(_clock, st.sampled_from(list(PresenceStatus)), _token), max_size=8))
def test_presence_serialize_parse_is_stable(
    entries: list[tuple[Clock, PresenceStatus, str]],
) -> None:
    from annextui.backend.logs import PresenceLine

    lines = [PresenceLine(c, s, i) for c, s, i in entries]
    assert parse_presence_log(serialize_presence_log(lines)) == lines


def _reserialized_is_stable(
    data: bytes, parse: Callable[[bytes], list[_Line]], serialize: Callable[[list[_Line]], bytes]
) -> None:
    once = serialize(parse(data))
    assert serialize(parse(once)) == once


@given(st.binary(max_size=400))
def test_garbage_never_raises(data: bytes) -> None:
    _reserialized_is_stable(data, parse_uuid_log, serialize_uuid_log)
    _reserialized_is_stable(data, parse_map_log, serialize_map_log)
    _reserialized_is_stable(data, parse_presence_log, serialize_presence_log)
    _reserialized_is_stable(data, parse_single_log, serialize_single_log)
    resolve_presence_log(parse_presence_log(data))
    resolve_map_log(parse_map_log(data))
    resolve_uuid_log(parse_uuid_log(data))
