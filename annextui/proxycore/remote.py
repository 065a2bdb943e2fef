"""`RemotePeer`: a Peer that is a P2P protocol *client* over any byte stream.

The gateway reaches everything that is not a repository on this machine through it: a node's
`git-annex-shell p2pstdio` (over an `ssh.SshChannel`, or a subprocess's pipes), and another
gateway's cluster endpoint. It speaks the protocol as git-annex's own client does
(`P2P/IO.hs`, `Remote/Helper/Ssh.hs` openP2PShellConnection):

* the server's unsolicited `AUTH-SUCCESS <uuid>` must name the repository we meant to reach;
* `VERSION <offer>`, where the offer is what the gateway's own client negotiated (a node may
  answer lower; every request below is then shaped for the node's version);
* `BYPASS <uuids>` (sorted) when the node speaks v2 and there is something to bypass;
* request/reply pairs, with `DATA` bodies relayed in large blocks and never held whole.

Connections open lazily on first use, as upstream's `runRemoteSide` does. A connection that
broke (EOF, I/O error, protocol violation, an upload abandoned mid-body) is closed and the
peer raises `NodeError`; the next request reconnects. `NodeError` is a `PeerFatal`, so a single
proxied remote that dies ends the client's session as git-annex's does, while a cluster catches
it per node.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, cast

from annextui.backend.keys import Key
from annextui.proxycore import protocol as p
from annextui.proxycore.peer import (
    AlreadyHave,
    ContentLock,
    Incoming,
    Outcome,
    Outgoing,
    OutgoingSpan,
    Peer,
    PeerFatal,
    RequestRefused,
)

READ_SIZE = 1 << 20


class ByteStream(Protocol):
    """A bidirectional byte stream to one remote P2P server."""

    def read(self, n: int) -> bytes:
        """Up to n bytes; b"" at EOF."""
        ...

    def write(self, data: bytes | memoryview) -> None:
        """All of `data`, or an OSError."""
        ...

    def close(self) -> object:
        """Close both directions (waiting for the remote command where there is one)."""
        ...


class NodeError(PeerFatal):
    """The connection to the node failed or broke; the message names the node and the cause."""


class ProcessStream:
    """A local command's stdin/stdout (`git-annex-shell p2pstdio DIR UUID`); stderr passes
    through to ours, so a node's messages reach the client as upstream's do."""

    def __init__(
        self, argv: Sequence[str], *, cwd: str | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        self.argv = list(argv)
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=cwd,
            env=env,
            bufsize=0,
        )
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self._in = self.proc.stdout.fileno()
        self._out = self.proc.stdin.fileno()

    def read(self, n: int) -> bytes:
        return os.read(self._in, n)

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._out, view)
            view = view[n:]

    def close(self) -> int:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            with contextlib.suppress(OSError):
                self.proc.stdout.close()

    def kill(self) -> None:
        """Tear the connection down at once (a node abandoned mid-transfer)."""
        with contextlib.suppress(OSError):
            self.proc.kill()
        self.close()

    def alive(self) -> bool:
        return self.proc.poll() is None


class RemotePeer(Peer):
    """One connection (opened on demand) to a P2P server reached through `opener`.

    `uuid` is the repository expected in `AUTH-SUCCESS`; `name` is how messages refer to it.
    `connect(offer)` may be called first to fix the offered version (and learn the negotiated
    one); otherwise the first request connects offering `offer` (default 4).
    """

    def __init__(
        self,
        opener: Callable[[], ByteStream],
        *,
        uuid: str,
        name: str,
        bypass: frozenset[str] = frozenset(),
        offer: int = p.MAX_VERSION,
        read_size: int = READ_SIZE,
    ) -> None:
        self._opener = opener
        self._uuid = uuid
        self.name = name
        self.bypass_set = bypass
        self.offer = offer
        self._read_size = read_size
        self._stream: ByteStream | None = None
        self._conn: p.Connection | None = None
        self._wire: p.BlockingConnection | None = None  # _conn driven over _stream
        self._busy: object | None = None  # the transfer or lock holding the connection
        self._requested = False  # a request went over this connection (BYPASS is too late)
        self._reused = False  # taken idle from a pool: its first request may find it dead

    # -- connection -------------------------------------------------------------------------------
    @property
    def uuid(self) -> str:
        return self._uuid

    @property
    def connected(self) -> bool:
        return self._conn is not None

    @property
    def version(self) -> int:
        """The version negotiated with the node (connects if needed)."""
        return self._connection().version

    def connect(self, offer: int | None = None) -> int:
        """Open the connection now (if not open), offering `offer`; returns the version."""
        if offer is not None and self._conn is None:
            self.offer = min(offer, p.MAX_VERSION)
        return self._connection().version

    def open(self, offer: int) -> int:
        return self.connect(offer)

    @property
    def relays(self) -> bool:
        return True

    def _connection(self) -> p.Connection:
        if self._conn is not None:
            return self._conn
        try:
            stream = self._opener()
        except NodeError:
            raise
        except Exception as exc:
            raise NodeError(f"cannot connect to {self.name}: {exc}") from exc
        self._stream = stream
        conn = p.Connection(p.Role.CLIENT, greeting=True)
        self._conn = conn
        self._wire = p.BlockingConnection(
            conn, stream.read, stream.write, read_size=self._read_size
        )
        self._requested = False
        try:
            hello = self._message()
            if not isinstance(hello, p.AuthSuccess):
                raise NodeError(f"{self.name}: expected AUTH-SUCCESS, got {hello.WORD}")
            if hello.uuid != self._uuid:
                raise NodeError(
                    f"{self.name}: expected repository UUID {self._uuid} but found {hello.uuid}"
                )
            self._send(p.Version(self.offer))
            answer = self._message()
            if not isinstance(answer, p.Version | p.Error):  # pragma: no cover - conn checks
                raise NodeError(f"{self.name}: expected VERSION")
            if self.bypass_set and conn.version >= 2:
                self._send(p.Bypass(tuple(sorted(self.bypass_set))))
        except BaseException:
            self._drop()
            raise
        return conn

    def _drop(self) -> None:
        """Forget a connection that cannot be used any more (closing it without waiting)."""
        stream, self._stream, self._conn, self._busy = self._stream, None, None, None
        self._wire = None
        if stream is None:
            return
        kill = getattr(stream, "kill", None)
        with contextlib.suppress(Exception):
            if callable(kill):
                kill()
            else:
                stream.close()

    # -- pooling (nodepool.py) ------------------------------------------------------------------
    def park(self) -> bool:
        """Reusable when connected and idle (no transfer or lock holds the connection)."""
        return self._conn is not None and self._busy is None

    def alive(self) -> bool:
        """Whether the connection still looks usable without asking the node (a stream that
        cannot tell is assumed alive; the first request finds out)."""
        check = getattr(self._stream, "alive", None)
        return self._conn is not None and (not callable(check) or bool(check()))

    def mark_reused(self) -> None:
        self._reused = True

    def close(self) -> None:
        """End the session: EOF to the node, which then exits (and commits its journal)."""
        stream, self._stream, self._conn, self._wire = self._stream, None, None, None
        if stream is not None:
            if self._busy is not None:
                self._busy = None
                kill = getattr(stream, "kill", None)
                if callable(kill):
                    with contextlib.suppress(Exception):
                        kill()
                    return
            with contextlib.suppress(Exception):
                stream.close()

    # -- wire -------------------------------------------------------------------------------------
    def _send(self, *msgs: p.Message) -> None:
        wire = self._wire
        assert wire is not None
        try:
            wire.send(*msgs)
        except p.LocalProtocolError as exc:  # pragma: no cover - a bug of ours
            self._drop()
            raise NodeError(f"{self.name}: {exc}") from exc
        except (OSError, EOFError) as exc:
            self._drop()
            raise NodeError(f"{self.name}: connection lost: {exc}") from exc

    def _write_body(self, data: bytes | memoryview) -> None:
        wire = self._wire
        assert wire is not None
        try:
            wire.send_data(cast(bytes, data))
        except (OSError, EOFError) as exc:
            self._drop()
            raise NodeError(f"{self.name}: connection lost: {exc}") from exc

    def _event(self) -> p.Event:
        wire = self._wire
        assert wire is not None
        try:
            ev = wire.next_event()
            if isinstance(ev, p.ConnectionClosed):
                raise NodeError(f"{self.name}: connection closed by the node")
            return ev
        except p.RemoteProtocolError as exc:
            self._drop()
            raise NodeError(f"{self.name}: protocol error: {exc}") from exc
        except p.LocalProtocolError as exc:  # pragma: no cover - a bug of ours (our turn)
            self._drop()
            raise NodeError(f"{self.name}: waiting for a reply: {exc}") from exc
        except NodeError:
            self._drop()
            raise
        except (OSError, EOFError) as exc:
            self._drop()
            raise NodeError(f"{self.name}: connection lost: {exc}") from exc

    def _message(self) -> p.Message:
        ev = self._event()
        if not isinstance(ev, p.Message):  # pragma: no cover - conn frames bodies
            self._drop()
            raise NodeError(f"{self.name}: unexpected {ev!r}")
        return ev

    def _request(self, msg: p.Message) -> p.Message:
        reused, self._reused = self._reused, False
        self._connection()
        if self._busy is not None:
            raise RequestRefused(f"{self.name}: connection busy with another transfer")
        self._requested = True
        try:
            self._send(msg)
            return self._message()
        except NodeError:
            if not reused:
                raise
        # A pooled connection that died while idle (the node's shell killed, sshd restarted):
        # nothing of this request reached a live node, so it goes once more on a new one.
        self._drop()
        self._connection()
        self._requested = True
        self._send(msg)
        return self._message()

    def pass_bypass(self, uuids: frozenset[str]) -> None:
        """Tell the node these gateways are to be bypassed: sent at connection time, or now if
        connected and no request has gone yet (a BYPASS only counts right after VERSION)."""
        self.bypass_set = uuids
        conn = self._conn
        if conn is not None and not self._requested and uuids and conn.version >= 2:
            self._send(p.Bypass(tuple(sorted(uuids))))

    # -- Peer -------------------------------------------------------------------------------------
    def check_present(self, key: Key) -> bool:
        reply = self._request(p.CheckPresent(str(key)))
        if isinstance(reply, p.Error):
            raise RequestRefused(reply.text)
        return isinstance(reply, p.Success)

    def lock_content(self, key: Key) -> ContentLock | None:
        reply = self._request(p.LockContent(str(key)))
        if isinstance(reply, p.Error):
            raise RequestRefused(reply.text)
        if not isinstance(reply, p.Success):
            return None
        lock = _RemoteLock(self)
        self._busy = lock
        return lock

    def get(self, key: Key, offset: int, associated_file: str | None) -> Outgoing | None:
        reply = self._request(p.Get(offset, associated_file, str(key)))
        if isinstance(reply, p.Error):
            raise RequestRefused(reply.text)
        assert isinstance(reply, p.DataHeader)
        out = RemoteOutgoing(self, offset, reply.length)
        self._busy = out
        return out

    def put(self, key: Key, associated_file: str | None) -> Incoming | AlreadyHave:
        reply = self._request(p.Put(associated_file, str(key)))
        if isinstance(reply, p.Error):
            raise RequestRefused(reply.text)
        if isinstance(reply, p.AlreadyHave):
            return AlreadyHave()
        if isinstance(reply, p.AlreadyHavePlus):
            return AlreadyHave(tuple(reply.uuids))
        assert isinstance(reply, p.PutFrom)
        inc = RemoteIncoming(self, reply.offset)
        self._busy = inc
        return inc

    def remove(self, key: Key, *, before: int | None = None) -> Outcome:
        conn = self._connection()
        if before is not None and conn.version >= 3:
            reply = self._request(p.RemoveBefore(before, str(key)))
        else:
            reply = self._request(p.Remove(str(key)))
        return _outcome(reply)

    def timestamp(self) -> int:
        reply = self._request(p.GetTimestamp())
        if isinstance(reply, p.Error):
            raise RequestRefused(reply.text)
        assert isinstance(reply, p.Timestamp)
        return reply.timestamp

    def bypass(self, uuids: tuple[str, ...]) -> None:
        """A later BYPASS is ignored, as git-annex's proxy ignores it."""

    # -- used by the transfer objects -------------------------------------------------------------
    def _release(self, holder: object) -> None:
        if self._busy is holder:
            self._busy = None


def _outcome(reply: p.Message) -> Outcome:
    """A SUCCESS/FAILURE(-PLUS) reply as an Outcome; ERROR becomes RequestRefused."""
    if isinstance(reply, p.Success):
        return Outcome(True)
    if isinstance(reply, p.SuccessPlus):
        return Outcome(True, tuple(reply.uuids))
    if isinstance(reply, p.FailurePlus):
        return Outcome(False, tuple(reply.uuids))
    if isinstance(reply, p.Error):
        raise RequestRefused(reply.text)
    return Outcome(False)


class _RemoteLock:
    """LOCKCONTENT held on the node; `release()` sends the bare UNLOCKCONTENT."""

    def __init__(self, peer: RemotePeer) -> None:
        self._peer = peer
        self._released = False

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        peer = self._peer
        if peer._busy is not self or peer._conn is None:
            return
        peer._busy = None
        with contextlib.suppress(NodeError):
            peer._send(p.UnlockContent())


class RemoteOutgoing(OutgoingSpan):
    """A node's answer to GET, relayed as it arrives (see `peer.Outgoing`).

    The validity line is read after the body (`valid()`); the client's acknowledgement goes
    back to the node in `close()`.
    """

    def __init__(self, peer: RemotePeer, offset: int, length: int) -> None:
        super().__init__(offset, length)
        self._peer = peer
        self._left = length
        self._pending = memoryview(b"")
        self._valid: bool | None = None
        self._closed = False

    @property
    def received(self) -> int:
        return self._length - self._left - len(self._pending)

    def readinto(self, buf: memoryview) -> int:
        if not self._pending:
            if self._left <= 0:
                return 0
            ev = self._peer._event()
            if not isinstance(ev, p.Data):
                self._peer._drop()
                raise NodeError(f"{self._peer.name}: DATA body ended early")
            self._pending = memoryview(ev.data)
            self._left -= len(ev.data)
        n = min(len(buf), len(self._pending))
        buf[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _finish_body(self) -> None:
        """Read the rest of the body framing and the validity line (once)."""
        if self._valid is not None:
            return
        peer = self._peer
        conn = peer._conn
        if conn is None:
            raise NodeError(f"{peer.name}: connection lost")
        if self._left > 0 or self._pending:
            raise NodeError(f"{peer.name}: body not fully read")
        ev = peer._event()
        if not isinstance(ev, p.EndOfData):  # pragma: no cover - conn frames bodies
            peer._drop()
            raise NodeError(f"{peer.name}: expected the end of the DATA body")
        if conn.state is p.State.AWAIT_GET_VALIDITY:
            v = peer._message()
            self._valid = isinstance(v, p.Valid)
        else:
            self._valid = True  # v0: no validity line

    def valid(self) -> bool:
        self._finish_body()
        assert self._valid is not None
        return self._valid

    def body_sent(self) -> None:
        pass  # the node keeps its own record

    def close(self, acknowledged: Outcome | None) -> None:
        if self._closed:
            return
        self._closed = True
        peer = self._peer
        if peer._busy is not self:
            return
        if acknowledged is None:
            peer._drop()  # the node still waits for body reads or an ack: start over
            return
        try:
            self._finish_body()
            peer._release(self)
            peer._send(p.Success() if acknowledged.ok else p.Failure())
        except NodeError:
            peer._drop()


class RemoteIncoming:
    """A PUT relayed to the node (see `peer.Incoming`)."""

    def __init__(self, peer: RemotePeer, offset: int) -> None:
        self._peer = peer
        self._offset = offset
        self._spent = False
        self._begun = False

    @property
    def offset(self) -> int:
        return self._offset

    def begin(self, length: int) -> None:
        self._begun = True
        self._peer._send(p.DataHeader(length))

    def write(self, data: bytes | memoryview) -> None:
        self._peer._write_body(data)

    def finish(self, valid: bool | None) -> Outcome:
        self._spent = True
        peer = self._peer
        conn = peer._conn
        if conn is None or peer._busy is not self:
            return Outcome(False)
        if conn.outgoing_remaining:
            peer._drop()  # short body: the node still waits for bytes
            return Outcome(False)
        if conn.state is p.State.AWAIT_PUT_VALIDITY:
            peer._send(p.Invalid() if valid is False else p.Valid())
        peer._release(self)
        return _outcome(peer._message())

    def data_present(self) -> Outcome:
        self._spent = True
        peer = self._peer
        if peer._conn is None or peer._busy is not self:
            return Outcome(False)
        if peer._conn.version < 4:
            peer._drop()
            return Outcome(False)
        peer._release(self)
        peer._send(p.DataPresent())
        return _outcome(peer._message())

    def interrupt(self) -> None:
        self.abort()  # hanging up is the only way to stop a write blocked on the node

    def abort(self) -> None:
        if self._spent:
            return
        self._spent = True
        peer = self._peer
        if peer._busy is not self:
            return
        if not self._begun:
            # Nothing sent yet (a p2phttp `putoffset` asks only for the offset): ERROR is the
            # client's in-band "not sending" after PUT-FROM; the node answers nothing, keeps
            # what it has for a resume, and the connection stays usable (pooled, nodepool.py).
            peer._release(self)
            with contextlib.suppress(NodeError):  # a broken connection: _send dropped it
                peer._send(p.Error("put not sent"))
            return
        peer._drop()  # mid-body, no in-band abort exists: hang up, the node keeps its partial
