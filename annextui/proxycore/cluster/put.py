"""A cluster's answer to PUT: the client's body read once and streamed to every participant."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from annextui.backend.keys import Key
from annextui.proxycore.cluster.node import Node
from annextui.proxycore.peer import (
    Incoming,
    Outcome,
    PeerFatal,
    RequestRefused,
    Unreachable,
)
from annextui.proxycore.records import GatewayRecords, Progress, outcome_uuids
from annextui.proxycore.transfers import Direction

_T = TypeVar("_T")
_R = TypeVar("_R")


class PutCluster(Protocol):
    """What a PUT needs of its cluster (`ClusterPeer`): its workers, the gateway's records,
    live sizes and warnings."""

    gateway_uuid: str
    records: GatewayRecords
    warn: Callable[[str], None]

    def fan_out(self, items: Sequence[_T], fn: Callable[[_T], _R]) -> list[_R]: ...

    def note_stored(self, key: Key, uuids: Sequence[str]) -> None: ...


QUEUE_CHUNKS = 8  # per-participant buffer while streaming: bounded memory, whatever the size


class Participant:
    """One receiver of an upload: a node, or the gateway's own copy (`node` None)."""

    __slots__ = ("failed", "incoming", "name", "node", "progress", "uuid", "writer")

    def __init__(self, uuid: str, name: str, incoming: Incoming, node: Node | None = None) -> None:
        self.uuid = uuid
        self.name = name
        self.incoming = incoming
        self.failed: str | None = None
        self.progress: Progress | None = None
        self.writer: _Writer | None = None
        self.node = node

    def fail(self, exc: BaseException) -> None:
        """This participant is out of the upload; a node whose repository is gone is down."""
        self.failed = self.failed or str(exc) or type(exc).__name__
        if isinstance(exc, Unreachable) and self.node is not None:
            self.node.mark_down(exc)


_STOP = object()


class _Writer(threading.Thread):
    """Feeds one participant its part of the body from a bounded queue."""

    def __init__(self, part: Participant, length: int, skip: int) -> None:
        super().__init__(name=f"put-{part.name}", daemon=True)
        self.part = part
        self.length = length
        self.skip = skip
        self.q: queue.Queue[object] = queue.Queue(maxsize=QUEUE_CHUNKS)

    def run(self) -> None:
        part = self.part
        try:
            part.incoming.begin(self.length)
        except Exception as exc:
            part.fail(exc)
        while True:
            item = self.q.get()
            if item is _STOP:
                return
            if part.failed is not None:
                continue  # keep draining: the reader must never block on a dead node
            assert isinstance(item, bytes)
            try:
                _feed(part, item, self)
            except Exception as exc:
                part.fail(exc)


def _feed(part: Participant, chunk: bytes | memoryview, state: _Writer) -> None:
    if state.skip:
        if state.skip >= len(chunk):
            state.skip -= len(chunk)
            return
        chunk = chunk[state.skip :]
        state.skip = 0
    part.incoming.write(chunk)
    if part.progress is not None:
        part.progress.add(len(chunk))


class ClusterIncoming:
    """The client's body, read once, streamed to every participant (see `peer.Incoming`)."""

    def __init__(
        self,
        cluster: PutCluster,
        key: Key,
        af: str | None,
        participants: list[Participant],
        holders: list[str],
    ) -> None:
        self.cluster = cluster
        self.key = key
        self.af = af
        self.parts = participants
        self.holders = holders
        self._offset = min(pt.incoming.offset for pt in participants)
        self._inline: _Writer | None = None
        self._spent = False

    @property
    def offset(self) -> int:
        return self._offset

    def begin(self, length: int) -> None:
        total = self._offset + length
        records = self.cluster.records
        for pt in self.parts:
            own = pt.incoming.offset
            node_len = max(0, total - own)
            skip = max(0, own - self._offset)
            if pt.uuid == self.cluster.gateway_uuid:
                pt.progress = Progress(None, own)  # our own copy records its own download
            else:
                pt.progress = records.progress(
                    Direction.UPLOAD, pt.uuid, self.key, self.af, pos=own, length=node_len
                )
            pt.writer = _Writer(pt, node_len, skip)
        if len(self.parts) == 1:
            # One participant: write in this thread, no hand-off.
            w = self.parts[0].writer
            assert w is not None
            self._inline = w
            try:
                self.parts[0].incoming.begin(w.length)
            except Exception as exc:
                self.parts[0].fail(exc)
            return
        for pt in self.parts:
            assert pt.writer is not None
            pt.writer.start()

    def write(self, data: bytes | memoryview) -> None:
        w = self._inline
        if w is not None:
            if w.part.failed is None:
                try:
                    _feed(w.part, data, w)  # written before this returns: no copy needed
                except Exception as exc:
                    w.part.fail(exc)
            return
        # the writers hold it after this returns: a copy the caller's buffer cannot change
        chunk = bytes(data) if isinstance(data, memoryview) else data
        for pt in self.parts:
            assert pt.writer is not None
            if pt.failed is None:
                pt.writer.q.put(chunk)

    def _drain(self) -> None:
        if self._inline is not None:
            return
        for pt in self.parts:
            if pt.writer is not None and pt.writer.is_alive():
                pt.writer.q.put(_STOP)
        for pt in self.parts:
            if pt.writer is not None and pt.writer.is_alive():
                pt.writer.join()

    def _settle(self, fn: Callable[[Participant], Outcome]) -> Outcome:
        self._spent = True
        self._drain()

        def one(pt: Participant) -> Outcome:
            if pt.failed is not None:
                self.cluster.warn(f"{pt.name}: {pt.failed}")
                with contextlib.suppress(Exception):
                    pt.incoming.abort()
                return Outcome(False)
            try:
                return fn(pt)
            except (RequestRefused, PeerFatal, OSError) as exc:
                pt.fail(exc)
                self.cluster.warn(f"{pt.name}: {exc}")
                with contextlib.suppress(Exception):
                    pt.incoming.abort()
                return Outcome(False)

        outcomes = self.cluster.fan_out(self.parts, one)
        stored: list[str] = []
        for pt, o in zip(self.parts, outcomes, strict=True):
            if pt.progress is not None:
                pt.progress.finish(o.ok)
            if o.ok:
                stored += outcome_uuids(pt.uuid, o)
        self.cluster.records.record(self.key, stored, present=True)
        self.cluster.note_stored(self.key, stored)
        if not stored:
            return Outcome(False)
        everyone = [u for u in dict.fromkeys(stored + self.holders) if u]
        return Outcome(True, tuple(everyone))

    def finish(self, valid: bool | None) -> Outcome:
        return self._settle(lambda pt: pt.incoming.finish(valid))

    def data_present(self) -> Outcome:
        return self._settle(lambda pt: pt.incoming.data_present())

    def interrupt(self) -> None:
        for pt in self.parts:
            with contextlib.suppress(Exception):
                pt.incoming.interrupt()

    def abort(self) -> None:
        if self._spent:
            return
        self._spent = True
        for pt in self.parts:
            pt.failed = pt.failed or "aborted"
        # Interrupt first: a writer blocked on a node that stopped reading then fails at once
        # instead of holding the queue.
        for pt in self.parts:
            with contextlib.suppress(Exception):
                pt.incoming.interrupt()
        self._drain()
        for pt in self.parts:
            with contextlib.suppress(Exception):
                pt.incoming.abort()
            if pt.progress is not None:
                pt.progress.finish(False)
