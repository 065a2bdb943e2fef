"""A request body read past h11, straight from the socket into the caller's buffer.

h11 copies every body byte three times (into its receive buffer, out of it as a `Data` event,
into ours): the largest cost of a big PUT once everything else is done in large blocks. So,
once h11 has parsed the request head and handed over the body bytes it already held:

* a Content-Length body is read from the socket into the caller's buffer, and h11's reader is
  told how many bytes went by (`_remaining`), so h11 ends the message itself;
* a chunked body (what git-annex sends) is decoded here once h11 holds none of it: the rest of
  the chunk h11 was in (its reader is set between chunks), then chunk data from the socket
  into the caller's buffer and chunk headers read in small pieces; at the last chunk (size
  0) the rest of what was read (`0\r\n`, the trailer, a pipelined request) is handed to h11,
  whose reader is between chunks as if every chunk had passed through it.

Either way h11's state stays exactly what its own parsing would have made it. An h11 whose
readers differ from the ones this knows (their attributes are checked) takes the ordinary
path, as does a body while h11 still holds bytes of it.

Bytes that arrived are never held back waiting for more: a client that stalls and dies keeps
them for its resume.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Callable
from typing import Protocol, cast

import h11

HEADER_READ = 256  # a chunk header ("\r\n8000\r\n") and a little data: the rest goes direct
HEADER_MAX = 1024  # a longer chunk header line is garbage


class _LengthReader(Protocol):
    _remaining: int


class _ChunkedReader(Protocol):
    _bytes_in_chunk: int
    _bytes_to_discard: bytes
    _reading_trailer: bool


def _length_reader(h: h11.Connection) -> _LengthReader | None:
    reader = getattr(h, "_reader", None)
    if type(reader).__name__ == "ContentLengthReader" and isinstance(
        getattr(reader, "_remaining", None), int
    ):
        return cast(_LengthReader, reader)
    return None


def _take_chunks(h: h11.Connection) -> tuple[int, bytes] | None:
    """When h11 reads a chunked body and holds no byte of it: the data left in its current
    chunk and the footer bytes still expected, which h11 forgets (its reader is set between
    two chunks, where the last chunk will be handed back to it); None otherwise."""
    reader = getattr(h, "_reader", None)
    if type(reader).__name__ != "ChunkedReader":
        return None
    r = cast(_ChunkedReader, reader)
    left = getattr(r, "_bytes_in_chunk", None)
    footer = getattr(r, "_bytes_to_discard", None)
    if (
        not isinstance(left, int)
        or not isinstance(footer, bytes)
        or getattr(r, "_reading_trailer", None) is not False
        or h.trailing_data[0] != b""
    ):
        return None
    r._bytes_in_chunk = 0
    r._bytes_to_discard = b""
    return left, (b"\r\n" if left else footer)


def _chunk_size(line: bytes) -> int:
    size = line.split(b";", 1)[0].rstrip(b" \t")
    if not 0 < len(size) <= 20 or size.strip(b"0123456789abcdefABCDEF"):
        raise h11.RemoteProtocolError(f"illegal chunk header: {line[:40]!r}")
    return int(size, 16)


class SocketBody:
    """`endpoints.Body` over an h11 connection's socket (see the module's note)."""

    def __init__(self, sock: socket.socket, h: h11.Connection, receive: Callable[[], None]) -> None:
        self._sock = sock
        self._h = h
        self._receive = receive  # one socket read into h11
        self._pending = memoryview(b"")
        self.done = False
        self.received = 0
        # decoding chunks ourselves: bytes read past a chunk header, data left in the chunk,
        # and what is left of the CRLF after it
        self._chunked = False
        self._stage = b""
        self._left = 0
        self._footer = b""

    def readinto(self, buf: memoryview) -> int:
        while not self._pending:
            if self.done:
                return 0
            if self._chunked:
                n = self._chunk_data(buf)
                if n:
                    return n
                continue
            ev = self._h.next_event()
            if ev is h11.NEED_DATA:
                reader = _length_reader(self._h)
                if reader is not None:
                    n = self._read(buf[: min(len(buf), reader._remaining)])
                    reader._remaining -= n
                    return n
                taken = _take_chunks(self._h)
                if taken is not None:
                    self._left, self._footer = taken
                    self._chunked = True
                    continue
                self._receive()
            elif isinstance(ev, h11.Data):
                self._pending = memoryview(ev.data)
            elif isinstance(ev, h11.EndOfMessage):
                self.done = True
            else:
                raise ConnectionResetError("client closed the connection inside a body")
        n = min(len(buf), len(self._pending))
        buf[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self.received += n
        return n

    # -- reading -------------------------------------------------------------------------------
    def _read(self, buf: memoryview) -> int:
        """Body bytes from the socket into `buf`: one read that waits, then (plain sockets)
        whatever more is there without waiting."""
        got = self._sock.recv_into(buf)
        if not got:
            raise ConnectionResetError("client closed the connection inside a body")
        # A socket with a timeout has a non-blocking descriptor underneath: a plain read of
        # it returns at once (socket methods would first wait for the timeout).
        if not isinstance(self._sock, ssl.SSLSocket) and not self._sock.getblocking():
            fd = self._sock.fileno()
            while got < len(buf):
                try:
                    n = os.readv(fd, [buf[got:]])
                except (BlockingIOError, InterruptedError):
                    break
                if not n:
                    break  # the hang-up is for the next call to report
                got += n
        self.received += got
        return got

    def _more(self) -> None:
        data = self._sock.recv(HEADER_READ)
        if not data:
            raise ConnectionResetError("client closed the connection inside a body")
        self._stage += data

    def _chunk_data(self, buf: memoryview) -> int:
        """Data of the current chunk into `buf`; 0 after a chunk header was read (or the body
        was handed back to h11 at its last chunk)."""
        if self._left:
            want = min(len(buf), self._left)
            if self._stage:
                n = min(want, len(self._stage))
                buf[:n] = self._stage[:n]
                self._stage = self._stage[n:]
                self.received += n
            else:
                n = self._read(buf[:want])
            self._left -= n
            return n
        if self._footer:
            k = len(self._footer)
            while len(self._stage) < k:
                self._more()
            if self._stage[:k] != self._footer:
                raise h11.RemoteProtocolError(f"malformed chunk footer: {self._stage[:k]!r}")
            self._stage = self._stage[k:]
            self._footer = b""
        while (end := self._stage.find(b"\r\n")) < 0:
            if len(self._stage) > HEADER_MAX:
                raise h11.RemoteProtocolError("chunk header too long")
            self._more()
        size = _chunk_size(self._stage[:end])
        if size == 0:
            # The last chunk: h11, between chunks, reads it and the trailer and ends the body.
            self._chunked = False
            rest, self._stage = self._stage, b""
            self._h.receive_data(rest)
            return 0
        self._stage = self._stage[end + 2 :]
        self._left = size
        self._footer = b"\r\n"
        return 0
