"""One side of a P2P protocol connection, as a sans-IO state machine (h11's shape).

Bytes go in with `receive_data`, events come out of `next_event`, and `send`/`send_data` turn
messages and body bytes into what to write. No I/O, no threads, no clocks: transports, the
shell and the gateway drive it.
"""

from __future__ import annotations

from typing import Final, NoReturn

from .errors import LocalProtocolError, ProtocolParseError, RemoteProtocolError
from .events import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfData,
    NextEvent,
)
from .messages import (
    MAX_VERSION,
    Auth,
    AuthSuccess,
    DataHeader,
    Error,
    Message,
    Version,
    parse_message,
    serialize_message,
)
from .states import (
    ALLOWED,
    EXPECTATIONS,
    LENIENT_REQUESTS,
    MIN_VERSION,
    SKIP_BELOW,
    TRANSITIONS,
    TURN,
    Role,
    State,
)

MAX_LINE: Final = 32768
"""git-annex gives up on a peer after this many bytes without a newline (fatal)."""

_FULL_DUPLEX: Final = frozenset({State.TUNNEL, State.TUNNEL_CLIENT_DONE, State.TUNNEL_SERVER_DONE})


class _Illegal(Exception):
    """A message with no legal transition; becomes a Local or Remote protocol error."""


class Connection:
    """The protocol state of one end (`role`) of a connection.

    `greeting=True` starts in the state where the server owes its unsolicited
    `AUTH-SUCCESS <uuid>` (ssh and stdio transports); otherwise the client speaks first (an
    in-process pair, or tor-style `AUTH`). `max_version` caps what a client offers and what a
    server answers.

    `next_event()` returns, in order: parsed messages; after a `DataHeader`, `Data` chunks as
    bytes arrive and one `EndOfData`; `ConnectionClosed` at EOF on a message boundary;
    `NEED_DATA` when more input is needed; `PAUSED` when it is our turn to send (the peer's
    pipelined bytes are left unread, as git-annex does).

    Not thread-safe: one thread (or task) drives a Connection.
    """

    def __init__(
        self, role: Role, *, greeting: bool = False, max_version: int = MAX_VERSION
    ) -> None:
        if not 0 <= max_version <= MAX_VERSION:
            raise ValueError(f"max_version must be between 0 and {MAX_VERSION}")
        self.role: Final = role
        self._sender: Final = role.peer  # who sends what we receive (asked per line)
        self.max_version: Final = max_version
        self._state = State.GREETING if greeting else State.IDLE
        self._version = 0
        self._offered: int | None = None
        self._version_settled = False
        self._peer_uuid: str | None = None
        self._auth_uuid: str | None = None
        self._buffer = bytearray()
        # Body bytes handed over as one `bytes` while nothing else waited: given back as they
        # came (a 1 MiB read of a GET's body is then not copied twice). Always before _buffer.
        self._body_bytes: bytes | None = None
        self._scan_from = 0
        self._eof = False
        self._in_remaining: int | None = None
        self._out_remaining = 0
        self._owed_error: str | None = None
        self._farewell_sent = False
        self._broken: RemoteProtocolError | None = None

    def __repr__(self) -> str:
        return f"<Connection {self.role.value} {self._state.value} v{self._version}>"

    # --- introspection ------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def version(self) -> int:
        """The negotiated protocol version (0 until a VERSION exchange completes)."""
        return self._version

    @property
    def offered_version(self) -> int | None:
        """The version the client offered, once it has."""
        return self._offered

    @property
    def peer_uuid(self) -> str | None:
        """Client: the server's UUID from AUTH-SUCCESS. Server: the client's, after AUTH."""
        return self._peer_uuid

    @property
    def incoming_remaining(self) -> int:
        """Bytes of the peer's DATA body not yet returned by next_event()."""
        return self._in_remaining or 0

    @property
    def outgoing_remaining(self) -> int:
        """Bytes of our DATA body still to be passed to send_data()."""
        return self._out_remaining

    @property
    def owed_error(self) -> str | None:
        """The ERROR text git-annex would send now, after the peer broke the protocol."""
        return self._owed_error

    @property
    def our_turn(self) -> bool:
        return self.role in TURN[self._state] or self._owed_error is not None

    def sendable(self) -> frozenset[type[Message]]:
        """The message types `send()` accepts right now (values may still be refused)."""
        candidates = ALLOWED.get((self._state, self.role), frozenset()) | {Error}
        return frozenset(cls for cls in candidates if self.may_send(cls))

    def may_send(self, cls: type[Message]) -> bool:
        """Whether `cls` is in `sendable()`, without building the set (a server asks it
        for VALID once per GET it answers)."""
        if self._out_remaining or self._receiving_body_half_duplex():
            return False
        if self._state is State.BROKEN:
            return cls is Error and not self._farewell_sent
        if self._owed_error is not None:
            return cls is Error
        return (
            cls in ALLOWED.get((self._state, self.role), ())
            and self._version >= MIN_VERSION.get(cls, 0)
            and not (cls is Version and self.role is Role.CLIENT and self._version_settled)
        )

    # --- input --------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the peer; `b""` means the peer closed its side."""
        if self._eof:
            if data:
                raise LocalProtocolError("receive_data() after EOF")
            return
        if not data:
            self._eof = True
            return
        if (
            self._in_remaining
            and type(data) is bytes  # not a view of a buffer the caller reuses
            and self._body_bytes is None
            and not self._buffer
        ):
            self._body_bytes = data
            return
        self._buffer += data

    def next_event(self) -> NextEvent:
        if self._broken is not None:
            raise RemoteProtocolError(
                f"the connection is already broken: {self._broken}", fatal=True
            )
        if self._in_remaining is not None:
            return self._body_event()
        if self._state is State.CLOSED:
            return ConnectionClosed()
        if self._owed_error is not None or self._sender not in TURN[self._state]:
            return PAUSED
        line = self._take_line()
        if line is None:
            if not self._eof:
                return NEED_DATA
            if self._buffer:
                self._break("connection closed in the middle of a line", None)
            self._state = State.CLOSED
            return ConnectionClosed()
        try:
            msg = parse_message(line)
        except ProtocolParseError as e:
            self._reject(str(e), unparsable=True)
        try:
            nxt = self._transition(self._sender, msg)
        except _Illegal as e:
            self._reject(str(e), unparsable=False)
        self._apply(self._sender, msg, nxt)
        return msg

    def _take_line(self) -> bytes | None:
        end = self._buffer.find(b"\n", self._scan_from)
        if end < 0:
            # Remember how far we looked, so a line trickling in is not rescanned each time.
            self._scan_from = len(self._buffer)
            if len(self._buffer) >= MAX_LINE:
                self._break(f"no newline within {MAX_LINE} bytes", None)
            return None
        if end >= MAX_LINE:
            self._break(f"no newline within {MAX_LINE} bytes", None)
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        self._scan_from = 0
        return line[:-1] if line.endswith(b"\r") else line

    def _body_event(self) -> NextEvent:
        remaining = self._in_remaining
        assert remaining is not None
        if remaining == 0:
            self._in_remaining = None
            return EndOfData()
        whole = self._body_bytes
        if whole is not None:
            self._body_bytes = None
            n = min(remaining, len(whole))
            if n < len(whole):
                self._buffer[:0] = whole[n:]  # what follows the body, before later bytes
                whole = whole[:n]
            self._in_remaining = remaining - n
            return Data(whole)
        if not self._buffer:
            if self._eof:
                # The sender's only way to abort a body is to hang up: the bytes are unusable.
                self._break(f"connection closed with {remaining} DATA bytes outstanding", None)
            return NEED_DATA
        n = min(remaining, len(self._buffer))
        if n == len(self._buffer):
            chunk = bytes(self._buffer)
            self._buffer.clear()
        else:
            chunk = bytes(self._buffer[:n])
            del self._buffer[:n]
        self._in_remaining = remaining - n
        return Data(chunk)

    # --- output -------------------------------------------------------------------------------

    def send(self, msg: Message) -> bytes:
        """The bytes to write for `msg`; raises LocalProtocolError (and changes nothing) if
        the protocol does not allow it now."""
        if self._out_remaining:
            raise LocalProtocolError(
                f"cannot send {msg.WORD}: {self._out_remaining} bytes of the DATA body are unsent"
            )
        if self._state is State.BROKEN:
            if isinstance(msg, Error) and not self._farewell_sent:
                self._farewell_sent = True
                self._owed_error = None
                return serialize_message(msg)
            raise LocalProtocolError(f"cannot send {msg.WORD}: the connection is broken")
        if self._owed_error is not None:
            if isinstance(msg, Error):
                self._owed_error = None
                return serialize_message(msg)
            raise LocalProtocolError(
                f"cannot send {msg.WORD}: the peer is owed ERROR {self._owed_error!r} first"
            )
        if self._receiving_body_half_duplex():
            raise LocalProtocolError(
                f"cannot send {msg.WORD} before the peer's DATA body has been read"
            )
        try:
            nxt = self._transition(self.role, msg)
        except _Illegal as e:
            raise LocalProtocolError(str(e)) from None
        data = serialize_message(msg)
        self._apply(self.role, msg, nxt)
        return data

    def send_data(self, chunk: bytes) -> bytes:
        """Pass body bytes after sending a `DataHeader`; returns them for writing."""
        if len(chunk) > self._out_remaining:
            raise LocalProtocolError(
                f"{len(chunk)} body bytes exceed the {self._out_remaining} the DATA line announced"
            )
        self._out_remaining -= len(chunk)
        return chunk

    # --- the state machine --------------------------------------------------------------------

    def _receiving_body_half_duplex(self) -> bool:
        # Outside a tunnel nobody may answer a body before it has been read to the end.
        return self._in_remaining is not None and self._state not in _FULL_DUPLEX

    def _transition(self, sender: Role, msg: Message) -> State:
        kind = type(msg)
        nxt = TRANSITIONS.get((self._state, sender, kind))
        if nxt is None:
            raise _Illegal(
                f"{msg.WORD} from the {sender.value} is not allowed in state {self._state.value}"
            )
        gate = MIN_VERSION.get(kind, 0)
        lenient = self.role is Role.SERVER and sender is Role.CLIENT and kind in LENIENT_REQUESTS
        if self._version < gate and not lenient:
            raise _Illegal(f"{msg.WORD} needs protocol version {gate}, not {self._version}")
        if isinstance(msg, Version):
            self._check_version(sender, msg.version)
        skip = SKIP_BELOW.get(nxt)
        if skip is not None and self._version < skip[0]:
            nxt = skip[1]
        return nxt

    def _check_version(self, sender: Role, version: int) -> None:
        if sender is Role.CLIENT:
            # Only as the first request: git-annex's gateways treat a second one as a protocol
            # error (its plain server answers it again, but no client sends one).
            if self._version_settled:
                raise _Illegal("VERSION was already negotiated")
            if self.role is Role.CLIENT and version > self.max_version:
                raise _Illegal(f"cannot offer version {version} above {self.max_version}")
            return
        assert self._offered is not None  # AWAIT_VERSION is only reached through an offer
        limit = min(self._offered, self.max_version) if self.role is Role.SERVER else self._offered
        if version > limit:
            raise _Illegal(f"VERSION {version} answers an offer of {self._offered}")

    def _apply(self, sender: Role, msg: Message, nxt: State) -> None:
        before = self._state
        self._state = nxt
        if before is State.IDLE and not isinstance(msg, Auth | Version):
            self._version_settled = True  # a client that starts without VERSION speaks v0
        if isinstance(msg, Version):
            if sender is Role.CLIENT:
                self._offered = msg.version
            else:
                self._version = msg.version
                self._version_settled = True
        elif before is State.AWAIT_VERSION:
            self._version_settled = True  # ERROR: an old server, stay at v0
        elif isinstance(msg, Auth):
            self._auth_uuid = msg.uuid
        elif isinstance(msg, AuthSuccess):
            if self.role is Role.CLIENT:
                self._peer_uuid = msg.uuid
            elif before is State.AWAIT_AUTH:
                self._peer_uuid = self._auth_uuid
        elif isinstance(msg, DataHeader):
            if sender is self.role:
                self._out_remaining = msg.length
            else:
                self._in_remaining = msg.length

    def _reject(self, reason: str, *, unparsable: bool) -> NoReturn:
        expectation = EXPECTATIONS.get((self.role, self._state))
        text = None
        if expectation is not None:
            text = expectation.error_text(self._version, unparsable=unparsable)
            if expectation.resume is not None:
                where = self._state.value
                self._state = expectation.resume
                self._owed_error = text
                raise RemoteProtocolError(f"{reason} (in {where})", error_text=text, fatal=False)
        self._break(reason, text)

    def _break(self, reason: str, error_text: str | None) -> NoReturn:
        exc = RemoteProtocolError(
            f"{reason} (in {self._state.value})", error_text=error_text, fatal=True
        )
        self._state = State.BROKEN
        self._owed_error = error_text
        self._in_remaining = None
        self._broken = exc
        raise exc
