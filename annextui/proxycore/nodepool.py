"""Connections to cluster nodes and proxied remotes kept open between the requests of a
long-running server.

`annextui p2phttp` runs one short P2P session per HTTP request. Opening a node per request
costs an ssh channel plus a `git-annex-shell` start on the node (and its exit, which commits
the node's journal), or for a node on this machine a `LocalPeer` set up again. The server
owns one `NodePool`; the cluster leases its node peers from it (gateway.py
`leased_node_peer`), and a proxied remote's `ProxiedPeer` leases its connection when the
client's version is known (`LeasedWhenOpened`): a request takes an idle connection of the same
kind when there is one, and gives it back when the request ends.

What is pooled is keyed by everything the connection was set up with (which node, how it is
reached, the offered protocol version, the BYPASS it was sent), so a reused connection is
exactly what a fresh one would be. As `--proxyconnections` means in git-annex
(`P2P/Http/State.hs`), the bound is on *idle* connections: at most `idle_limit` per key are
kept; more requests at once each open their own, and the surplus is closed when given back.
Connections idle longer than `idle_seconds` are closed (by `reap`, which the server calls
periodically), so a node's git-annex-shell commits its journal soon after the traffic stops.
Closing happens off the request's thread: an ssh node's shell commits its journal before it
exits, and closing waits for its exit status. At shutdown `close` ends every idle connection
and `wait_closed` waits, bounded, for every one the pool opened: those being closed in the
background (surplus, stale) and those still leased, closed as they come back. Without that
wait the process would end under a closing connection: the kernel closing the ssh socket
still ends the node's shell by end of input, but after the server has gone, so its journal
would be committed (if at all) only later, by a shell nobody waits for.

A connection that broke while idle (node killed, sshd restarted) is dropped at lease time when
the stream says so, and otherwise detected by its first request, which `RemotePeer` then
repeats once on a fresh connection (`mark_reused`).

Without a server (`annextui-shell`: one process per client) there is no pool.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

from annextui.proxycore.peer import Peer
from annextui.proxycore.protocol import MAX_VERSION

if TYPE_CHECKING:
    from annextui.backend.keys import Key
    from annextui.proxycore.peer import AlreadyHave, ContentLock, Incoming, Outcome, Outgoing


class NodePool:
    def __init__(self, idle_limit: int = 1, idle_seconds: float = 10.0) -> None:
        self.idle_limit = max(0, idle_limit)
        self.idle_seconds = idle_seconds
        self._idle: dict[Hashable, list[tuple[float, Peer]]] = {}
        self._mutex = threading.Lock()
        self._settled = threading.Condition(self._mutex)  # a close ended, a lease came back
        self._closing = 0  # connections being closed on background threads
        self._leased = 0  # connections held by requests
        self._closed = False
        self.opened = 0  # connections made (for the status and the tests)

    def lease(self, key: Hashable, connect: Callable[[], Peer]) -> Peer:
        """A peer for `key`: an idle one (most recently used first) or `connect()`'s. Closing
        the returned peer gives it back."""
        while True:
            with self._mutex:
                idle = self._idle.get(key)
                entry = idle.pop() if idle else None
                if entry is not None:
                    self._leased += 1  # counted while it is looked at, never out of sight
            if entry is None:
                break
            peer = entry[1]
            if _alive(peer):
                mark = getattr(peer, "mark_reused", None)
                if callable(mark):
                    mark()
                return _Leased(self, key, peer)
            with self._mutex:
                self._leased -= 1
                self._closing += 1
            self._start_closing([peer])
        peer = connect()
        with self._mutex:
            self.opened += 1
            self._leased += 1
        return _Leased(self, key, peer)

    def give_back(self, key: Hashable, peer: Peer) -> None:
        """The request is done with `peer`: kept idle when it is reusable and there is room,
        closed otherwise."""
        try:
            keep = peer.park()
        except Exception:
            keep = False
        surplus: list[Peer] = []
        with self._mutex:
            self._leased -= 1
            if keep and not self._closed and self.idle_limit:
                idle = self._idle.setdefault(key, [])
                idle.append((time.monotonic(), peer))
                while len(idle) > self.idle_limit:
                    surplus.append(idle.pop(0)[1])  # the least recently used goes
            else:
                surplus.append(peer)
            # counted as closing in the same step as the lease stops counting: a shutdown
            # waiting for both never sees a connection as gone while it is still open
            self._closing += len(surplus)
            self._settled.notify_all()
        self._start_closing(surplus)

    def idle(self) -> int:
        with self._mutex:
            return sum(len(v) for v in self._idle.values())

    def reap(self) -> None:
        """Close the connections idle for longer than `idle_seconds`."""
        due = time.monotonic() - self.idle_seconds
        stale: list[Peer] = []
        with self._mutex:
            for key, idle in list(self._idle.items()):
                keep = [(t, p) for t, p in idle if t > due]
                stale += [p for t, p in idle if t <= due]
                if keep:
                    self._idle[key] = keep
                else:
                    del self._idle[key]
            self._closing += len(stale)
        self._start_closing(stale)

    def close(self) -> None:
        """Keep no connection from here on (shutdown): every idle one starts closing now, each
        on its own thread (an ssh node's shell commits its journal before its exit status
        comes back, so nodes are waited for side by side)."""
        with self._mutex:
            self._closed = True
            peers = [p for idle in self._idle.values() for _, p in idle]
            self._idle.clear()
            self._closing += len(peers)
        for peer in peers:
            self._start_closing([peer])

    def wait_closed(self, timeout: float, waiting: Callable[[int], None] | None = None) -> int:
        """Wait, at most `timeout` seconds, until every connection of the pool is closed: the
        ones closing in the background and the ones still leased (after `close`, each is
        closed as it comes back). `waiting` is told how many first, when there are any. The
        number still open when the wait ended."""
        deadline = time.monotonic() + timeout
        with self._mutex:
            pending = self._closing + self._leased
        if pending and waiting is not None:
            waiting(pending)
        with self._mutex:
            while self._closing + self._leased:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._settled.wait(left)
            return self._closing + self._leased

    def _start_closing(self, peers: list[Peer]) -> None:
        """Close `peers` (already counted in `_closing`) on a thread of their own. A daemon
        thread: a node that never answers must not hold the process; `wait_closed` bounds how
        long a shutdown waits for it."""
        if peers:
            threading.Thread(
                target=self._close_all, args=(peers,), name="node-close", daemon=True
            ).start()

    def _close_all(self, peers: list[Peer]) -> None:
        for peer in peers:
            with contextlib.suppress(Exception):
                peer.close()
            with self._mutex:
                self._closing -= 1
                self._settled.notify_all()


def _alive(peer: Peer) -> bool:
    check = getattr(peer, "alive", None)
    return bool(check()) if callable(check) else True


class _Delegating(Peer):
    """Every Peer call goes to the peer `_p()` returns (the pooled wrappers below)."""

    def _p(self) -> Peer:
        raise NotImplementedError

    @property
    def uuid(self) -> str:
        return self._p().uuid

    def check_present(self, key: Key) -> bool:
        return self._p().check_present(key)

    def holds(self, key: Key) -> bool | None:
        return self._p().holds(key)  # a cluster's GET fast path asks a pooled local node

    def lock_content(self, key: Key) -> ContentLock | None:
        return self._p().lock_content(key)

    def get(self, key: Key, offset: int, associated_file: str | None) -> Outgoing | None:
        return self._p().get(key, offset, associated_file)

    def put(self, key: Key, associated_file: str | None) -> Incoming | AlreadyHave:
        return self._p().put(key, associated_file)

    def remove(self, key: Key, *, before: int | None = None) -> Outcome:
        return self._p().remove(key, before=before)

    def timestamp(self) -> int:
        return self._p().timestamp()

    def negotiate_version(self, offered: int) -> int:
        return self._p().negotiate_version(offered)

    def open(self, offer: int) -> int:
        return self._p().open(offer)

    def bypass(self, uuids: tuple[str, ...]) -> None:
        self._p().bypass(uuids)

    @property
    def relays(self) -> bool:
        return self._p().relays

    def pass_bypass(self, uuids: frozenset[str]) -> None:
        self._p().pass_bypass(uuids)


class _Leased(_Delegating):
    """A pooled peer as one request holds it: every call goes to the peer; `close` gives it
    back to the pool instead of closing it."""

    def __init__(self, pool: NodePool, key: Hashable, peer: Peer) -> None:
        self._pool = pool
        self._key = key
        self.inner: Peer | None = peer

    def _p(self) -> Peer:
        peer = self.inner
        assert peer is not None, "used after close"
        return peer

    def close(self) -> None:
        peer, self.inner = self.inner, None
        if peer is not None:
            self._pool.give_back(self._key, peer)


class LeasedWhenOpened(_Delegating):
    """A proxied remote's connection as one request holds it, leased from the pool only when
    it is opened: the version the client offered and the BYPASS sent at connection time are
    part of what is pooled (git-annex keys its pool by server, client, bypass and version,
    P2P/Http/State.hs `proxyConnectionPoolKey`), and neither is known when the request's Peer
    is made. `lease(offer, bypass)` gives a pooled peer (gateway.py `leased_node_peer`).

    A BYPASS that arrives after the connection was opened (ProxiedPeer passes the client's on
    its first request) is not sent on it: a pooled connection may have served requests already,
    after which a BYPASS no longer counts. The connection goes back to the pool and one opened
    with that BYPASS is leased instead, at the next `open`."""

    def __init__(
        self, lease: Callable[[int, frozenset[str]], Peer], *, uuid: str, relays: bool
    ) -> None:
        self._lease = lease
        self._uuid = uuid
        self._relays = relays
        self._offer = MAX_VERSION  # until open() says otherwise
        self._bypass: frozenset[str] = frozenset()
        self._leased: Peer | None = None

    def _p(self) -> Peer:
        if self._leased is None:
            self._leased = self._lease(self._offer, self._bypass)
        return self._leased

    @property
    def uuid(self) -> str:
        return self._uuid

    @property
    def relays(self) -> bool:
        return self._relays

    def open(self, offer: int) -> int:
        if self._leased is None:
            self._offer = offer
        return self._p().open(self._offer)

    def pass_bypass(self, uuids: frozenset[str]) -> None:
        if uuids == self._bypass:
            return
        self._bypass = uuids
        leased, self._leased = self._leased, None
        if leased is not None:
            leased.close()  # back to the pool, under the key it was opened with

    def close(self) -> None:
        leased, self._leased = self._leased, None
        if leased is not None:
            leased.close()
