"""A response written onto a client connection (`endpoints.Reply` for server.py).

A small response leaves in one `sendall`: its head, body pieces and end are collected (a small
file piece read with `pread` instead of sent by `sendfile`) and written together at `end`, or
as soon as they pass `CORK` bytes. Three writes per small GET cost three syscalls and, with
TCP_NODELAY, three packets the client reads one by one.

The common response, to an HTTP/1.1 keep-alive request other than HEAD, is framed here: status
line, headers, `Transfer-Encoding: chunked` unless a Content-Length is given, then the chunks,
the same bytes h11 writes (tests/p2phttp/test_reply_writes.py compares them). h11 still parses
every request and frames every other response (HTTP/1.0, `Connection: close`, HEAD): its
state machine and header checks cost ~100 us per response, as much as a cluster checkpresent's
own work. The connection then starts its next request on a new parser (server.py).
"""

from __future__ import annotations

import http
import os
import select
import socket
import ssl
from typing import Protocol, cast

import h11

SERVER_HEADERS = [("Server", "annextui-p2phttp")]


class ReplyConnection(Protocol):
    """What a reply uses of its connection: the socket, the request's h11 state, and whether
    this reply frames the response itself."""

    sock: socket.socket
    h: h11.Connection
    own_framing: bool


class _FileSlice:
    """A body piece h11 frames without seeing its bytes (they go by sendfile)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n


class SocketReply:
    """`endpoints.Reply` onto the connection (see the module's note)."""

    CORK = 1 << 16

    def __init__(self, conn: ReplyConnection) -> None:
        self._c = conn
        self.status = 0
        self.sent = 0
        self.started = False
        self._own = conn.own_framing
        self._chunked = True
        self._sendfile = not isinstance(conn.sock, ssl.SSLSocket)
        self._pending: list[bytes] = []
        self._pending_size = 0

    def _queue(self, data: bytes) -> None:
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= self.CORK:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self._pending_size = 0
            self._c.sock.sendall(data)

    def start(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.status = status
        self.started = True
        if self._own:
            self._queue(self._head(status, headers))
            return
        head = self._c.h.send(
            h11.Response(
                status_code=status,
                headers=[*headers, *SERVER_HEADERS],
                reason=reason(status),
            )
        )
        self._queue(head or b"")

    def _head(self, status: int, headers: list[tuple[str, str]]) -> bytes:
        """The status line and headers as h11 writes them for an HTTP/1.1 keep-alive request;
        the names and values are the server's own (never the client's)."""
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason(status))]
        for name, value in (*headers, *SERVER_HEADERS):
            if name.lower() == "content-length":
                self._chunked = False
            lines.append(b"%s: %s\r\n" % (name.encode("ascii"), value.encode("latin-1")))
        if self._chunked:
            lines.append(b"Transfer-Encoding: chunked\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)

    def write(self, data: bytes | memoryview) -> None:
        if not data:
            return
        if not self._own:
            framed = self._c.h.send(h11.Data(data=cast(bytes, data)))  # h11 takes any buffer
            self._queue(framed or b"")
        elif self._chunked:
            self._queue(b"%x\r\n" % len(data))
            self._queue(bytes(data))
            self._queue(b"\r\n")
        else:
            self._queue(bytes(data))
        self.sent += len(data)

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        if not self._sendfile or count <= 0:
            return 0
        if self._pending_size + count < self.CORK:
            piece = os.pread(fd, count, offset)  # joins the head and the end in one write
            if not piece:
                raise ConnectionResetError("file shrank while it was sent")
            self.write(piece)
            return len(piece)
        if not self._own:
            pieces = self._c.h.send_with_data_passthrough(h11.Data(data=_FileSlice(count)))  # type: ignore[arg-type]
            assert pieces is not None
            head, _, tail = pieces
        elif self._chunked:
            head, tail = b"%x\r\n" % count, b"\r\n"
        else:
            head, tail = b"", b""
        sock = self._c.sock
        self._queue(head)
        self.flush()
        done = 0
        while done < count:
            try:
                n = os.sendfile(sock.fileno(), fd, offset + done, count - done)
            except BlockingIOError:
                # A socket with a timeout is non-blocking underneath: a full send buffer (a
                # slow reader, nginx relaying to one) means wait until it drains, not the end.
                _wait_writable(sock)
                continue
            if n == 0:
                raise ConnectionResetError("file shrank while it was sent")
            done += n
        self._queue(tail)
        self.sent += count
        return count

    def end(self) -> None:
        if not self._own:
            self._queue(self._c.h.send(h11.EndOfMessage()) or b"")
        elif self._chunked:
            self._queue(b"0\r\n\r\n")
        self.flush()


def _wait_writable(sock: socket.socket) -> None:
    """Block until `sock` can take more bytes, for at most its timeout (as sendall would)."""
    timeout = sock.gettimeout()
    poller = select.poll()  # not select(): a busy server's descriptors pass 1024
    poller.register(sock, select.POLLOUT)
    if not poller.poll(None if timeout is None else timeout * 1000):
        raise TimeoutError("the client stopped reading")


def reason(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""
