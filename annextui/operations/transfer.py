"""One key moved from peer A to peer B safely, as git-annex's ``move`` does it.

1. copy: B's ``PUT`` says where to resume (or that B has it); A's ``GET`` from that offset is
   streamed into B in large blocks (never the whole file in memory) and B verifies it;
2. verify: B's ``CHECKPRESENT`` must say yes before anything else happens; the gateway's
   location log then records B present;
3. drop: only with enough other copies *locked* (``LOCKCONTENT`` on each, held until A's
   removal is done, as git-annex's drop locks remote copies): at least max(numcopies,
   mincopies) of them, so at no moment is the key below either. Then A's ``REMOVE`` and the
   gateway's location log records A missing.

Both location-log writes go through ``GatewayRecords`` (proxycore/records.py), the code the
gateway uses for relayed transfers: git-annex's journal and lock, byte-compatible logs. The
nodes record their own side (a ``LocalPeer`` writes its repository's log, as git-annex-shell
does).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from annextui.backend.keys import Key
from annextui.proxycore.peer import AlreadyHave, ContentLock, Outcome, Peer, RequestRefused

if TYPE_CHECKING:
    from annextui.proxycore.records import GatewayRecords

__all__ = ["BLOCK", "MoveFailed", "Throttle", "copy_key", "drop_key"]

BLOCK = 1 << 20  # bytes per read/write while streaming a key


class MoveFailed(Exception):
    """This key stays where it is; the reason is recorded in the job and the others go on."""


class Throttle:
    """``--bwlimit``: at most `rate` bytes per second on average over the transfers so far
    (git-annex's BwRate per second). `rate` None: unlimited."""

    def __init__(self, rate: int | None, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = rate if rate and rate > 0 else None
        self._sleep = sleep
        self._start = time.monotonic()
        self._bytes = 0
        self._lock = threading.Lock()

    def consume(self, n: int) -> None:
        if self.rate is None:
            return
        with self._lock:
            self._bytes += n
            ahead = self._bytes / self.rate - (time.monotonic() - self._start)
        if ahead > 0:
            self._sleep(ahead)


@dataclass(frozen=True, slots=True)
class Copied:
    made: bool  # False when the destination had the key already
    bytes: int  # bytes streamed (less than the size when a partial copy was resumed)


def copy_key(
    key: Key,
    src: Peer,
    dst: Peer,
    *,
    records: GatewayRecords,
    throttle: Throttle | None = None,
    progress: Callable[[int], None] | None = None,
) -> Copied:
    """Make sure `dst` holds `key` (a verified copy from `src`), and log it present."""
    # PUT first, not CHECKPRESENT: a node that has the key answers ALREADY-HAVE all the same,
    # and a node of ours then counts its own copy if its log does not (a job killed between
    # the node's moving the object in and its "present" line).
    copied = _stream(key, src, dst, throttle, progress)
    if not dst.check_present(key):
        raise MoveFailed(f"{key}: the copy is not present on {dst.uuid} after the transfer")
    records.record(key, [dst.uuid], present=True)
    return copied


def _stream(
    key: Key,
    src: Peer,
    dst: Peer,
    throttle: Throttle | None,
    progress: Callable[[int], None] | None,
) -> Copied:
    try:
        incoming = dst.put(key, None)
    except RequestRefused:
        if dst.check_present(key):  # refused to take it in, but has it (securehashesonly)
            return Copied(False, 0)
        raise
    if isinstance(incoming, AlreadyHave):
        return Copied(False, 0)
    outgoing = src.get(key, incoming.offset, None)
    if outgoing is None:
        incoming.abort()
        raise MoveFailed(f"{key}: {src.uuid} does not have the content")
    sent = 0
    try:
        incoming.begin(outgoing.length)
        buf = memoryview(bytearray(min(BLOCK, max(outgoing.length, 1))))
        while sent < outgoing.length:
            n = outgoing.readinto(buf[: min(len(buf), outgoing.length - sent)])
            if n <= 0:
                break
            incoming.write(buf[:n])
            sent += n
            if throttle is not None:
                throttle.consume(n)
            if progress is not None:
                progress(n)
        outgoing.body_sent()
        valid = outgoing.valid() if sent == outgoing.length else False
        result = incoming.finish(valid)
    except BaseException:
        incoming.abort()
        outgoing.close(None)
        raise
    outgoing.close(Outcome(result.ok))
    if not result.ok:
        raise MoveFailed(f"{key}: {dst.uuid} did not accept the content (verification failed)")
    return Copied(True, sent)


def drop_key(
    key: Key,
    src: Peer,
    holders: Sequence[Peer],
    needed: int,
    *,
    records: GatewayRecords,
) -> None:
    """Remove `key` from `src` while `needed` copies on `holders` (other peers) are locked."""
    locks: list[ContentLock] = []
    try:
        for peer in holders:
            if len(locks) >= needed:
                break
            if peer.uuid == src.uuid:
                continue
            lock = peer.lock_content(key)
            if lock is not None:
                locks.append(lock)
        if len(locks) < needed:
            raise MoveFailed(
                f"{key}: only {len(locks)} other cop{'y' if len(locks) == 1 else 'ies'} could be "
                f"locked, {needed} needed (numcopies/mincopies); not dropped from {src.uuid}"
            )
        outcome = src.remove(key)
    finally:
        for lock in locks:
            lock.release()
    if not outcome.ok:
        raise MoveFailed(f"{key}: {src.uuid} refused to drop it")
    records.record(key, [src.uuid], present=False)
