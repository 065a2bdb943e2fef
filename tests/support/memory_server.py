"""A reference P2P server over an in-memory object store (test support, not shipped).

It answers like `git-annex-shell p2pstdio` on its own repository (replies checked against
10.20261026 in the interop tests), using only the public API. Use it as a fake node or remote
in gateway tests, and as the worked example of a handler loop.
"""

from __future__ import annotations

from collections.abc import Callable

from annextui.backend.keys import digest_matches, hasher_for, parse_key
from annextui.proxycore.protocol.connection import Connection
from annextui.proxycore.protocol.errors import RemoteProtocolError
from annextui.proxycore.protocol.events import ConnectionClosed, Data, EndOfData, Event, Wait
from annextui.proxycore.protocol.messages import (
    MAX_VERSION,
    Auth,
    AuthSuccess,
    CheckPresent,
    Connect,
    DataPresent,
    Error,
    Get,
    GetTimestamp,
    Invalid,
    LockContent,
    NotifyChange,
    Put,
    PutFrom,
    Remove,
    RemoveBefore,
    Timestamp,
    UnlockContent,
    Valid,
    Version,
)
from annextui.proxycore.protocol.replies import (
    answer_version,
    content,
    no_content,
    reply_already_have,
    reply_result,
)
from annextui.proxycore.protocol.states import Role, State


class MemoryServer:
    """Serves one connection. `objects` maps key text to content and may be shared between
    servers to model one repository; partial uploads are kept for PUT-FROM resume.

    `clock` stands in for the monotonic clock behind GETTIMESTAMP and REMOVE-BEFORE.
    """

    def __init__(
        self,
        uuid: str,
        objects: dict[str, bytes] | None = None,
        *,
        clock: Callable[[], int] = lambda: 0,
        greeting: bool = True,
        max_version: int = MAX_VERSION,
    ) -> None:
        self.uuid = uuid
        self.objects: dict[str, bytes] = {} if objects is None else objects
        self.partial: dict[str, bytearray] = {}
        self.locked: str | None = None
        self.closed = False
        self.clock = clock
        self.conn = Connection(Role.SERVER, greeting=greeting, max_version=max_version)
        self._greeting = greeting
        self._put_key: str | None = None

    def start(self) -> bytes:
        """The greeting git-annex-shell writes before reading anything."""
        return self.conn.send(AuthSuccess(self.uuid)) if self._greeting else b""

    def feed(self, data: bytes) -> bytes:
        """Take client bytes (`b""` = EOF) and return everything the server writes in reply."""
        self.conn.receive_data(data)
        out = bytearray()
        while not self.closed:
            try:
                event = self.conn.next_event()
            except RemoteProtocolError as e:
                out += self._recover(e)
                continue
            if isinstance(event, Wait):
                break
            out += self._handle(event)
        return bytes(out)

    def _recover(self, exc: RemoteProtocolError) -> bytes:
        if exc.fatal:
            self.closed = True  # git-annex prints "protocol error" on stderr and exits
            return b""
        if self.conn.state is not State.LOCKED:
            self.locked = None  # "expected UNLOCKCONTENT" also releases the lock
        reply = self.conn.send(Error(exc.error_text or "protocol error"))
        if self.conn.state is State.AWAIT_PUT_RESULT:
            reply += self._finish_put()  # missing VALID: verify in full and answer anyway
        return reply

    def _handle(self, event: Event) -> bytes:
        conn = self.conn
        match event:
            case Version():
                return answer_version(conn)
            case Auth():
                return conn.send(Error("unexpected command"))  # p2pstdio is authenticated
            case CheckPresent(key=key):
                return reply_result(conn, key in self.objects)
            case LockContent(key=key):
                self.locked = key if key in self.objects else None
                return reply_result(conn, self.locked is not None)
            case UnlockContent():
                self.locked = None
            case Remove(key=key):
                return reply_result(conn, self._remove(key))
            case RemoveBefore(timestamp=deadline, key=key):
                return reply_result(conn, self.clock() < deadline and self._remove(key))
            case GetTimestamp():
                return conn.send(Timestamp(self.clock()))
            case Get(offset=offset, key=key):
                body = self.objects.get(key)
                return no_content(conn) if body is None else content(conn, body[offset:])
            case Put(key=key):
                if key in self.objects:
                    return reply_already_have(conn)
                self._put_key = key
                return conn.send(PutFrom(len(self.partial.get(key, b""))))
            case Data(data=chunk):
                assert self._put_key is not None
                self.partial.setdefault(self._put_key, bytearray()).extend(chunk)
            case EndOfData() if conn.state is State.AWAIT_PUT_RESULT:
                return self._finish_put()  # v0: no VALID/INVALID follows the body
            case Valid() | Invalid():
                return self._finish_put()
            case DataPresent():
                return reply_result(conn, self._put_key in self.objects)
            case NotifyChange() | Connect() | ConnectionClosed():
                # p2pstdio supports neither notification nor git tunnels: it exits.
                self.closed = True
                self.locked = None
        return b""

    def _remove(self, key: str) -> bool:
        self.objects.pop(key, None)
        return True

    def _finish_put(self) -> bytes:
        key_text = self._put_key
        assert key_text is not None
        data = bytes(self.partial.get(key_text, b""))
        key = parse_key(key_text)
        if key.size is not None and len(data) < key.size:
            return reply_result(self.conn, False)  # keep the partial file for a resumed PUT
        self.partial.pop(key_text, None)
        hasher = hasher_for(key)
        if hasher is not None:
            hasher.update(data)
        ok = (key.size is None or len(data) == key.size) and (
            hasher is None or digest_matches(key, hasher.hexdigest())
        )
        if ok:
            self.objects[key_text] = data
        return reply_result(self.conn, ok)
