"""A request body read past h11, straight from the socket into the caller's buffer.

h11 copies every body byte three times (into its receive buffer, out of it as a `Data` event,
into ours): the largest cost of a big PUT once everything else is done in large blocks. So,
once h11 has parsed the request head and handed over the body bytes it already held:

* a Content-Length body is read from the socket into the caller's buffer, and h11's reader is
  told how many bytes went by (`_remaining`), so h11 ends the message itself;
* a chunked body (what git-annex sends) is decoded here once h11 holds none of it: the rest of
  the chunk h11 was in (its reader is set between chunks), then the chunks, read ahead in
  large blocks and decoded many per call (git-annex's are 32 KiB: a call per chunk cost as
  much as h11's copies), or straight into the caller's buffer when one is larger than what is
  read ahead; at the last chunk (size 0) the rest of what was read (`0\r\n`, the trailer, a
  pipelined request) is handed to h11, whose reader is between chunks as if every chunk had
  passed through it.

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

STAGE = 1 << 18  # read-ahead of a chunked body: many chunks' headers and data per read
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
        # decoding chunks ourselves: bytes read ahead (`_stage[_start:_end]`), data left in
        # the current chunk, and what is left of the CRLF after it
        self._chunked = False
        self._buf = bytearray()
        self._stage = memoryview(self._buf)
        self._start = self._end = 0
        self._left = 0
        self._footer = b""

    def readinto(self, buf: memoryview) -> int:
        while not self._pending:
            if self.done:
                return 0
            if self._chunked:
                n = self._chunks_into(buf)
                if n:
                    self.received += n
                    return n
                continue
            ev = self._h.next_event()
            if ev is h11.NEED_DATA:
                reader = _length_reader(self._h)
                if reader is not None:
                    n = self._read(buf[: min(len(buf), reader._remaining)])
                    reader._remaining -= n
                    self.received += n
                    return n
                taken = _take_chunks(self._h)
                if taken is not None:
                    self._left, self._footer = taken
                    self._chunked = True
                    if not self._buf:
                        self._buf = bytearray(STAGE)
                        self._stage = memoryview(self._buf)
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
        """Bytes from the socket into `buf`: one read that waits, then (plain sockets)
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
        return got

    def _read_ahead(self) -> None:
        """More bytes into the stage (what is unread moved to its start first)."""
        if self._start:
            kept = self._end - self._start
            self._stage[:kept] = self._stage[self._start : self._end]
            self._start, self._end = 0, kept
        self._end += self._read(self._stage[self._end :])

    def _chunks_into(self, buf: memoryview) -> int:
        """Chunk data into `buf`, as many chunks as it takes or as have arrived; waits only
        when nothing was put into `buf` yet. 0 once the last chunk is handed back to h11."""
        filled = 0
        stage = self._stage
        while filled < len(buf):
            if self._left:
                room = min(len(buf) - filled, self._left)
                held = self._end - self._start
                if held:
                    n = min(room, held)
                    buf[filled : filled + n] = stage[self._start : self._start + n]
                    self._start += n
                elif filled:
                    break  # return what is here rather than wait for more
                else:
                    n = self._read(buf[:room])  # a large piece: straight into `buf`
                self._left -= n
                filled += n
                continue
            if not self._next_chunk(wait=not filled):
                break
        return filled

    def _next_chunk(self, *, wait: bool) -> bool:
        """Past the chunk's CRLF and the next chunk header; False when they have not arrived
        (and `wait` is off) or the last chunk went back to h11."""
        data, k = self._buf, len(self._footer)
        while True:
            start, held = self._start, self._end - self._start
            if held >= k and data[start : start + k] != self._footer:
                raise h11.RemoteProtocolError(
                    f"malformed chunk footer: {data[start : start + k]!r}"
                )
            end = data.find(b"\r\n", start + k, self._end) if held >= k else -1
            if end >= 0:
                break
            if held > HEADER_MAX:
                raise h11.RemoteProtocolError("chunk header too long")
            if not wait:
                return False
            self._read_ahead()
        size = _chunk_size(bytes(data[start + k : end]))
        if size == 0:
            # The last chunk: h11, between chunks, reads it and the trailer and ends the body.
            self._chunked = False
            self._h.receive_data(bytes(data[start + k : self._end]))
            self._start = self._end = 0
            return False
        self._start = end + 2
        self._left = size
        self._footer = b"\r\n"
        return True
