"""Request bodies read past h11 (annextui/proxycore/http/body.py): the bytes and h11's state are
exactly what h11's own parsing gives, whatever the framing and however the bytes arrive."""

from __future__ import annotations

import contextlib
import random
import socket
import threading

import h11
import pytest

from annextui.proxycore.http.body import SocketBody

PAYLOAD = random.Random(13).randbytes(300_000)
NEXT = b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"


def _chunked(data: bytes, sizes: list[int], trailer: bytes = b"") -> bytes:
    out, pos, i = [], 0, 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        i += 1
        piece = data[pos : pos + n]
        pos += n
        out.append(b"%x;ext=1\r\n" % len(piece) + piece + b"\r\n")
    return b"".join(out) + b"0\r\n" + trailer + b"\r\n"


def _serve(wire: bytes, pieces: list[int], *, buf_size: int = 1 << 20) -> tuple[bytes, object, int]:
    """`wire` sent in pieces of the given sizes; the server reads the request's body with
    SocketBody; returns the body, h11's next event after it (the pipelined request) and how
    many bytes went through h11."""
    server, client = socket.socketpair()
    server.settimeout(10)

    def send() -> None:
        pos, i = 0, 0
        with contextlib.suppress(OSError):  # the server stopped reading (a failed test)
            while pos < len(wire):
                n = pieces[i % len(pieces)]
                i += 1
                client.sendall(wire[pos : pos + n])
                pos += n

    sender = threading.Thread(target=send)
    sender.start()
    h = h11.Connection(h11.SERVER)
    recv = bytearray(1 << 16)
    through_h11 = 0

    def receive() -> None:
        nonlocal through_h11
        n = server.recv_into(recv)
        through_h11 += n
        h.receive_data(bytes(recv[:n]))

    def event() -> object:
        while (ev := h.next_event()) is h11.NEED_DATA:
            receive()
        return ev

    try:
        assert isinstance(event(), h11.Request)
        body = SocketBody(server, h, receive)
        view = memoryview(bytearray(buf_size))
        out = bytearray()
        while n := body.readinto(view):
            out += view[:n]
        assert body.received == len(out)
        assert h.their_state is h11.DONE
        h.send(h11.Response(status_code=200, headers=[("Content-Length", "0")]))
        h.send(h11.EndOfMessage())
        h.start_next_cycle()
        nxt = event()
    finally:
        server.close()
        sender.join()
        client.close()
    return bytes(out), nxt, through_h11


HEAD_CHUNKED = b"POST /put HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
HEAD_LENGTH = b"POST /put HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(PAYLOAD)


@pytest.mark.parametrize(
    ("chunks", "pieces"),
    [
        ([32752], [1 << 20]),  # git-annex's lazy ByteString chunks, all at once
        ([32752], [7, 1, 3000, 65536]),  # split inside headers, CRLFs and data
        ([1, 2, 300, 70000], [1]),  # one byte at a time
        ([1 << 20], [65536]),
    ],
)
@pytest.mark.parametrize("buf_size", [1 << 20, 1000])
def test_chunked_body_and_next_request(chunks: list[int], pieces: list[int], buf_size: int) -> None:
    wire = HEAD_CHUNKED + _chunked(PAYLOAD, chunks, trailer=b"X-T: 1\r\n") + NEXT
    body, nxt, through_h11 = _serve(wire, pieces, buf_size=buf_size)
    assert body == PAYLOAD
    assert isinstance(nxt, h11.Request)
    assert nxt.target == b"/next"
    if chunks[0] >= 32752 and buf_size > chunks[0]:
        assert through_h11 < len(PAYLOAD) // 4  # the chunks' data went past h11


@pytest.mark.parametrize("pieces", [[1 << 20], [5, 99, 4096]])
def test_content_length_body_and_next_request(pieces: list[int]) -> None:
    body, nxt, through_h11 = _serve(HEAD_LENGTH + PAYLOAD + NEXT, pieces)
    assert body == PAYLOAD
    assert isinstance(nxt, h11.Request)
    assert nxt.target == b"/next"
    assert through_h11 < len(PAYLOAD) // 4


@pytest.mark.parametrize(
    "wire",
    [
        HEAD_CHUNKED + b"10\r\n" + PAYLOAD[:5],  # inside a chunk
        HEAD_CHUNKED + b"5\r\n" + PAYLOAD[:5] + b"\r\n",  # between chunks
        HEAD_LENGTH + PAYLOAD[:1000],
    ],
)
def test_hang_up_inside_a_body_is_an_error(wire: bytes) -> None:
    server, client = socket.socketpair()
    server.settimeout(10)
    client.sendall(wire)
    client.close()
    h = h11.Connection(h11.SERVER)
    h.receive_data(server.recv(len(HEAD_CHUNKED)))  # the head, perhaps a little body
    assert isinstance(h.next_event(), h11.Request)

    def receive() -> None:
        h.receive_data(server.recv(65536))

    body = SocketBody(server, h, receive)
    view = memoryview(bytearray(1 << 16))
    got = 0

    def read_all() -> None:
        nonlocal got
        while n := body.readinto(view):
            got += n

    with pytest.raises((ConnectionResetError, h11.RemoteProtocolError)):
        read_all()
    assert got <= 1000  # what arrived was handed over before the error
    server.close()


def test_garbage_chunk_header_is_refused() -> None:
    with pytest.raises(h11.RemoteProtocolError):
        _serve(HEAD_CHUNKED + b"5\r\nhello\r\nzz\r\n" + b"x" * 10, [1 << 20])
