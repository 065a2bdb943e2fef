"""The old UUID-based format: `UUID SP VALUE SP timestamp=CLOCK`.

Used by uuid.log, remote.log, trust.log, group.log, preferred-content.log, required-content.log
and a few others.
"""

from __future__ import annotations

from collections.abc import Iterable

from annextui.backend.clock import Clock, ClockError, parse_clock
from annextui.backend.logs.lines import decode, encode, split_lines
from annextui.values import Value

_TS = "timestamp="


class UUIDLine(Value):
    uuid: str
    value: str
    clock: Clock | None  # None: a legacy line with no timestamp, older than any clock


def _parse_line(line: str) -> UUIDLine | None:
    uuid, sep, rest = line.partition(" ")
    if not uuid:
        return None  # git-annex cannot parse a line without a UUID either
    if not sep:
        return UUIDLine(uuid, "", None)
    value, sp, last = rest.rpartition(" ")
    candidate = last if sp else rest
    if candidate.startswith(_TS):
        try:
            clock = parse_clock(candidate[len(_TS) :])
        except ClockError:
            return UUIDLine(uuid, rest, None)
        return UUIDLine(uuid, value if sp else "", clock)
    return UUIDLine(uuid, rest, None)


def parse_uuid_log(data: bytes) -> list[UUIDLine]:
    return [u for u in map(_parse_line, split_lines(decode(data))) if u is not None]


def _format_line(line: UUIDLine) -> str:
    if line.clock is None:
        return f"{line.uuid} {line.value}" if line.value else line.uuid
    return f"{line.uuid} {line.value} {_TS}{line.clock.format()}"


def serialize_uuid_log(lines: Iterable[UUIDLine]) -> bytes:
    return encode("".join(_format_line(line) + "\n" for line in lines))


def _newer(new: UUIDLine, old: UUIDLine) -> bool:
    # Greatest clock wins; on equal clocks the later line wins, so ">=".
    if new.clock is None:
        return old.clock is None
    return old.clock is None or new.clock >= old.clock


def resolve_uuid_log(lines: Iterable[UUIDLine]) -> dict[str, UUIDLine]:
    winners: dict[str, UUIDLine] = {}
    for line in lines:
        old = winners.get(line.uuid)
        if old is None or _newer(line, old):
            winners[line.uuid] = line
    return winners


def set_uuid_value(lines: Iterable[UUIDLine], uuid: str, value: str, clock: Clock) -> bytes:
    """The whole new file after setting `uuid` to `value`, as git-annex rewrites it."""
    from annextui.backend.clock import advance_past

    winners = resolve_uuid_log(lines)
    old = winners.get(uuid)
    winners[uuid] = UUIDLine(uuid, value, advance_past(clock, old.clock if old else None))
    return serialize_uuid_log(winners[u] for u in sorted(winners))
