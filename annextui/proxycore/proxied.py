"""`ProxiedPeer`: a client connected to one remote the gateway proxies (`--uuid` of a node).

Upstream (`Command/P2PStdIO.hs` performProxy, `P2P/Proxy.hs`) relays every request to the
remote and every reply back, with these rules, kept here:
* `AUTH-SUCCESS <remote uuid>` is sent at once; the remote is contacted when the client's
  `VERSION v` arrives, offering `min(v, 4)` and no BYPASS, and the client is answered with the
  version the remote negotiated (so it gets `min(client, remote, 4)`); a client that starts
  without VERSION speaks v0 and the remote is offered 0;
* replies are relayed unchanged (a remote gateway's `SUCCESS-PLUS` included);
* the gateway's location log records what the remote reported: `SUCCESS`/`SUCCESS-PLUS` of a
  PUT (and, as the remote says so, `ALREADY-HAVE[-PLUS]`) mark those UUIDs present, a REMOVE's
  `SUCCESS[-PLUS]`/`FAILURE-PLUS` mark them missing; the journal is committed at session end.

The inner peer is a `RemotePeer` (ssh node, other gateway) or, for a path remote, a `LocalPeer`
served in this process with no subprocess and no extra copy (`sendfile` straight from the
node's object file to the client). Better than upstream: a remote that cannot be reached
answers each request with `ERROR cannot connect to …` (the client reports it and goes on)
instead of ending the session, and the reason is kept so it is not retried per request.
"""

from __future__ import annotations

import contextlib

from annextui.backend.keys import Key
from annextui.proxycore import protocol as p
from annextui.proxycore.peer import (
    AlreadyHave,
    ContentLock,
    Incoming,
    Outcome,
    Outgoing,
    Peer,
    RequestRefused,
)
from annextui.proxycore.records import GatewayRecords, Progress, outcome_uuids
from annextui.proxycore.remote import NodeError
from annextui.proxycore.transfers import Direction


class ProxiedPeer(Peer):
    """One proxied remote as the client sees it.

    `via`: the gateway the route to the remote goes through (`annex-proxied-by` of a remote
    learned from proxy.log), and `gateway`: this gateway's UUID. Routes may lead round in a
    circle when proxy logs are stale (A says B proxies it, B says C, C says A), each hop a new
    shell. *Better than upstream*, which relays such a request forever, the gateways visited
    travel along as `BYPASS`, each hop adding its own UUID (as cluster gateways do): before
    the first request is relayed, the remote is sent `BYPASS <client's set + this gateway>`,
    and a request that has already passed this gateway, or would go next to a gateway it has
    passed, is refused with ERROR. A remote behind another gateway is connected only then,
    after the client's BYPASS (so the client is answered `VERSION` at once, as a cluster
    answers, and a gateway speaking less is handled as a cluster node is); any other remote
    is connected at VERSION, as upstream does, and gets the BYPASS right after when the
    client sent one (plain repositories and git-annex's own proxies ignore it).
    """

    def __init__(
        self,
        inner: Peer,
        *,
        uuid: str,
        name: str,
        records: GatewayRecords,
        via: str | None = None,
        gateway: str = "",
    ) -> None:
        self.inner = inner
        self._uuid = uuid
        self.name = name
        self.records = records
        self.client_version = 0
        self._unreachable: str | None = None
        self._lazy = via is not None and inner.relays
        self._via = via
        self._gateway = gateway
        self._bypass: frozenset[str] = frozenset()
        self._routed = False  # the first request has been routed (later BYPASS ignored)
        self._offer = 0  # what the remote is offered, until the client's VERSION says otherwise

    @property
    def uuid(self) -> str:
        return self._uuid

    def negotiate_version(self, offered: int) -> int:
        """The client offered `offered`: connect to the remote with it, answer what it said
        (a remote behind another gateway: connected on the first request, see the class)."""
        offer = self._offer = min(offered, p.MAX_VERSION)
        version = offer
        if not self._lazy:
            try:
                version = self.inner.open(offer)
            except NodeError as exc:
                self._unreachable = str(exc)  # answered per request, as ERROR
        self.client_version = version
        return version

    def bypass(self, uuids: tuple[str, ...]) -> None:
        """The gateways this connection's requests have passed (before the first request)."""
        if not self._routed:
            self._bypass = frozenset(uuids)

    def _circle(self) -> str | None:
        """Why relaying this request would go round in a circle, if it would."""
        if self._gateway and self._gateway in self._bypass:
            return (
                f"{self.name}: this request has already passed this gateway; not relaying it again"
            )
        if self._via in self._bypass:
            return (
                f"{self.name} is reached through gateway {self._via}, "
                "which this request has already passed; not relaying it in a circle"
            )
        return None

    def _peer(self) -> Peer:
        if self._unreachable is not None:
            raise RequestRefused(self._unreachable)
        return self.inner

    def _guard_connect(self) -> None:
        """A remote that cannot be reached fails each request, not the session."""
        inner = self.inner
        if inner.relays and not self._routed:
            # The first request: the client's BYPASS (if any) has arrived. Refuse a circle,
            # else pass on where this request has been, with this gateway added (a remote
            # connected at VERSION that no gateway came before gets none, as upstream sends).
            self._routed = True
            self._unreachable = self._unreachable or self._circle()
            if self._unreachable is None and self._gateway and (self._bypass or self._lazy):
                inner.pass_bypass(self._bypass | {self._gateway})
        if self._unreachable is None:
            try:
                inner.open(self._offer)  # connects unless connected
            except NodeError as exc:
                self._unreachable = str(exc)
        if self._unreachable is not None:
            raise RequestRefused(self._unreachable)

    # -- Peer --------------------------------------------------------------------------------------
    def check_present(self, key: Key) -> bool:
        self._guard_connect()
        return self._peer().check_present(key)

    def lock_content(self, key: Key) -> ContentLock | None:
        self._guard_connect()
        return self._peer().lock_content(key)

    def get(self, key: Key, offset: int, associated_file: str | None) -> Outgoing | None:
        self._guard_connect()
        out = self._peer().get(key, offset, associated_file)
        if out is None:
            return None
        if out.length == 0:
            return out
        progress = self.records.progress(
            Direction.DOWNLOAD, self._uuid, key, associated_file, pos=out.offset, length=out.length
        )
        return RecordedOutgoing(out, progress)

    def put(self, key: Key, associated_file: str | None) -> Incoming | AlreadyHave:
        self._guard_connect()
        res = self._peer().put(key, associated_file)
        if isinstance(res, AlreadyHave):
            self.records.record(key, [self._uuid, *(res.plus or ())], present=True)
            return res
        return RecordedIncoming(self, res, key, associated_file)

    def remove(self, key: Key, *, before: int | None = None) -> Outcome:
        self._guard_connect()
        outcome = self._peer().remove(key, before=before)
        removed = outcome_uuids(self._uuid, outcome)
        self.records.record(key, removed, present=False)
        # As P2P/Proxy.hs handleREMOVE answers: the plain form unless the remote reported
        # other repositories too (a gateway), then every UUID it was removed from.
        if self.client_version < 2 or all(u == self._uuid for u in removed):
            return Outcome(outcome.ok)
        return Outcome(outcome.ok, tuple(removed))

    def timestamp(self) -> int:
        self._guard_connect()
        return self._peer().timestamp()

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.records.close()


class RecordedOutgoing:
    """An Outgoing passed through, reporting bytes sent into the gateway's transfer record."""

    def __init__(self, inner: Outgoing, progress: Progress) -> None:
        self.inner = inner
        self.progress = progress

    @property
    def length(self) -> int:
        return self.inner.length

    @property
    def offset(self) -> int:
        return self.inner.offset

    def fileno(self) -> int | None:
        return self.inner.fileno()

    def readinto(self, buf: memoryview) -> int:
        n = self.inner.readinto(buf)
        self.progress.add(n)
        return n

    def advance(self, n: int) -> None:
        self.inner.advance(n)
        self.progress.add(n)

    def valid(self) -> bool:
        return self.inner.valid()

    def body_sent(self) -> None:
        self.inner.body_sent()

    def close(self, acknowledged: Outcome | None) -> None:
        try:
            self.inner.close(acknowledged)
        finally:
            self.progress.finish(acknowledged is not None and acknowledged.ok)


class RecordedIncoming:
    """A PUT relayed to the single remote: transfer record while it runs, location log after."""

    def __init__(
        self, owner: ProxiedPeer, inner: Incoming, key: Key, associated_file: str | None
    ) -> None:
        self.owner = owner
        self.inner = inner
        self.key = key
        self.af = associated_file
        self.progress = Progress(None, inner.offset)

    @property
    def offset(self) -> int:
        return self.inner.offset

    def begin(self, length: int) -> None:
        self.progress = self.owner.records.progress(
            Direction.UPLOAD,
            self.owner.uuid,
            self.key,
            self.af,
            pos=self.inner.offset,
            length=length,
        )
        self.inner.begin(length)

    def write(self, data: bytes | memoryview) -> None:
        self.inner.write(data)
        self.progress.add(len(data))

    def _done(self, outcome: Outcome) -> Outcome:
        self.progress.finish(outcome.ok)
        self.owner.records.record(
            self.key, outcome_uuids(self.owner.uuid, outcome) if outcome.ok else [], present=True
        )
        return outcome

    def finish(self, valid: bool | None) -> Outcome:
        try:
            outcome = self.inner.finish(valid)
        except BaseException:
            self.progress.finish(False)
            raise
        return self._done(outcome)

    def data_present(self) -> Outcome:
        try:
            outcome = self.inner.data_present()
        except BaseException:
            self.progress.finish(False)
            raise
        return self._done(outcome)

    def interrupt(self) -> None:
        self.inner.interrupt()

    def abort(self) -> None:
        self.progress.finish(False)
        with contextlib.suppress(Exception):
            self.inner.abort()
