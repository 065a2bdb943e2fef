"""Single-value logs (numcopies.log, mincopies.log): `CLOCK SP VALUE`."""

from __future__ import annotations

from collections.abc import Iterable

from annextui.backend.clock import Clock, ClockError, advance_past, parse_clock
from annextui.backend.logs.lines import decode, encode, split_lines
from annextui.values import Value


class SingleLine(Value):
    clock: Clock
    value: int


def parse_single_log(data: bytes) -> list[SingleLine]:
    out = []
    for line in split_lines(decode(data)):
        clock_text, sep, value = line.partition(" ")
        if not sep or not value.isdigit() or not value.isascii():
            continue
        try:
            out.append(SingleLine(parse_clock(clock_text), int(value)))
        except ClockError:
            continue
    return out


def serialize_single_log(lines: Iterable[SingleLine]) -> bytes:
    return encode("".join(f"{s.clock.format()} {s.value}\n" for s in lines))


def resolve_single_log(lines: Iterable[SingleLine]) -> SingleLine | None:
    """The maximum of (clock, value)."""
    best: SingleLine | None = None
    for line in lines:
        if best is None or (line.clock, line.value) > (best.clock, best.value):
            best = line
    return best


def set_single_value(lines: Iterable[SingleLine], value: int, clock: Clock) -> bytes | None:
    """The new file, or None when the value is unchanged (git-annex skips that write)."""
    current = resolve_single_log(lines)
    if current is not None and current.value == value:
        return None
    new = SingleLine(advance_past(clock, current.clock if current else None), value)
    return serialize_single_log([new])
