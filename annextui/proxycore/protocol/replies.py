"""Typical multi-message sequences, built on a Connection so they pick the right form for the
negotiated version (PLUS replies only at v2+, VALID/INVALID only at v1+).

All return the bytes to write; none does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from .connection import Connection
from .errors import LocalProtocolError
from .messages import (
    AlreadyHave,
    AlreadyHavePlus,
    DataHeader,
    Failure,
    FailurePlus,
    Invalid,
    Success,
    SuccessPlus,
    Valid,
    Version,
)
from .states import State


def answer_version(conn: Connection) -> bytes:
    """Answer the client's VERSION with min(offer, conn.max_version)."""
    if conn.state is not State.AWAIT_VERSION or conn.offered_version is None:
        raise LocalProtocolError("no VERSION offer to answer")
    return conn.send(Version(min(conn.offered_version, conn.max_version)))


def reply_result(conn: Connection, ok: bool, uuids: Iterable[str] = ()) -> bytes:
    """SUCCESS/FAILURE, or SUCCESS-PLUS/FAILURE-PLUS when there are UUIDs to report and the
    peer and the request allow PLUS replies (git-annex sends plain forms to v0/v1 clients)."""
    listed = tuple(uuids)
    plus = SuccessPlus if ok else FailurePlus
    if listed and conn.may_send(plus):
        return conn.send(plus(listed))
    return conn.send(Success() if ok else Failure())


def reply_already_have(conn: Connection, uuids: Iterable[str] = ()) -> bytes:
    """ALREADY-HAVE, or ALREADY-HAVE-PLUS with the holders when the client speaks v2+."""
    listed = tuple(uuids)
    if listed and conn.may_send(AlreadyHavePlus):
        return conn.send(AlreadyHavePlus(listed))
    return conn.send(AlreadyHave())


def send_content(
    conn: Connection,
    length: int,
    chunks: Iterable[bytes],
    *,
    valid: bool | Callable[[], bool] = True,
) -> Iterator[bytes]:
    """Stream `DATA <length>`, the body from `chunks`, then VALID/INVALID when the version has it.

    Works for a server answering GET and a client answering PUT-FROM. `valid` may be a callable,
    evaluated after the body, for a sender that checks its file did not change meanwhile.
    Raises LocalProtocolError if `chunks` holds more or fewer than `length` bytes; the
    protocol has no in-band abort, so the caller must then close the connection.
    """
    yield conn.send(DataHeader(length))
    for chunk in chunks:
        if chunk:
            yield conn.send_data(chunk)
    if conn.outgoing_remaining:
        raise LocalProtocolError(
            f"content ended {conn.outgoing_remaining} bytes short: close the connection"
        )
    if conn.may_send(Valid):
        ok = valid() if callable(valid) else valid
        yield conn.send(Valid() if ok else Invalid())


def content(conn: Connection, body: bytes, *, valid: bool = True) -> bytes:
    """`send_content` for a body already in memory."""
    return b"".join(send_content(conn, len(body), (body,), valid=valid))


def no_content(conn: Connection) -> bytes:
    """git-annex's answer to GET of content it does not have: `DATA 0`, then `INVALID` (v1+)."""
    return content(conn, b"", valid=False)
