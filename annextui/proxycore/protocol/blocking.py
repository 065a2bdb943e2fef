"""A Connection driven over blocking `read`/`write` callables (dulwich's Protocol shape).

Suits ssh stdio, a subprocess's pipes, a paramiko channel or a socket file: the callables do
the I/O, this module only loops. `read(n)` returns up to n bytes and `b""` at EOF.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from . import replies
from .connection import Connection
from .errors import LocalProtocolError
from .events import NEED_DATA, PAUSED, Data, EndOfData, Event
from .messages import Message

DEFAULT_READ_SIZE = 64 * 1024


class BlockingConnection:
    """Blocking convenience around a Connection. Memory stays bounded by `read_size`: body
    bytes come back in pieces of at most that size."""

    def __init__(
        self,
        conn: Connection,
        read: Callable[[int], bytes],
        write: Callable[[bytes], object],
        *,
        read_size: int = DEFAULT_READ_SIZE,
    ) -> None:
        self.conn = conn
        self._read = read
        self._write = write
        self._read_size = read_size

    def next_event(self) -> Event:
        """The next event, reading as needed. Raises LocalProtocolError if it is our turn."""
        while True:
            event = self.conn.next_event()
            if event is NEED_DATA:
                self.conn.receive_data(self._read(self._read_size))
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
