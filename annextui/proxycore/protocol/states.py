"""The conversation as data: states, who may speak in each, and the legal transitions.

Both ends of a connection walk the same state machine, because the protocol is strictly
request/reply: every message moves the one shared conversation state, whichever side sent it.
DATA bodies are not modelled here; the connection frames them separately, in each direction.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType
from typing import Final

from annextui.values import Value

from .messages import (
    AlreadyHave,
    AlreadyHavePlus,
    Auth,
    AuthFailure,
    AuthSuccess,
    Bypass,
    Changed,
    CheckPresent,
    Connect,
    ConnectDone,
    DataHeader,
    DataPresent,
    Error,
    Failure,
    FailurePlus,
    Get,
    GetTimestamp,
    Invalid,
    LockContent,
    Message,
    NotifyChange,
    Put,
    PutFrom,
    Remove,
    RemoveBefore,
    Success,
    SuccessPlus,
    Timestamp,
    UnlockContent,
    Valid,
    Version,
)


class Role(Enum):
    CLIENT = "client"  # opened the connection, makes requests
    SERVER = "server"  # answers them (git-annex-shell p2pstdio, a gateway, a node)

    # Members are singletons compared by identity: hashed so too, in C (Enum's own
    # `hash(self._name_)` is a Python call, and every message looks states and roles up in
    # the tables below several times).
    __hash__ = object.__hash__

    @property
    def peer(self) -> Role:
        return Role.SERVER if self is Role.CLIENT else Role.CLIENT


class State(Enum):
    __hash__ = object.__hash__  # as Role's

    GREETING = "greeting"  # server owes its unsolicited AUTH-SUCCESS (ssh transports)
    IDLE = "idle"  # client's turn to make a request
    AWAIT_AUTH = "await-auth"
    AWAIT_VERSION = "await-version"
    AWAIT_PRESENCE = "await-presence"  # CHECKPRESENT sent
    AWAIT_LOCK = "await-lock"
    LOCKED = "locked"  # content locked: the client's next line must be UNLOCKCONTENT
    AWAIT_REMOVE = "await-remove"  # REMOVE or REMOVE-BEFORE sent
    AWAIT_TIMESTAMP = "await-timestamp"
    AWAIT_PUT_REPLY = "await-put-reply"  # PUT sent
    AWAIT_PUT_DATA = "await-put-data"  # PUT-FROM sent: client owes DATA or DATA-PRESENT
    AWAIT_PUT_VALIDITY = "await-put-validity"  # client's body sent: it owes VALID/INVALID
    AWAIT_PUT_RESULT = "await-put-result"
    AWAIT_GET_DATA = "await-get-data"  # GET sent
    AWAIT_GET_VALIDITY = "await-get-validity"  # server's body sent: it owes VALID/INVALID
    AWAIT_GET_ACK = "await-get-ack"  # client owes SUCCESS/FAILURE for what it received
    AWAIT_CHANGED = "await-changed"
    TUNNEL = "tunnel"  # after CONNECT: both sides send DATA frames
    TUNNEL_CLIENT_DONE = "tunnel-client-done"
    TUNNEL_SERVER_DONE = "tunnel-server-done"
    CLOSED = "closed"  # conversation over (client gave up, tunnel ended, or EOF)
    BROKEN = "broken"  # the peer violated the protocol beyond recovery


C, S = Role.CLIENT, Role.SERVER

TURN: Final[Mapping[State, frozenset[Role]]] = MappingProxyType(
    {
        State.GREETING: frozenset({S}),
        State.IDLE: frozenset({C}),
        State.AWAIT_AUTH: frozenset({S}),
        State.AWAIT_VERSION: frozenset({S}),
        State.AWAIT_PRESENCE: frozenset({S}),
        State.AWAIT_LOCK: frozenset({S}),
        State.LOCKED: frozenset({C}),
        State.AWAIT_REMOVE: frozenset({S}),
        State.AWAIT_TIMESTAMP: frozenset({S}),
        State.AWAIT_PUT_REPLY: frozenset({S}),
        State.AWAIT_PUT_DATA: frozenset({C}),
        State.AWAIT_PUT_VALIDITY: frozenset({C}),
        State.AWAIT_PUT_RESULT: frozenset({S}),
        State.AWAIT_GET_DATA: frozenset({S}),
        State.AWAIT_GET_VALIDITY: frozenset({S}),
        State.AWAIT_GET_ACK: frozenset({C}),
        State.AWAIT_CHANGED: frozenset({S}),
        State.TUNNEL: frozenset({C, S}),
        State.TUNNEL_CLIENT_DONE: frozenset({S}),
        # The client may still be sending when the server's CONNECTDONE crosses it.
        State.TUNNEL_SERVER_DONE: frozenset({C}),
        State.CLOSED: frozenset(),
        State.BROKEN: frozenset(),
    }
)
"""Who may send a message in each state. The other side reads; a side whose turn it is doesn't."""

_RESULT = (Success, Failure, Error)
_RESULT_PLUS = (Success, Failure, SuccessPlus, FailurePlus, Error)

_ROWS: list[tuple[State, Role, tuple[type[Message], ...], State]] = [
    (State.GREETING, S, (AuthSuccess,), State.IDLE),
    # Requests.
    (State.IDLE, C, (Auth,), State.AWAIT_AUTH),
    (State.IDLE, C, (Version,), State.AWAIT_VERSION),
    (State.IDLE, C, (CheckPresent,), State.AWAIT_PRESENCE),
    (State.IDLE, C, (LockContent,), State.AWAIT_LOCK),
    (State.IDLE, C, (Remove, RemoveBefore), State.AWAIT_REMOVE),
    (State.IDLE, C, (GetTimestamp,), State.AWAIT_TIMESTAMP),
    (State.IDLE, C, (Get,), State.AWAIT_GET_DATA),
    (State.IDLE, C, (Put,), State.AWAIT_PUT_REPLY),
    (State.IDLE, C, (NotifyChange,), State.AWAIT_CHANGED),
    (State.IDLE, C, (Connect,), State.TUNNEL),
    (State.IDLE, C, (Bypass,), State.IDLE),
    # A client's ERROR between requests makes the server give up.
    (State.IDLE, C, (Error,), State.CLOSED),
    # Replies.
    (State.AWAIT_AUTH, S, (AuthSuccess, AuthFailure, Error), State.IDLE),
    # An old server answers VERSION with ERROR; the client then speaks v0.
    (State.AWAIT_VERSION, S, (Version, Error), State.IDLE),
    (State.AWAIT_PRESENCE, S, _RESULT, State.IDLE),
    (State.AWAIT_LOCK, S, (Success,), State.LOCKED),
    (State.AWAIT_LOCK, S, (Failure, Error), State.IDLE),
    (State.LOCKED, C, (UnlockContent,), State.IDLE),
    (State.AWAIT_REMOVE, S, _RESULT_PLUS, State.IDLE),
    (State.AWAIT_TIMESTAMP, S, (Timestamp, Error), State.IDLE),
    (State.AWAIT_PUT_REPLY, S, (AlreadyHave, AlreadyHavePlus, Error), State.IDLE),
    (State.AWAIT_PUT_REPLY, S, (PutFrom,), State.AWAIT_PUT_DATA),
    (State.AWAIT_PUT_DATA, C, (DataHeader,), State.AWAIT_PUT_VALIDITY),
    (State.AWAIT_PUT_DATA, C, (DataPresent,), State.AWAIT_PUT_RESULT),
    # The server fails the PUT without a reply.
    (State.AWAIT_PUT_DATA, C, (Error,), State.IDLE),
    (State.AWAIT_PUT_VALIDITY, C, (Valid, Invalid), State.AWAIT_PUT_RESULT),
    (State.AWAIT_PUT_RESULT, S, _RESULT_PLUS, State.IDLE),
    (State.AWAIT_GET_DATA, S, (DataHeader,), State.AWAIT_GET_VALIDITY),
    (State.AWAIT_GET_DATA, S, (Error,), State.IDLE),
    (State.AWAIT_GET_VALIDITY, S, (Valid, Invalid), State.AWAIT_GET_ACK),
    # git-annex's server reads the ack with the same helper as PUT results, PLUS forms included.
    (State.AWAIT_GET_ACK, C, _RESULT_PLUS, State.IDLE),
    (State.AWAIT_CHANGED, S, (Changed, Error), State.IDLE),
    # Tunnel to a git service.
    (State.TUNNEL, C, (DataHeader,), State.TUNNEL),
    (State.TUNNEL, S, (DataHeader,), State.TUNNEL),
    (State.TUNNEL, C, (ConnectDone,), State.TUNNEL_CLIENT_DONE),
    (State.TUNNEL, S, (ConnectDone,), State.TUNNEL_SERVER_DONE),
    # A refused CONNECT (read-only repository) ends the connection.
    (State.TUNNEL, S, (Error,), State.CLOSED),
    (State.TUNNEL_CLIENT_DONE, S, (DataHeader,), State.TUNNEL_CLIENT_DONE),
    (State.TUNNEL_CLIENT_DONE, S, (ConnectDone,), State.CLOSED),
    (State.TUNNEL_SERVER_DONE, C, (DataHeader,), State.TUNNEL_SERVER_DONE),
    (State.TUNNEL_SERVER_DONE, C, (ConnectDone,), State.CLOSED),
]

TRANSITIONS: Final[Mapping[tuple[State, Role, type[Message]], State]] = MappingProxyType(
    {(state, role, cls): nxt for state, role, classes, nxt in _ROWS for cls in classes}
)
"""(state, sender, message type) -> next state. A missing entry is a protocol violation."""

SKIP_BELOW: Final[Mapping[State, tuple[int, State]]] = MappingProxyType(
    {
        # Before v1 no VALID/INVALID line follows a DATA body.
        State.AWAIT_PUT_VALIDITY: (1, State.AWAIT_PUT_RESULT),
        State.AWAIT_GET_VALIDITY: (1, State.AWAIT_GET_ACK),
    }
)
"""States that do not exist below a version, and the state used instead."""

MIN_VERSION: Final[Mapping[type[Message], int]] = MappingProxyType(
    {
        Bypass: 2,
        SuccessPlus: 2,
        FailurePlus: 2,
        AlreadyHavePlus: 2,
        GetTimestamp: 3,
        RemoveBefore: 3,
        DataPresent: 4,
        # VALID/INVALID (v1) are gated by SKIP_BELOW, and TIMESTAMP by the GETTIMESTAMP it
        # answers, so a server that accepted a v2 GETTIMESTAMP may still reply.
    }
)
"""The first negotiated version at which a message may be sent."""

LENIENT_REQUESTS: Final = frozenset({Bypass, GetTimestamp, RemoveBefore})
"""Requests git-annex's server accepts below their version (it checks no version for them)."""


class Expectation(Value):
    """What a reader says when the peer sends the wrong thing in a state, and what follows.

    `resume` is the state git-annex carries on in after answering `ERROR <text>`; None means
    the connection cannot continue.
    """

    text: str
    text_v2: str | None = None  # once PLUS replies exist git-annex lists them too
    unknown: str | None = None  # text for an unparsable line, when it differs
    resume: State | None = None

    def error_text(self, version: int, *, unparsable: bool) -> str:
        if unparsable and self.unknown is not None:
            return self.unknown
        if version >= 2 and self.text_v2 is not None:
            return self.text_v2
        return self.text


_SF = "expected SUCCESS or FAILURE"
_SF_PLUS = "expected SUCCESS or SUCCESS-PLUS or FAILURE or FAILURE-PLUS"
_TUNNEL = "expected DATA or CONNECTDONE"

EXPECTATIONS: Final[Mapping[tuple[Role, State], Expectation]] = MappingProxyType(
    {
        # A server recovers from a bad client line and keeps serving (git-annex's serverLoop).
        (S, State.IDLE): Expectation(
            "unexpected command", unknown="unknown command", resume=State.IDLE
        ),
        (S, State.LOCKED): Expectation("expected UNLOCKCONTENT", resume=State.IDLE),
        (S, State.AWAIT_PUT_DATA): Expectation("expected DATA", resume=State.IDLE),
        # The content is then verified in full and the server still answers SUCCESS/FAILURE.
        (S, State.AWAIT_PUT_VALIDITY): Expectation(
            "expected VALID or INVALID", resume=State.AWAIT_PUT_RESULT
        ),
        (S, State.AWAIT_GET_ACK): Expectation(_SF, _SF_PLUS, resume=State.IDLE),
        (S, State.TUNNEL): Expectation(_TUNNEL),
        (S, State.TUNNEL_SERVER_DONE): Expectation(_TUNNEL),
        # A client answers a bad reply with ERROR, which makes git-annex's server quit: fatal.
        (C, State.GREETING): Expectation("auth failed"),
        (C, State.AWAIT_AUTH): Expectation("auth failed"),
        (C, State.AWAIT_VERSION): Expectation("expected VERSION"),
        (C, State.AWAIT_PRESENCE): Expectation(_SF),
        (C, State.AWAIT_LOCK): Expectation(_SF),
        (C, State.AWAIT_REMOVE): Expectation(_SF, _SF_PLUS),
        (C, State.AWAIT_TIMESTAMP): Expectation("expected TIMESTAMP"),
        (C, State.AWAIT_PUT_REPLY): Expectation("expected PUT_FROM or ALREADY_HAVE"),
        (C, State.AWAIT_PUT_RESULT): Expectation(_SF, _SF_PLUS),
        (C, State.AWAIT_GET_DATA): Expectation("expected DATA"),
        (C, State.AWAIT_GET_VALIDITY): Expectation("expected VALID or INVALID"),
        (C, State.AWAIT_CHANGED): Expectation("expected CHANGED"),
        (C, State.TUNNEL): Expectation(_TUNNEL),
        (C, State.TUNNEL_CLIENT_DONE): Expectation(_TUNNEL),
    }
)
"""(reading role, state) -> how git-annex reacts to a line it did not expect there."""


def _index() -> dict[tuple[State, Role], frozenset[type[Message]]]:
    out: dict[tuple[State, Role], set[type[Message]]] = {}
    for state, role, cls in TRANSITIONS:
        out.setdefault((state, role), set()).add(cls)
    return {k: frozenset(v) for k, v in out.items()}


ALLOWED: Final[Mapping[tuple[State, Role], frozenset[type[Message]]]] = MappingProxyType(_index())
"""(state, sender) -> message types with a transition, before version gates."""
