"""What a scan accumulates over present-set masks: totals per UUID bit, and the per-key table
(every key's location-log path and mask) that ``key_locations`` and the snapshot file hold."""

from __future__ import annotations

import array
from collections.abc import Iterator
from dataclasses import dataclass, field

from annextui.backend.sizes.masks import bits

__all__ = ["DELETED", "KeyTable", "Totals"]


@dataclass
class Totals:
    """Per-bit key counts and byte sums (bit i = masker.uuids[i])."""

    counts: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    nkeys: int = 0

    def _grow(self, n: int) -> None:
        if len(self.counts) < n:
            extra = n - len(self.counts)
            self.counts.extend([0] * extra)
            self.sizes.extend([0] * extra)

    def add_masks(self, per_mask: dict[int, list[int]], nuuids: int) -> None:
        self._grow(nuuids)
        for mask, (count, nbytes) in per_mask.items():
            for i in bits(mask):
                self.counts[i] += count
                self.sizes[i] += nbytes

    def change(self, old: int, new: int, size: int, nuuids: int) -> None:
        if old == new:
            return
        self._grow(nuuids)
        for i in bits(old & ~new):
            self.counts[i] -= 1
            self.sizes[i] -= size
        for i in bits(new & ~old):
            self.counts[i] += 1
            self.sizes[i] += size

    def copy(self) -> Totals:
        return Totals(list(self.counts), list(self.sizes), self.nkeys)


# ---------------------------------------------------------------------------------------------
# Per-key table


DELETED = 0xFFFFFFFF  # mask id of a key whose location log is gone


@dataclass
class KeyTable:
    """Every key's location-log path and present mask, compactly: one bytes buffer of
    ``PATH\\n`` records, a uint32 mask id per key and the table of distinct masks (a million
    keys take ~100 MB instead of ~300 MB as lists of objects)."""

    names: bytes | bytearray = b""
    ids: array.array[int] = field(default_factory=lambda: array.array("I"))
    masks: list[int] = field(default_factory=list)
    _mask_ids: dict[int, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids) - self.ids.count(DELETED)

    def mask_id(self, mask: int) -> int:
        mid = self._mask_ids.get(mask)
        if mid is None:
            if not self._mask_ids and self.masks:
                self._mask_ids = {m: i for i, m in enumerate(self.masks)}
                mid = self._mask_ids.get(mask)
                if mid is not None:
                    return mid
            mid = self._mask_ids[mask] = len(self.masks)
            self.masks.append(mask)
        return mid

    def items(self) -> Iterator[tuple[bytes, int]]:
        names = self.names
        masks = self.masks
        find = names.find
        start = 0
        for mid in self.ids:
            end = find(b"\n", start)
            if mid != DELETED:
                yield bytes(names[start:end]), masks[mid]
            start = end + 1

    def apply(self, delta: dict[bytes, int | None]) -> KeyTable:
        """A copy with `delta` applied (path -> new mask, None: the log is gone)."""
        out = KeyTable(self.names, array.array("I", self.ids), list(self.masks))
        todo = dict(delta)
        if todo:
            names = self.names
            find = names.find
            start = 0
            ids = out.ids
            for i in range(len(ids)):
                end = find(b"\n", start)
                path = bytes(names[start:end])
                if path in todo:
                    m = todo.pop(path)
                    ids[i] = DELETED if m is None else out.mask_id(m)
                    if not todo:
                        break
                start = end + 1
        added = [(p, m) for p, m in sorted(todo.items()) if m is not None]
        if added:
            out.names = bytes(self.names) + b"".join(p + b"\n" for p, _m in added)
            for _p, m in added:
                out.ids.append(out.mask_id(m))
        return out

    def compacted(self) -> KeyTable:
        if DELETED not in self.ids:
            return self
        out = KeyTable()
        buf = bytearray()
        for path, mask in self.items():
            buf += path
            buf += b"\n"
            out.ids.append(out.mask_id(mask))
        out.names = bytes(buf)
        return out
