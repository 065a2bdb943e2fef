"""A cluster's answer to GET: one holder sends, the next takes over where it broke off."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Protocol

from annextui.backend.keys import Key
from annextui.proxycore.cluster.node import Node
from annextui.proxycore.peer import (
    Outcome,
    Outgoing,
    OutgoingSpan,
    Peer,
    PeerFatal,
)
from annextui.proxycore.records import GatewayRecords, Progress
from annextui.proxycore.transfers import Direction
from annextui.values import Value


class Empty:
    """Empty content (DATA 0, VALID) already acknowledged by the node."""

    def __init__(self, offset: int) -> None:
        self._offset = offset

    @property
    def length(self) -> int:
        return 0

    @property
    def offset(self) -> int:
        return self._offset

    def fileno(self) -> int | None:
        return None

    def readinto(self, buf: memoryview) -> int:
        return 0

    def advance(self, n: int) -> None:
        pass

    def valid(self) -> bool:
        return True

    def body_sent(self) -> None:
        pass

    def close(self, acknowledged: Outcome | None) -> None:
        pass


class Source(Value):
    place: Node | Peer
    out: Outgoing


class GetCluster(Protocol):
    """What a GET needs of its cluster (`ClusterPeer`): where else the content is, the
    gateway's records and warnings."""

    gateway_uuid: str
    records: GatewayRecords
    warn: Callable[[str], None]

    def open_get(
        self, places: list[Node | Peer], key: Key, offset: int, af: str | None
    ) -> tuple[Source | None, list[Node | Peer], str | None]: ...


def place_uuid(cluster: GetCluster, place: Node | Peer) -> str:
    return place.uuid if isinstance(place, Node) else cluster.gateway_uuid


class ClusterOutgoing(OutgoingSpan):
    """A GET answered by one node, switching to the next holder if that node breaks mid-body.

    The length promised to the client is the first node's; a replacement is asked for
    `GET <offset reached>` and must send exactly what is left (else the session has to end,
    as the protocol has no in-band abort).
    """

    def __init__(
        self,
        cluster: GetCluster,
        source: Source,
        rest: list[Node | Peer] | Callable[[], list[Node | Peer]],
        key: Key,
        offset: int,
        af: str | None,
    ) -> None:
        super().__init__(offset, source.out.length)
        self.cluster = cluster
        self.source = source
        # The other holders, or how to find them (read from the location log only when the
        # first source fails: a GET served at once never reads it).
        self.rest: list[Node | Peer] | None = rest if isinstance(rest, list) else None
        self._find_rest = None if isinstance(rest, list) else rest
        self.key = key
        self.af = af
        self.sent = 0
        self._switched = False
        self.progress = self._record(source)

    def _record(self, source: Source) -> Progress:
        out = source.out
        if out.length == 0:
            return Progress(None, out.offset)
        uuid = place_uuid(self.cluster, source.place)
        return self.cluster.records.progress(
            Direction.DOWNLOAD, uuid, self.key, self.af, pos=out.offset, length=out.length
        )

    def fileno(self) -> int | None:
        # sendfile only from the first source: a replacement reads through readinto.
        return None if self._switched else self.source.out.fileno()

    def advance(self, n: int) -> None:
        self.source.out.advance(n)
        self.sent += n
        self.progress.add(n)

    def readinto(self, buf: memoryview) -> int:
        while True:
            try:
                n = self.source.out.readinto(buf)
            except (PeerFatal, OSError) as exc:
                self.cluster.warn(f"{exc}; continuing from another node")
                self._failover()
                continue
            if n <= 0 and self.sent < self._length:
                self._failover()  # the file shrank or the node stopped: try the next holder
                continue
            self.sent += n
            self.progress.add(n)
            return n

    def _failover(self) -> None:
        with contextlib.suppress(Exception):
            self.source.out.close(None)
        self.progress.finish(False)
        at = self._offset + self.sent
        need = self._length - self.sent
        if self.rest is None:
            assert self._find_rest is not None
            self.rest = self._find_rest()
        while self.rest:
            out, rest, _last = self.cluster.open_get(self.rest, self.key, at, self.af)
            self.rest = rest
            if out is None:
                break
            if out.out.length != need:
                with contextlib.suppress(Exception):
                    out.out.close(Outcome(False))
                continue
            self.source = out
            self._switched = True
            self.progress = self._record(out)
            return
        raise PeerFatal(
            f"no node could send the rest of {self.key} after {self.sent} of {self._length} bytes"
        )

    def valid(self) -> bool:
        while True:
            try:
                return self.source.out.valid()
            except (PeerFatal, OSError) as exc:
                if self.sent < self._length:
                    raise
                # Body complete but the node died before its validity line: we cannot vouch
                # for the bytes, the client verifies them anyway; report INVALID.
                self.cluster.warn(str(exc))
                return False

    def body_sent(self) -> None:
        self.source.out.body_sent()

    def close(self, acknowledged: Outcome | None) -> None:
        try:
            self.source.out.close(acknowledged)
        finally:
            self.progress.finish(acknowledged is not None and acknowledged.ok)
