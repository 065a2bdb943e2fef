"""A GET response on the wire (reply.SocketReply under endpoints._send): a small one leaves in
one write (head, body and the chunked end together), a large one by sendfile; both parse as
the same HTTP/1.1 response, and a file that changed while it was sent still goes one byte
short. The reply's own framing (a keep-alive HTTP/1.1 request) writes the very bytes h11 does."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import h11
import pytest

from annextui.proxycore.http.endpoints import _send
from annextui.proxycore.http.reply import SocketReply
from annextui.proxycore.local import LocalOutgoing


class _CountingSocket(socket.socket):
    """A real socket that counts the writes the reply makes to it."""

    writes = 0

    def sendall(self, data: object, flags: int = 0) -> None:  # type: ignore[override]
        self.writes += 1
        super().sendall(data, flags)  # type: ignore[arg-type]


class _Conn:
    """What SocketReply uses of server._Connection: the socket and the h11 state, after a
    request was read."""

    def __init__(self, sock: socket.socket, own_framing: bool) -> None:
        self.sock = sock
        self.own_framing = own_framing
        self.h = h11.Connection(h11.SERVER)
        self.h.receive_data(b"GET /k HTTP/1.1\r\nHost: x\r\n\r\n")
        assert isinstance(self.h.next_event(), h11.Request)
        assert isinstance(self.h.next_event(), h11.EndOfMessage)


def _serve(tmp_path: Path, data: bytes, *, change: bool = False) -> tuple[int, bytes, int]:
    """One GET of a file holding `data` answered over a socketpair: writes made, the body the
    client read, and the client's announced data length (the same by either framing)."""
    writes, body, length, raw = _serve_raw(tmp_path, data, change=change)
    assert _serve_raw(tmp_path, data, change=change, own=False)[3] == raw
    return writes, body, length


def _serve_raw(
    tmp_path: Path, data: bytes, *, change: bool = False, own: bool = True
) -> tuple[int, bytes, int, bytes]:
    """`_serve`, and the bytes of the whole response as they came off the socket; `own`: the
    reply frames it (False: h11 does)."""
    f = tmp_path / "obj"
    f.write_bytes(data)
    a, b = socket.socketpair()
    server_sock = _CountingSocket(fileno=a.detach())
    received: dict[str, object] = {}
    raw = bytearray()

    def client() -> None:
        h = h11.Connection(h11.CLIENT)
        h.send(h11.Request(method="GET", target="/k", headers=[("Host", "x")]))
        h.send(h11.EndOfMessage())
        body = bytearray()
        while True:
            ev = h.next_event()
            if ev is h11.NEED_DATA:
                got = b.recv(1 << 16)
                raw.extend(got)
                h.receive_data(got)
            elif isinstance(ev, h11.Response):
                received["length"] = int(dict(ev.headers)[b"x-git-annex-data-length"])
            elif isinstance(ev, h11.Data):
                body += ev.data
            elif isinstance(ev, h11.EndOfMessage):
                break
        received["body"] = bytes(body)

    t = threading.Thread(target=client)
    t.start()
    try:
        fd = os.open(f, os.O_RDONLY)
        st = os.fstat(fd)
        out = LocalOutgoing(fd, f, st, 0, st.st_size, None)
        reply = SocketReply(_Conn(server_sock, own))
        reply.start(200, [("X-git-annex-data-length", str(len(data)))])

        def progress(n: int) -> None:
            if change:
                t = f.stat().st_mtime_ns + 1_000_000_000
                os.utime(f, ns=(t, t))  # the file changes while it is being sent

        _send(out, reply, progress)
        reply.end()
        out.close(None)
        t.join(timeout=30)
    finally:
        server_sock.close()
        b.close()
    assert not t.is_alive()
    return (
        server_sock.writes,
        received["body"],  # type: ignore[return-value]
        received["length"],  # type: ignore[return-value]
        bytes(raw),
    )


@pytest.mark.parametrize("size", [1, 4096, SocketReply.CORK - 200])
def test_small_response_is_one_write(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    writes, body, length = _serve(tmp_path, data)
    assert (writes, body, length) == (1, data, size)


def test_large_response_still_whole(tmp_path: Path) -> None:
    data = os.urandom(3 * SocketReply.CORK + 5)
    writes, body, _ = _serve(tmp_path, data)
    assert body == data
    assert writes > 1  # head, then the body by sendfile, then the end


@pytest.mark.parametrize("size", [4096, 3 * SocketReply.CORK])
def test_changed_file_still_one_byte_short(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    _, body, length = _serve(tmp_path, data, change=True)
    assert length == size
    assert body == data[:-1]  # the client rejects it


@pytest.mark.parametrize("size", [1, 4096, SocketReply.CORK - 200])
def test_small_body_is_one_chunk(tmp_path: Path, size: int) -> None:
    """As git-annex's server sends it: the whole body in one chunk, then the last chunk. The
    real client handles each chunk (and redraws its progress) on its own."""
    data = os.urandom(size)
    _, _, _, raw = _serve_raw(tmp_path, data)
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert body == b"%x\r\n" % size + data + b"\r\n0\r\n\r\n"


def test_changed_small_file_is_one_chunk_one_byte_short(tmp_path: Path) -> None:
    data = os.urandom(4096)
    _, _, _, raw = _serve_raw(tmp_path, data, change=True)
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert body == b"fff\r\n" + data[:-1] + b"\r\n0\r\n\r\n"


def _answer(own: bool, status: int, headers: list[tuple[str, str]], body: bytes) -> bytes:
    """The bytes of one response written by `SocketReply`, as the client receives them."""
    a, b = socket.socketpair()
    try:
        reply = SocketReply(_Conn(a, own))
        reply.start(status, headers)
        reply.write(body)
        reply.end()
        a.shutdown(socket.SHUT_WR)
        out = bytearray()
        while chunk := b.recv(1 << 16):
            out += chunk
        return bytes(out)
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        (200, [("Content-Type", "application/json;charset=utf-8")], b'{"present":true}'),
        (
            200,
            [("Content-Type", "application/octet-stream"), ("X-git-annex-data-length", "0")],
            b"",
        ),
        (404, [("Content-Type", "text/plain"), ("Content-Length", "9")], b"Not Found"),
        (503, [("Retry-After", "1"), ("Content-Length", "4")], b"busy"),
    ],
)
def test_own_framing_writes_what_h11_writes(
    status: int, headers: list[tuple[str, str]], body: bytes
) -> None:
    raw = _answer(True, status, headers, body)
    assert raw == _answer(False, status, headers, body)
    assert raw.startswith(b"HTTP/1.1 %d " % status)
