"""Figures over time, for the console's pictures: each node's bytes since the console opened
(the Nodes trend) and bytes per second moved per node and for the whole gateway (the Transfers
sparklines). Pure and bounded: the newest `limit` samples are kept."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

#: Samples kept per series: minutes of transfers at a few samples a second, or many refreshes.
LIMIT = 600


class Series:
    """Named series sampled together; a name missing from a sample reads as 0 there."""

    def __init__(self, limit: int = LIMIT) -> None:
        self._samples: deque[tuple[float, dict[str, float]]] = deque(maxlen=limit)

    def add(self, at: float, values: Mapping[str, float]) -> None:
        """A sample taken at `at`; a second one at the same instant replaces the first."""
        if self._samples and self._samples[-1][0] == at:
            self._samples.pop()
        self._samples.append((at, dict(values)))

    def __len__(self) -> int:
        return len(self._samples)

    def values(self, name: str, since: float | None = None) -> list[float]:
        return [v.get(name, 0.0) for at, v in self._samples if since is None or at >= since]

    def totals(self, since: float | None = None) -> list[float]:
        return [sum(v.values()) for at, v in self._samples if since is None or at >= since]


BLOCKS = "▁▂▃▄▅▆▇█"


def rates_by(views: Sequence[tuple[str, float | None]]) -> dict[str, float]:
    """Bytes per second per place from (place, rate) pairs; an unknown rate counts as 0."""
    out: dict[str, float] = {}
    for where, rate in views:
        out[where] = out.get(where, 0.0) + (rate or 0.0)
    return out


def spark(values: Sequence[float], width: int) -> str:
    """`▁▂▅█`: the last `width` values as block characters scaled between their min and max
    (a flat series is a flat line); empty when there is nothing yet."""
    tail = list(values)[-width:]
    if not tail:
        return ""
    low, high = min(tail), max(tail)
    if high == low:
        return BLOCKS[0] * len(tail)
    top = len(BLOCKS) - 1
    return "".join(BLOCKS[round((v - low) / (high - low) * top)] for v in tail)
