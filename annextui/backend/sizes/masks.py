"""Present-set masks: UUIDs as bits, and a location log's content as the mask of the UUIDs it
says are present.

Per record the hot loop does no clock parsing: a line's ``STATUS UUID`` tail is looked up in a
small dict giving the UUID's bit, and a mask of present UUIDs is OR-ed together. Only a record
that names some UUID twice (clocks decide), or has an unusual clock or CR bytes, goes through
full resolution (`Masker.slow`, then `Masker.exact`, git-annex's presence-log semantics).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from annextui.backend.logs.presence import present_infos

__all__ = ["CLOCK_SUFFIX", "Masker", "bits", "mask_of_log"]

CLOCK_SUFFIX = 115  # ord("s"): a clock is digits followed by "s"


class Masker:
    """UUIDs as bits, and location-log contents as masks of present UUIDs."""

    def __init__(self, uuids: Iterable[str] = ()) -> None:
        self.uuids: list[str] = []
        self.bits: dict[bytes, int] = {}
        # b"STATUS INFO" -> +bit (present), -bit (not present), 0 (a line git-annex skips)
        self.tails: dict[bytes, int] = {}
        for u in uuids:
            self.bit(u.encode("utf-8", "surrogateescape"))

    def bit(self, info: bytes) -> int:
        b = self.bits.get(info)
        if b is None:
            b = self.bits[info] = 1 << len(self.uuids)
            self.uuids.append(info.decode("utf-8", "surrogateescape"))
        return b

    def tail(self, rest: bytes) -> int | None:
        """+bit / -bit / 0 for ``STATUS INFO``; None when it holds a CR (git-annex splits lines
        at CR too): the caller then resolves the whole log with `exact`. None is never cached,
        so the hot loops need no per-record CR test."""
        v = self.tails.get(rest)
        if v is None:
            if b"\r" in rest:
                return None
            status = rest[:1]
            if rest[1:2] != b" " or status not in (b"0", b"1", b"X") or len(rest) < 3:
                v = 0
            else:
                b = self.bit(rest[2:])
                v = b if status == b"1" else -b
            self.tails[rest] = v
        return v

    def mask(self, content: bytes) -> int:
        """Mask of the UUIDs `content` (a whole location log) says are present."""
        if not content:
            return 0
        tget = self.tails.get
        mask = seen = 0
        for line in content.split(b"\n"):
            if not line:
                continue
            sp = line.find(b" ")
            if sp < 2 or line[sp - 1] != CLOCK_SUFFIX or not line[: sp - 1].isdigit():
                return self.slow(content)
            rest = line[sp + 1 :]
            v = tget(rest)
            if v is None:
                v = self.tail(rest)
                if v is None:
                    return self.exact(content)
            b = v if v >= 0 else -v
            if seen & b:
                return self.slow(content)
            seen |= b
            if v > 0:
                mask |= v
        return mask

    def slow(self, content: bytes) -> int:
        """Full resolution with integer clocks; unusual clocks go to `exact`."""
        tget = self.tails.get
        clocks: dict[int, int] = {}  # bit -> winning clock
        winners: dict[int, int] = {}  # bit -> winning signed bit
        for line in content.split(b"\n"):
            if not line:
                continue
            sp = line.find(b" ")
            if sp < 2 or line[sp - 1] != CLOCK_SUFFIX:
                return self.exact(content)
            clock_text = line[: sp - 1]
            if not clock_text.isdigit():
                return self.exact(content)
            rest = line[sp + 1 :]
            v = tget(rest)
            if v is None:
                v = self.tail(rest)
                if v is None:
                    return self.exact(content)
            if not v:
                continue
            clock = int(clock_text)
            b = v if v > 0 else -v
            old = clocks.get(b)
            if old is None or clock > old:  # equal clocks: the earlier line stays
                clocks[b] = clock
                winners[b] = v
        mask = 0
        for v in winners.values():
            if v > 0:
                mask |= v
        return mask

    def exact(self, content: bytes) -> int:
        """The project's reference presence-log semantics (any clock form, CR line breaks)."""
        mask = 0
        for info in present_infos(content):
            if info:
                mask |= self.bit(info.encode("utf-8", "surrogateescape"))
        return mask

    def uuids_of(self, mask: int) -> list[str]:
        return [self.uuids[i] for i in bits(mask)]


def mask_of_log(content: bytes, uuids: list[str]) -> set[str]:
    """UUIDs a location log says are present (the fast resolver; for tests and tools)."""
    m = Masker(uuids)
    return set(m.uuids_of(m.mask(content)))


def bits(mask: int) -> Iterator[int]:
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low
