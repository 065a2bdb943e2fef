"""Content locks held for HTTP clients between `lockcontent` and the end of `keeplocked`.

A lock taken by `lockcontent` is held by its own Peer session (the Peer is closed when the lock
is released). `keeplocked` marks it kept: it lives exactly as long as that request's body,
so a client that ends the stream, closes the connection or dies frees it at once. A lock
nobody keeps expires after 600 s, as upstream's. At most `capacity` locks are held
(`--lockedfiles`); beyond that `lockcontent` answers `{"locked":false}`.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid as uuidlib
from dataclasses import dataclass

from annextui.proxycore.peer import ContentLock, Peer

UNKEPT_TIMEOUT = 600.0


@dataclass
class _Held:
    lock: ContentLock
    peer: Peer
    key: str
    expires: float | None  # None while a keeplocked request keeps it


class LockRegistry:
    def __init__(self, capacity: int = 100, timeout: float = UNKEPT_TIMEOUT) -> None:
        self.capacity = capacity
        self.timeout = timeout
        self._held: dict[str, _Held] = {}
        self._mutex = threading.Lock()

    def reserve(self) -> bool:
        """Whether another lock may be taken now (checked before the Peer is asked)."""
        self.expire()
        with self._mutex:
            return len(self._held) < self.capacity

    def add(self, lock: ContentLock, peer: Peer, key: str) -> str | None:
        """Register a held lock; None (and the lock released) when over capacity."""
        lockid = str(uuidlib.uuid4())
        with self._mutex:
            if len(self._held) < self.capacity:
                self._held[lockid] = _Held(lock, peer, key, time.monotonic() + self.timeout)
                return lockid
        _free(lock, peer)
        return None

    def keep(self, lockid: str) -> bool:
        """A keeplocked request started: no timeout while it lasts. False for an unknown id."""
        with self._mutex:
            held = self._held.get(lockid)
            if held is None:
                return False
            held.expires = None
            return True

    def release(self, lockid: str) -> None:
        with self._mutex:
            held = self._held.pop(lockid, None)
        if held is not None:
            _free(held.lock, held.peer)

    def expire(self) -> None:
        now = time.monotonic()
        with self._mutex:
            stale = [k for k, h in self._held.items() if h.expires is not None and h.expires < now]
            gone = [self._held.pop(k) for k in stale]
        for held in gone:
            _free(held.lock, held.peer)

    def release_all(self) -> None:
        with self._mutex:
            gone = list(self._held.values())
            self._held.clear()
        for held in gone:
            _free(held.lock, held.peer)

    def snapshot(self) -> list[tuple[str, str, bool]]:
        """(lock id, key, kept by a keeplocked request) of every held lock, for the status."""
        with self._mutex:
            return [(k, h.key, h.expires is None) for k, h in self._held.items()]

    def __len__(self) -> int:
        with self._mutex:
            return len(self._held)


def _free(lock: ContentLock, peer: Peer) -> None:
    with contextlib.suppress(Exception):
        lock.release()
    with contextlib.suppress(Exception):
        peer.close()
