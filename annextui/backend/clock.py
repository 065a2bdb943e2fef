"""git-annex vector clocks: POSIX times written as `1795546749s` or `1795546937.000000000001s`.

Clocks are compared exactly, as (seconds, picoseconds) integers: a 12-digit fraction does not
survive a float.
"""

from __future__ import annotations

import os
import re
import time
from functools import total_ordering

from annextui.values import Value

PICO = 10**12
_CLOCK_RE = re.compile(r"^(-?)([0-9]+)(?:\.([0-9]+))?s?$")


class ClockError(ValueError):
    """Text that is not a git-annex timestamp."""


@total_ordering
class Clock(Value):
    """A point in time with picosecond resolution, as git-annex's POSIXTime is shown."""

    picos: int  # total picoseconds since the epoch

    @classmethod
    def from_seconds(cls, seconds: int) -> Clock:
        return cls(seconds * PICO)

    @property
    def seconds(self) -> int:
        return self.picos // PICO

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Clock):
            return NotImplemented
        return self.picos < other.picos

    def plus_seconds(self, seconds: int) -> Clock:
        return Clock(self.picos + seconds * PICO)

    def format(self) -> str:
        sign = "-" if self.picos < 0 else ""
        whole, frac = divmod(abs(self.picos), PICO)
        if frac == 0:
            return f"{sign}{whole}s"
        digits = f"{frac:012d}".rstrip("0")
        return f"{sign}{whole}.{digits}s"

    def __str__(self) -> str:
        return self.format()


def parse_clock(text: str) -> Clock:
    m = _CLOCK_RE.match(text)
    if not m:
        raise ClockError(f"not a timestamp: {text!r}")
    sign, whole, frac = m.groups()
    frac = (frac or "")[:12].ljust(12, "0")
    picos = int(whole) * PICO + int(frac)
    return Clock(-picos if sign else picos)


def current_clock() -> Clock:
    """Now, truncated to whole seconds, or GIT_ANNEX_VECTOR_CLOCK when it is set."""
    override = os.environ.get("GIT_ANNEX_VECTOR_CLOCK")
    if override:
        try:
            return parse_clock(override)
        except ClockError:
            pass
    return Clock.from_seconds(int(time.time()))


def advance_past(candidate: Clock, previous: Clock | None) -> Clock:
    """git-annex never writes a clock that is not newer than the entry it replaces."""
    if previous is not None and previous >= candidate:
        return previous.plus_seconds(1)
    return candidate
