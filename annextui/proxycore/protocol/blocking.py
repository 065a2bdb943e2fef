"""A Connection driven over blocking `read`/`write` callables (dulwich's Protocol shape).

Suits ssh stdio, a subprocess's pipes, a paramiko channel or a socket file: the callables do
the I/O, this module only loops. `read(n)` returns up to n bytes and `b""` at EOF. The shell's
server (server.py) and the gateway's client to its nodes (remote.py) both drive their
connections through it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import cast

from . import replies
from .connection import Connection
from .errors import LocalProtocolError
from .events import NEED_DATA, PAUSED, Data, EndOfData, Event
from .messages import Message

DEFAULT_READ_SIZE = 64 * 1024


class BlockingConnection:
    """Blocking convenience around a Connection. Memory stays bounded by `read_size`: body
    bytes come back in pieces of at most that size.

    `readinto(buf) -> int` (0 at EOF), when given, is used instead of `read`: every read then
    lands in one reusable buffer, so a long transfer allocates nothing per read. `eof` tells
    whether the stream has ended (a protocol error at EOF is a hang-up, not garbage).
    """

    def __init__(
        self,
        conn: Connection,
        read: Callable[[int], bytes],
        write: Callable[[bytes], object],
        *,
        read_size: int = DEFAULT_READ_SIZE,
        readinto: Callable[[memoryview], int] | None = None,
    ) -> None:
        self.conn = conn
        self._read = read
        self._write = write
        self._read_size = read_size
        self._readinto = readinto
        self._rview = memoryview(bytearray(read_size)) if readinto is not None else None
        self.eof = False

    def _fill(self) -> None:
        if self._readinto is not None and self._rview is not None:
            n = self._readinto(self._rview)
            data = cast(bytes, self._rview[:n])
        else:
            data = self._read(self._read_size)
        if not data:
            self.eof = True
        self.conn.receive_data(data)

    def next_event(self) -> Event:
        """The next event, reading as needed. Raises LocalProtocolError if it is our turn."""
        while True:
            event = self.conn.next_event()
            if event is NEED_DATA:
                self._fill()
            elif event is PAUSED:
                raise LocalProtocolError(f"it is our turn to send ({self.conn.state.value})")
            else:
                return event

    def next_message(self) -> Message:
        """The next event, which must be a line message (not body bytes or a close)."""
        event = self.next_event()
        if not isinstance(event, Message):
            raise LocalProtocolError(f"expected a message, got {event!r}")
        return event

    def send(self, *msgs: Message) -> None:
        """Write the messages in one go. If one is refused, those before it are still written,
        since the connection already counts them as sent."""
        out = bytearray()
        try:
            for msg in msgs:
                out += self.conn.send(msg)
        finally:
            if out:
                self._write(bytes(out))

    def send_data(self, chunk: bytes) -> None:
        self._write(self.conn.send_data(chunk))

    def send_content(
        self,
        length: int,
        chunks: Iterable[bytes],
        *,
        valid: bool | Callable[[], bool] = True,
    ) -> None:
        """DATA, body and validity line; see `replies.send_content`."""
        for piece in replies.send_content(self.conn, length, chunks, valid=valid):
            self._write(piece)

    def iter_body(self) -> Iterator[bytes]:
        """After a DataHeader event: the body's chunks, ending with its EndOfData."""
        while True:
            event = self.next_event()
            if isinstance(event, EndOfData):
                return
            if not isinstance(event, Data):
                raise LocalProtocolError(f"expected DATA body bytes, got {event!r}")
            yield event.data

    def read_body(self) -> bytes:
        """The whole body in memory: only for bodies known to be small."""
        return b"".join(self.iter_body())
