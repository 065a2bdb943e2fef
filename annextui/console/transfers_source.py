"""Live transfers from git-annex's transfer information files (no textual, no rich).

Reads `annex/transfer/` of this repository and of its local-path remotes through
`annextui.proxycore.transfers.list_transfers`, so transfers run by a real git-annex show up as
well as ours. Rates come from successive samples (smoothed), else from the start time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from annextui.proxycore.transfers import LiveTransfer, list_transfers


@dataclass(frozen=True, slots=True)
class TransferView:
    row_key: str
    where: str  # UUID of the repository whose transfer directory recorded it
    direction: str  # "upload" or "download" (as seen from `where`)
    peer: str  # UUID of the other repository
    key: str
    file: str | None
    done: int | None
    total: int | None
    started: float | None  # POSIX seconds
    rate: float | None  # bytes per second
    pid: int | None

    @property
    def fraction(self) -> float | None:
        if self.done is None or not self.total:
            return None
        return min(1.0, self.done / self.total)

    @property
    def eta(self) -> float | None:
        if self.done is None or self.total is None or not self.rate:
            return None
        return max(0.0, (self.total - self.done) / self.rate)


@dataclass(frozen=True, slots=True)
class TransferSample:
    transfers: tuple[TransferView, ...]
    at: float
    seconds: float  # how long reading took


def _started(t: LiveTransfer) -> float | None:
    started = t.info.started
    if started is None:
        return None
    return started.picos / 1e12


class TransferSampler(Protocol):
    """What the Transfers view polls: a sample of live transfers, and where they are read."""

    @property
    def annexdirs(self) -> Mapping[str, Path]: ...

    def sample(self, now: float | None = None) -> TransferSample: ...


class TransferTracker:
    """Samples live transfers; keeps the previous sample of each to compute rates."""

    SMOOTHING = 0.5

    def __init__(self, annexdirs: Mapping[str, Path]) -> None:
        self.annexdirs = dict(annexdirs)
        self._prev: dict[str, tuple[float, int, float | None]] = {}
        self._lock = threading.Lock()

    def sample(self, now: float | None = None) -> TransferSample:
        start = time.monotonic()
        with self._lock:
            now = time.time() if now is None else now
            out = []
            seen = set()
            for where, annexdir in self.annexdirs.items():
                for t in list_transfers(annexdir):
                    tr = t.transfer
                    row_key = f"{where}:{tr.direction.value}:{tr.uuid}:{tr.key}"
                    seen.add(row_key)
                    started = _started(t)
                    rate = self._rate(row_key, now, t.bytes_done, started)
                    out.append(
                        TransferView(
                            row_key=row_key,
                            where=where,
                            direction=tr.direction.value,
                            peer=tr.uuid,
                            key=tr.key,
                            file=t.info.associated_file,
                            done=t.bytes_done,
                            total=t.total,
                            started=started,
                            rate=rate,
                            pid=t.pid,
                        )
                    )
            for gone in set(self._prev) - seen:
                del self._prev[gone]
        out.sort(key=lambda v: (v.started or 0.0, v.row_key))
        return TransferSample(tuple(out), now, time.monotonic() - start)

    def _rate(
        self, row_key: str, now: float, done: int | None, started: float | None
    ) -> float | None:
        if done is None:
            return None
        prev = self._prev.get(row_key)
        rate: float | None = None
        if prev is not None:
            t0, d0, r0 = prev
            if now > t0 and done >= d0:
                inst = (done - d0) / (now - t0)
                rate = inst if r0 is None else self.SMOOTHING * inst + (1 - self.SMOOTHING) * r0
            else:
                rate = r0
        elif started is not None and now > started:
            rate = done / (now - started)
        self._prev[row_key] = (now, done, rate)
        return rate


def totals(views: tuple[TransferView, ...]) -> dict[str, tuple[int, int, int, float]]:
    """direction -> (count, bytes done, bytes total, rate)."""
    out: dict[str, tuple[int, int, int, float]] = {}
    for v in views:
        n, d, t, r = out.get(v.direction, (0, 0, 0, 0.0))
        out[v.direction] = (n + 1, d + (v.done or 0), t + (v.total or 0), r + (v.rate or 0.0))
    return out
