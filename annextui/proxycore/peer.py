"""The `Peer` interface: one place a key can live, as the P2P server sees it.

A server (server.py) turns protocol requests into calls on a Peer; the Peer never sees protocol
messages. The local repository (local.py) is one Peer; the gateway adds ssh peers, proxied
repositories and clusters behind the same interface, which is why results can carry extra UUIDs:
a cluster reports the nodes that now hold (or no longer hold) a key, and the server turns that
into `SUCCESS-PLUS`/`FAILURE-PLUS`/`ALREADY-HAVE-PLUS` for clients of protocol version 2 and up.

Errors:
* `RequestRefused` — this request fails with `ERROR <message>`; the connection goes on.
* `PeerFatal` (and subclasses) — the connection must end; the message goes to stderr, as
  git-annex's shell does when its `Proto` action fails (`content is locked`,
  `transfer already in progress, or unable to take transfer lock`, …).

Every object handed out (content locks, outgoing and incoming transfers) must be released
exactly once, also when the connection breaks; `Peer.close()` ends the session (the local
repository commits its journal there, as git-annex's shell commits at exit).
"""

from __future__ import annotations

import abc
from typing import Protocol

from annextui.backend.keys import Key
from annextui.values import Value


class PeerFatal(Exception):
    """The connection cannot go on; the message is shown to the client on stderr."""


class Unreachable(PeerFatal):
    """The peer's repository is not there (moved, removed, its disk unmounted): a cluster
    counts the node as down for the rest of the session instead of as merely refusing."""


class RequestRefused(Exception):
    """This request is answered with `ERROR <message>`; the connection stays usable."""


class Outcome(Value):
    """Result of a request answered with SUCCESS/FAILURE.

    `plus` lists the UUIDs of the repositories the answer is about (a cluster's nodes); when
    non-empty and the client speaks v2+ the server answers in the `-PLUS` form. None or an
    empty tuple give the plain form.
    """

    ok: bool
    plus: tuple[str, ...] | None = None


class AlreadyHave(Value):
    """PUT answer when the content is there already (`ALREADY-HAVE[-PLUS]`)."""

    plus: tuple[str, ...] | None = None


class ContentLock(Protocol):
    """LOCKCONTENT held: the content cannot be removed until `release()`."""

    def release(self) -> None: ...


class Outgoing(Protocol):
    """Content flowing from the peer to the client (the answer to `GET`).

    `length` bytes from `offset` will be sent. A server either calls `readinto` until it has
    them all, or — when `fileno()` is not None — may copy directly from that descriptor
    (`os.sendfile`) starting at file position `offset`, and then calls `advance(n)` to report it.
    """

    @property
    def length(self) -> int: ...

    @property
    def offset(self) -> int: ...

    def fileno(self) -> int | None: ...

    def readinto(self, buf: memoryview) -> int: ...

    def advance(self, n: int) -> None: ...

    def valid(self) -> bool:
        """After sending: whether the content stayed unchanged while it was read (VALID)."""
        ...

    def body_sent(self) -> None:
        """Every byte has left for the client; its answer is awaited (bookkeeping may start)."""
        ...

    def close(self, acknowledged: Outcome | None) -> None:
        """The client's answer (`SUCCESS`/`FAILURE[-PLUS]`), or None if the connection broke."""
        ...


def read_into_full(out: Outgoing, view: memoryview) -> int:
    """Read from `out` until `view` is full or the content ends; the bytes read (fewer than
    `len(view)` only if it ended early: the caller decides what a short read means)."""
    got = 0
    while got < len(view):
        n = out.readinto(view[got:])
        if n <= 0:
            break
        got += n
    return got


class OutgoingSpan:
    """What the Outgoing classes share: the span of content they promised the client, and no
    descriptor to `sendfile` from unless a subclass has one."""

    def __init__(self, offset: int, length: int) -> None:
        self._offset = offset
        self._length = length

    @property
    def length(self) -> int:
        return self._length

    @property
    def offset(self) -> int:
        return self._offset

    def fileno(self) -> int | None:
        return None

    def advance(self, n: int) -> None:
        """Only called after a `sendfile` from `fileno()`, which this span does not offer."""
        raise NotImplementedError


class Incoming(Protocol):
    """Content flowing from the client into the peer (the answer to `PUT`).

    `offset` is what the server announces with `PUT-FROM`. Then either `begin(n)` (a `DATA n`
    arrived), `write()` calls for exactly n bytes and `finish(validity)`; or `data_present()`
    (v4 `DATA-PRESENT`); or `abort()` when the connection broke or the client gave up. After
    `finish`/`data_present`/`abort` the object is spent.
    """

    @property
    def offset(self) -> int: ...

    def begin(self, length: int) -> None: ...

    def write(self, data: bytes | memoryview) -> None: ...

    def finish(self, valid: bool | None) -> Outcome:
        """`valid` is the client's VALID (True) / INVALID (False), or None when it sent none."""
        ...

    def data_present(self) -> Outcome: ...

    def abort(self) -> None: ...

    def interrupt(self) -> None:
        """Called from another thread while `write()` may be blocked in it: make that write
        fail at once (a connection is hung up). Writes that never block for long ignore it."""
        ...


class Peer(abc.ABC):
    """Where keys live. One instance serves one client connection (not thread-safe)."""

    @property
    @abc.abstractmethod
    def uuid(self) -> str:
        """The UUID the client talks to (sent as `AUTH-SUCCESS`)."""

    @abc.abstractmethod
    def check_present(self, key: Key) -> bool:
        """`CHECKPRESENT`."""

    @abc.abstractmethod
    def lock_content(self, key: Key) -> ContentLock | None:
        """`LOCKCONTENT`: a held lock, or None when the content is absent or cannot be locked."""

    @abc.abstractmethod
    def get(self, key: Key, offset: int, associated_file: str | None) -> Outgoing | None:
        """`GET`: the content from `offset`, or None when it is not here (`DATA 0`, `INVALID`)."""

    @abc.abstractmethod
    def put(self, key: Key, associated_file: str | None) -> Incoming | AlreadyHave:
        """`PUT`: where to resume (`PUT-FROM`), or that the content is here already."""

    @abc.abstractmethod
    def remove(self, key: Key, *, before: int | None = None) -> Outcome:
        """`REMOVE` / `REMOVE-BEFORE`: with `before`, fail unless `timestamp() < before` while the
        removal lock is held. Absent content counts as removed."""

    @abc.abstractmethod
    def timestamp(self) -> int:
        """`GETTIMESTAMP`: whole seconds of this peer's monotonic clock."""

    def holds(self, key: Key) -> bool | None:
        """Whether the content is here, answered cheaply and without a round trip to another
        process (a repository in this process stats its object file); None when this peer
        cannot tell so (a peer behind ssh, or trouble that the real request would report).
        A cluster uses it to serve a GET without reading the location log first."""
        return None

    def negotiate_version(self, offered: int) -> int:
        """`VERSION`: the version to answer, given the client's offer capped at ours. A
        repository speaks what is offered; a proxy answers what the peer behind it said."""
        return offered

    def open(self, offer: int) -> int:
        """Connect now (unless connected) offering protocol version `offer`, so a peer that
        cannot be reached fails before its first request; the version the peer speaks. A peer
        in this process has nothing to open and speaks what is offered."""
        return offer

    def bypass(self, uuids: tuple[str, ...]) -> None:  # noqa: B027 - optional hook
        """`BYPASS`: cluster gateways not to route through. Plain repositories ignore it."""

    @property
    def relays(self) -> bool:
        """Whether requests to this peer travel on to another process (a node over ssh,
        another gateway, git-annex's shell), so a proxy in front of it guards against routes
        that go round in a circle and passes on where requests have been (`pass_bypass`).
        A repository in this process ends every route."""
        return False

    def pass_bypass(self, uuids: frozenset[str]) -> None:  # noqa: B027 - optional hook
        """A proxy in front of this peer says which gateways its requests have passed: a peer
        that `relays` sends them on as `BYPASS`; one that ends the route has no use for them."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """End of the session (also after errors): flush and commit whatever is pending."""

    def park(self) -> bool:
        """End this client's session and keep the peer for another one (a long-running
        server's pool, nodepool.py): True when it stays usable, False when it cannot be
        reused (the pool then closes it). By default a peer is not reused."""
        return False
