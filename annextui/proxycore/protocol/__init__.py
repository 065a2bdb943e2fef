"""The git-annex P2P protocol (line serialization, versions 0-4), sans-IO.

Shaped like h11: one `Connection` per side, bytes in (`receive_data`), events out
(`next_event`), messages out as bytes (`send`, `send_data`). Version negotiation, DATA framing
and request/reply order are tracked inside the connection; illegal steps raise
`LocalProtocolError` (ours: nothing was sent) or `RemoteProtocolError` (theirs, carrying the
`ERROR` text git-annex would answer and whether the connection survives).

Public API
----------
messages (frozen dataclasses, one per wire word; `parse_message(line: bytes) -> Message`,
`serialize_message(msg) -> bytes` with the newline; `ProtocolParseError` = `unknown command`;
`parse_wire_key(text) -> Key`: a message's key parsed, the last ones remembered):
    Auth(uuid, token)  AuthSuccess(uuid)  AuthFailure()  Version(version)  Bypass(uuids)
    CheckPresent(key)  LockContent(key)  UnlockContent()  Remove(key)  RemoveBefore(timestamp, key)
    GetTimestamp()  Timestamp(timestamp)  Get(offset, associated_file, key)
    Put(associated_file, key)  PutFrom(offset)  DataHeader(length)  DataPresent()  Valid()
    Invalid()  Success()  Failure()  SuccessPlus(uuids)  FailurePlus(uuids)  AlreadyHave()
    AlreadyHavePlus(uuids)  Connect(service: Service)  ConnectDone(exit_code)  NotifyChange()
    Changed(refs)  Error(text)
    Keys are key text (validated by `backend.keys.parse_key`); `associated_file` is the decoded
    path or None (`encode_associated_file` / `decode_associated_file`); lists are tuples.
connection:
    Connection(role: Role, *, greeting=False, max_version=4)
        .receive_data(data: bytes) -> None            # b"" = EOF
        .next_event() -> Message | Data | EndOfData | ConnectionClosed | NEED_DATA | PAUSED
        .send(msg: Message) -> bytes                  .send_data(chunk: bytes) -> bytes
        .state: State  .version  .offered_version  .peer_uuid  .incoming_remaining
        .outgoing_remaining  .owed_error  .our_turn  .sendable() -> frozenset[type[Message]]
        .may_send(cls) -> bool                        # cls in .sendable(), cheaply
    Role.CLIENT / Role.SERVER; State (see `states.TRANSITIONS`, `states.TURN`); MAX_LINE
    events: Data(data)  EndOfData()  ConnectionClosed()  NEED_DATA  PAUSED
    errors: ProtocolError > LocalProtocolError, RemoteProtocolError(.fatal), ProtocolParseError;
            all carry .error_text
replies (bytes for typical sequences, right for the negotiated version):
    answer_version(conn)  reply_result(conn, ok, uuids=())  reply_already_have(conn, uuids=())
    send_content(conn, length, chunks, *, valid=True) -> Iterator[bytes]
    content(conn, body, *, valid=True)  no_content(conn)
transport adapter:
    BlockingConnection(conn, read, write, *, read_size=65536, readinto=None): next_event(),
        next_message(), send(*msgs), send_data(chunk), send_content(...), iter_body(),
        read_body(), .eof
The tests' in-memory client/server pair and reference server on a dict (`ConnectionPair`,
`MemoryServer`) live in tests/support/, not here.

A server loop (`store` is the caller's; body chunks stream in, nothing is buffered whole):

    conn = Connection(Role.SERVER, greeting=True)
    out = conn.send(AuthSuccess(my_uuid))
    conn.receive_data(incoming)  # bytes from the client as they arrive; b"" at EOF
    while not isinstance(ev := conn.next_event(), Wait | ConnectionClosed):
        match ev:
            case Version(): out += answer_version(conn)
            case CheckPresent(key=k): out += reply_result(conn, store.has(k))
            case Put(key=k): out += conn.send(PutFrom(store.partial_size(k)))
            case Data(data=chunk): store.append(chunk)
            case Valid() | Invalid(): out += reply_result(conn, store.finish(ev == Valid()))
            case EndOfData() if conn.state is State.AWAIT_PUT_RESULT:  # v0: no VALID line
                out += reply_result(conn, store.finish(None))

On a recoverable `RemoteProtocolError` send `Error(exc.error_text)` and carry on; on a fatal one
close. tests/support/memory_server.py is the complete version of this loop.

Worth knowing:
* `next_event()` returns PAUSED while it is our turn: a peer's pipelined lines stay unread until
  we have answered, as in git-annex. A client must read the greeting before sending.
* `receive_data(b"")` means EOF: an adapter must pass empty input only at end of stream.
* VERSION is accepted only as the first request (git-annex's plain server would renegotiate,
  its gateways refuse; no client does it). GETTIMESTAMP, REMOVE-BEFORE and BYPASS are accepted
  from clients below their version, as git-annex's server does; we never send them early.
* Values are stricter than git-annex's `readish` (`GET 6x` is "unknown command" here) while the
  tokenizer matches it exactly, including `SUCCESS ` (one trailing space) parsing. The interop
  tests pin both against the real binary.
"""

from .blocking import BlockingConnection
from .connection import MAX_LINE, Connection
from .errors import LocalProtocolError, ProtocolError, ProtocolParseError, RemoteProtocolError
from .events import NEED_DATA, PAUSED, ConnectionClosed, Data, EndOfData, Event, NextEvent, Wait
from .messages import (
    MAX_VERSION,
    MESSAGE_TYPES,
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
    Service,
    Success,
    SuccessPlus,
    Timestamp,
    UnlockContent,
    Valid,
    Version,
    decode_associated_file,
    encode_associated_file,
    parse_message,
    parse_wire_key,
    serialize_message,
)
from .replies import (
    answer_version,
    content,
    no_content,
    reply_already_have,
    reply_result,
    send_content,
)
from .states import Role, State

__all__ = [
    "MAX_LINE",
    "MAX_VERSION",
    "MESSAGE_TYPES",
    "NEED_DATA",
    "PAUSED",
    "AlreadyHave",
    "AlreadyHavePlus",
    "Auth",
    "AuthFailure",
    "AuthSuccess",
    "BlockingConnection",
    "Bypass",
    "Changed",
    "CheckPresent",
    "Connect",
    "ConnectDone",
    "Connection",
    "ConnectionClosed",
    "Data",
    "DataHeader",
    "DataPresent",
    "EndOfData",
    "Error",
    "Event",
    "Failure",
    "FailurePlus",
    "Get",
    "GetTimestamp",
    "Invalid",
    "LocalProtocolError",
    "LockContent",
    "Message",
    "NextEvent",
    "NotifyChange",
    "ProtocolError",
    "ProtocolParseError",
    "Put",
    "PutFrom",
    "RemoteProtocolError",
    "Remove",
    "RemoveBefore",
    "Role",
    "Service",
    "State",
    "Success",
    "SuccessPlus",
    "Timestamp",
    "UnlockContent",
    "Valid",
    "Version",
    "Wait",
    "answer_version",
    "content",
    "decode_associated_file",
    "encode_associated_file",
    "no_content",
    "parse_message",
    "parse_wire_key",
    "reply_already_have",
    "reply_result",
    "send_content",
    "serialize_message",
]
