"""Presence logs (location logs, `.log.web`, `.log.ek`): `CLOCK SP STATUS SP INFO`."""

from __future__ import annotations

import enum
from collections.abc import Iterable

from annextui.backend.clock import Clock, ClockError, advance_past, parse_clock
from annextui.backend.logs.lines import decode, encode, split_lines
from annextui.values import Value


class PresenceStatus(enum.Enum):
    PRESENT = "1"
    MISSING = "0"
    DEAD = "X"


class PresenceLine(Value):
    clock: Clock
    status: PresenceStatus
    info: str


_STATUS = {s.value: s for s in PresenceStatus}


def _parse_line(line: str) -> PresenceLine | None:
    parts = line.split(" ", 2)
    if len(parts) != 3:
        return None
    clock_text, status_text, info = parts
    status = _STATUS.get(status_text)
    if status is None:
        return None
    try:
        return PresenceLine(parse_clock(clock_text), status, info)
    except ClockError:
        return None


def parse_presence_log(data: bytes) -> list[PresenceLine]:
    return [p for p in map(_parse_line, split_lines(decode(data))) if p is not None]


def serialize_presence_log(lines: Iterable[PresenceLine]) -> bytes:
    return encode("".join(f"{p.clock.format()} {p.status.value} {p.info}\n" for p in lines))


def resolve_presence_log(lines: Iterable[PresenceLine]) -> dict[str, PresenceLine]:
    """Greatest clock per INFO; on equal clocks the earlier line wins."""
    winners: dict[str, PresenceLine] = {}
    for line in lines:
        old = winners.get(line.info)
        if old is None or line.clock > old.clock:
            winners[line.info] = line
    return winners


def present_infos(data: bytes) -> set[str]:
    """INFOs (UUIDs, for location logs) whose winning line says present."""
    return {
        info
        for info, line in resolve_presence_log(parse_presence_log(data)).items()
        if line.status is PresenceStatus.PRESENT
    }


def change_presence(data: bytes, info: str, status: PresenceStatus, clock: Clock) -> bytes | None:
    """The new file after logging `status` for `info`, or None when nothing changes.

    As `Logs/Presence.hs`: a new INFO is appended; otherwise the log is compacted to one line per
    INFO and rewritten sorted.
    """
    lines = parse_presence_log(data)
    winners = resolve_presence_log(lines)
    old = winners.get(info)
    if old is not None and old.status is status:
        return None
    new = PresenceLine(advance_past(clock, old.clock if old else None), status, info)
    if old is None:
        # A new INFO is appended to the file as it stands (Annex.Branch.changeOrAppend).
        prefix = data if not data or data.endswith(b"\n") else data + b"\n"
        return prefix + serialize_presence_log([new])
    winners[info] = new
    return serialize_presence_log(winners[i] for i in sorted(winners))
