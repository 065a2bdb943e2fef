"""The newer map-log format: `CLOCK SP FIELD SP VALUE`.

Used by proxy.log, cluster.log, maxsize.log (field = UUID), group-preferred-content.log
(field = group name) and config.log (field = setting name).
"""

from __future__ import annotations

from collections.abc import Iterable

from annextui.backend.clock import Clock, ClockError, advance_past, parse_clock
from annextui.backend.logs.lines import decode, encode, split_lines
from annextui.values import Value


class MapLine(Value):
    clock: Clock
    field: str
    value: str


def _parse_line(line: str) -> MapLine | None:
    clock_text, sep, rest = line.partition(" ")
    if not sep:
        return None
    field, sep2, value = rest.partition(" ")
    if not sep2 or not field:
        return None
    try:
        return MapLine(parse_clock(clock_text), field, value)
    except ClockError:
        return None


def parse_map_log(data: bytes) -> list[MapLine]:
    """Lines that fail to parse are skipped, as git-annex skips them."""
    return [m for m in map(_parse_line, split_lines(decode(data))) if m is not None]


def serialize_map_log(lines: Iterable[MapLine]) -> bytes:
    return encode("".join(f"{m.clock.format()} {m.field} {m.value}\n" for m in lines))


def resolve_map_log(lines: Iterable[MapLine]) -> dict[str, MapLine]:
    """Greatest clock per field; on equal clocks the later line wins."""
    winners: dict[str, MapLine] = {}
    for line in lines:
        old = winners.get(line.field)
        if old is None or line.clock >= old.clock:
            winners[line.field] = line
    return winners


def set_map_value(lines: Iterable[MapLine], field: str, value: str, clock: Clock) -> bytes:
    """The whole new file after setting `field`, rebuilt from the resolved map, sorted by field."""
    winners = resolve_map_log(lines)
    old = winners.get(field)
    winners[field] = MapLine(advance_past(clock, old.clock if old else None), field, value)
    return serialize_map_log(winners[f] for f in sorted(winners))
