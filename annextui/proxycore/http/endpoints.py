"""One p2phttp request run against a `Peer`, as one short P2P session (`P2P/Http/Server.hs`).

The adapter (server.py) has parsed and authorised the request and built the Peer; here the
request becomes Peer calls and the answer becomes JSON or a body. Bodies move through the
`Body`/`Reply` interfaces in large blocks, never whole in memory; a GET body goes out of the
object file with `sendfile` where the transport allows.

Answers follow the real server (spec section 4-7): GET of absent content is 200 with
`X-git-annex-data-length: 0`; a GET whose file changed while it was read is sent one byte
short, so the client rejects it; v2+ results always carry `plusuuids`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from typing import Protocol

from annextui.proxycore.http.locks import LockRegistry
from annextui.proxycore.http.routes import ApiRequest, Endpoint, HttpError
from annextui.proxycore.peer import (
    AlreadyHave,
    Incoming,
    Outcome,
    Outgoing,
    Peer,
    PeerFatal,
    read_into_full,
)

BLOCK = 1 << 20
DRAIN_BLOCK = 1 << 14
WHOLE_BODY = 1 << 16  # a GET body up to this size is read whole and sent as one chunk
DATA_LENGTH = "X-git-annex-data-length"
JSON_TYPE = "application/json;charset=utf-8"
OCTETS = "application/octet-stream"
KEEPLOCKED_LINE_MAX = 4096


class Body(Protocol):
    """The request body, read as it arrives."""

    def readinto(self, buf: memoryview) -> int:
        """Bytes read into `buf`; 0 at the end of the body. Raises OSError when the client
        is gone."""
        ...


class Reply(Protocol):
    """The response: `start` once, then body pieces (chunked), then `end`."""

    def start(self, status: int, headers: list[tuple[str, str]]) -> None: ...

    def write(self, data: bytes | memoryview) -> None: ...

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        """Up to `count` bytes of `fd` from `offset` as one body piece; 0 when the transport
        cannot (TLS): the caller reads and writes instead."""
        ...

    def end(self) -> None: ...


class Session:
    """What one request runs with: its Peer, the lock registry, and a hook for the status
    (in-flight transfers)."""

    def __init__(
        self,
        peer: Peer,
        locks: LockRegistry,
        *,
        transfer: Callable[[str, str, int], Callable[[int], None]] | None = None,
    ) -> None:
        self.peer = peer
        self.locks = locks
        self._transfer = transfer
        self.keeps_peer = False  # True when a held lock owns the Peer now

    def progress(self, direction: str, key: str, length: int) -> Callable[[int], None]:
        if self._transfer is None:
            return lambda n: None
        return self._transfer(direction, key, length)


def json_reply(reply: Reply, value: dict[str, object]) -> None:
    body = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    reply.start(200, [("Content-Type", JSON_TYPE)])
    reply.write(body)
    reply.end()


def _plus(req: ApiRequest, result: dict[str, object], plus: tuple[str, ...] | None) -> None:
    if req.version >= 2:
        result["plusuuids"] = list(plus or ())


def drain(body: Body) -> int:
    """Read and drop the rest of the body (so the connection can serve the next request).

    Most requests have none: a small buffer, as every one of them allocates it (a megabyte
    per request stayed resident in each thread's malloc arena, 20 clients at once)."""
    buf = memoryview(bytearray(DRAIN_BLOCK))
    total = 0
    while n := body.readinto(buf):
        total += n
    return total


def run(
    req: ApiRequest, session: Session, body: Body, reply: Reply, data_length: str | None
) -> None:
    """Answer `req`. HttpError for answers other than 200; OSError when the client is gone."""
    peer = session.peer
    ep = req.endpoint
    if ep is Endpoint.KEEPLOCKED:
        keeplocked(req, session, body, reply)
        return
    if ep is Endpoint.GETTIMESTAMP:
        drain(body)
        json_reply(reply, {"timestamp": peer.timestamp()})
        return
    key = req.key()
    if ep is Endpoint.PUT:
        put(req, session, body, reply, data_length)
        return
    drain(body)
    if ep is Endpoint.GET:
        get(req, session, reply)
    elif ep is Endpoint.CHECKPRESENT:
        json_reply(reply, {"present": peer.check_present(key)})
    elif ep is Endpoint.LOCKCONTENT:
        lockcontent(req, session, reply)
    elif ep in (Endpoint.REMOVE, Endpoint.REMOVE_BEFORE):
        before = req.number("timestamp") if ep is Endpoint.REMOVE_BEFORE else None
        try:
            outcome = peer.remove(key, before=before)
        except PeerFatal:
            # Locked (by a lockcontent of ours or a git-annex process): not removed. Upstream
            # answers 500 here, which a client reports as a failure of the whole drop.
            outcome = Outcome(False)
        result: dict[str, object] = {"removed": outcome.ok}
        _plus(req, result, outcome.plus)
        json_reply(reply, result)
    elif ep is Endpoint.PUTOFFSET:
        putoffset(req, session, reply)
    else:  # pragma: no cover - routes.py knows no other endpoint
        raise HttpError(404)


# -- GET -------------------------------------------------------------------------------------------


def get(req: ApiRequest, session: Session, reply: Reply) -> None:
    offset = req.number("offset", default=0)
    af = req.optional_value("associatedfile")
    out = session.peer.get(req.key(), offset, af)
    if out is None:
        reply.start(200, [("Content-Type", OCTETS), (DATA_LENGTH, "0")])
        reply.end()
        return
    ok = False
    try:
        reply.start(200, [("Content-Type", OCTETS), (DATA_LENGTH, str(out.length))])
        if req.method == "HEAD":
            reply.end()
            return
        ok = _send(out, reply, session.progress("upload", str(req.key()), out.length))
        reply.end()
    finally:
        with contextlib.suppress(Exception):
            out.close(Outcome(ok) if ok or req.method != "HEAD" else None)


def _send(out: Outgoing, reply: Reply, progress: Callable[[int], None]) -> bool:
    """Every byte but the last, then the last only if the content stayed unchanged (VALID):
    one byte short is how p2phttp tells a client the file changed while it was sent."""
    if out.length <= WHOLE_BODY:
        return _send_whole(out, reply, progress)
    length = out.length
    fd = out.fileno()
    pos = out.offset
    held = max(0, length - 1)
    buf: memoryview | None = None  # only when sendfile cannot: the body leaves the file by it
    sent = 0
    while sent < held:
        want = min(BLOCK, held - sent)
        n = reply.sendfile(fd, pos + sent, want) if fd is not None else 0
        if n:
            out.advance(n)
        else:
            fd = None  # not possible here (TLS): read and write instead
            if buf is None:
                buf = memoryview(bytearray(min(BLOCK, length)))
            n = out.readinto(buf[:want])
            if n <= 0:
                raise PeerFatal("content ended before its announced length")
            reply.write(buf[:n])
        sent += n
        progress(sent)
    last = b""
    if length:
        if fd is not None:
            last = os.pread(fd, 1, pos + held)
            out.advance(len(last))
        else:
            one = bytearray(1)
            n = out.readinto(memoryview(one))
            last = bytes(one[:n])
    out.body_sent()
    valid = out.valid() and len(last) == (1 if length else 0)
    if valid and last:
        reply.write(last)
    return valid


def _send_whole(out: Outgoing, reply: Reply, progress: Callable[[int], None]) -> bool:
    """A small body read whole, checked, then written as one piece: one chunk on the wire, as
    git-annex's own server sends it. The last byte held back in a chunk of its own made the
    real client handle two chunks, and update its progress twice, for every small GET."""
    length = out.length
    fd = out.fileno()
    if fd is not None:
        data = os.pread(fd, length, out.offset)
        out.advance(len(data))
    else:
        buf = bytearray(length)
        data = bytes(buf[: read_into_full(out, memoryview(buf))])
    held = max(0, length - 1)
    if len(data) < held:
        raise PeerFatal("content ended before its announced length")
    progress(held)
    out.body_sent()
    valid = out.valid() and len(data) == length
    reply.write(data if valid else data[:held])
    return valid


# -- locks -----------------------------------------------------------------------------------------


def lockcontent(req: ApiRequest, session: Session, reply: Reply) -> None:
    key = req.key()
    lockid = None
    if session.locks.reserve():
        lock = session.peer.lock_content(key)
        if lock is not None:
            lockid = session.locks.add(lock, session.peer, str(key))
            session.keeps_peer = True  # the registry closes the Peer with the lock
    json_reply(reply, {"locked": True, "lockid": lockid} if lockid else {"locked": False})


def keeplocked(req: ApiRequest, session: Session, body: Body, reply: Reply) -> None:
    """Hold the lock while the body streams `{"unlock":false}` lines; release it at
    `{"unlock":true}`, at the end of the body, or when the client is gone (the OSError
    propagates after the release)."""
    lockid = req.required("lockid")
    locks = session.locks
    kept = locks.keep(lockid)
    try:
        pending = b""
        buf = memoryview(bytearray(KEEPLOCKED_LINE_MAX))
        while kept:
            n = body.readinto(buf)
            if not n:
                break
            pending += bytes(buf[:n])
            *lines, pending = pending.split(b"\n")
            if any(_unlock(line) for line in lines) or len(pending) > KEEPLOCKED_LINE_MAX:
                break
    finally:
        locks.release(lockid)
    drain(body)
    json_reply(reply, {"locked": False})


def _unlock(line: bytes) -> bool:
    try:
        value = json.loads(line) if line.strip() else None
    except ValueError:
        return True  # garbage: stop holding the lock rather than guess
    return isinstance(value, dict) and value.get("unlock") is True


# -- PUT -------------------------------------------------------------------------------------------


def putoffset(req: ApiRequest, session: Session, reply: Reply) -> None:
    answer = session.peer.put(req.key(), None)
    if isinstance(answer, AlreadyHave):
        result: dict[str, object] = {"alreadyhave": True}
        _plus(req, result, answer.plus)
        json_reply(reply, result)
        return
    offset = answer.offset
    answer.abort()  # nothing was sent: what is in annex/tmp stays for the put
    json_reply(reply, {"offset": offset})


def put(
    req: ApiRequest, session: Session, body: Body, reply: Reply, data_length: str | None
) -> None:
    if data_length is None:
        raise HttpError(400, f"Header {DATA_LENGTH} is required")
    key = req.key()
    present_only = req.version >= 4 and req.param("data-present") == "true"
    if not present_only and not data_length.isdigit():
        raise HttpError(400, f"Error parsing header {DATA_LENGTH} failed")
    offset = req.number("offset", default=0)
    af = req.optional_value("associatedfile")
    answer = session.peer.put(key, af)
    result: dict[str, object]
    if isinstance(answer, AlreadyHave):
        drain(body)
        result = {"stored": True}
        _plus(req, result, answer.plus)
        json_reply(reply, result)
        return
    outcome = _receive(
        answer,
        body,
        offset,
        None if present_only else int(data_length),
        session.progress("download", str(key), key.size or 0),
    )
    result = {"stored": outcome.ok}
    _plus(req, result, outcome.plus)
    json_reply(reply, result)


def _receive(
    inc: Incoming, body: Body, offset: int, length: int | None, progress: Callable[[int], None]
) -> Outcome:
    """The body into `inc`: resumed at the server's own offset (body bytes before it are
    skipped); a body that starts past it is unusable. Fewer bytes than announced is the
    client's INVALID, as is a longer body (cut at the announced length)."""
    try:
        if length is None:
            drain(body)
            return inc.data_present()
        skip = inc.offset - offset
        if skip < 0 or skip > length:
            inc.abort()
            drain(body)
            return Outcome(False)
        want = length - skip
        inc.begin(want)
        buf = memoryview(bytearray(min(BLOCK, max(length, DRAIN_BLOCK))))
        got = 0
        extra = 0
        while n := body.readinto(buf):
            piece = buf[:n]
            if skip:
                cut = min(skip, n)
                skip -= cut
                piece = piece[cut:]
            room = want - got
            if len(piece) > room:
                extra += len(piece) - room
                piece = piece[:room]
            if piece:
                inc.write(piece)
                got += len(piece)
                progress(inc.offset + got)
        if skip:
            valid = False  # the body ended inside the part the server already had
        else:
            valid = got == want and not extra
        return inc.finish(valid)
    except BaseException:
        with contextlib.suppress(Exception):
            inc.abort()
        raise
