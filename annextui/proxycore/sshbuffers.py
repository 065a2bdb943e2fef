"""paramiko's two receive buffers, made cheap per byte: what a node's GET body crosses.

A body from an ssh node arrives as ~32 KiB ssh packets, and paramiko handles each one in
Python. Two of its buffers cost more than the decryption:

- `Packetizer.read_all` asks the socket for a packet's 16-byte header and then for its body:
  two or more `recv` calls per packet. `BufferedSocket` serves those from one `recv_into`
  of up to 256 KiB, about one system call per eight packets.
- `Channel.in_buffer`, a `BufferedPipe`, appends every packet to an `array` and answers a
  read with a slice of it turned into bytes, then deletes the head by moving what is left:
  three copies of each byte, more when the reader lags. `ChunkPipe` keeps the packets as
  they came and joins only what one read returns.

256 MiB from an sshd on loopback (AES-GCM, 1 MiB reads, bench/bench_ssh.py): the
process's CPU ~0.48 s with paramiko's buffers, ~0.30 s with both of these.

This module imports paramiko: ssh.py loads it only once paramiko is needed.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from threading import Event
from typing import TYPE_CHECKING

from paramiko.buffered_pipe import BufferedPipe, PipeTimeout

if TYPE_CHECKING:
    import paramiko

RECV_BLOCK = 256 * 1024


class BufferedSocket:
    """A connected socket for paramiko's Transport whose `recv(n)` is served from one large
    `recv_into`. Everything else (send, settimeout, close, `_closed`...) is the socket's own,
    so a timeout or an error reaches paramiko exactly as before."""

    def __init__(self, sock: socket.socket, size: int = RECV_BLOCK) -> None:
        self._sock = sock
        self._buf = bytearray(size)
        self._view = memoryview(self._buf)
        self._pos = 0
        self._end = 0

    def recv(self, n: int) -> bytes:
        if self._pos == self._end:
            got = self._sock.recv_into(self._buf)
            if not got:
                return b""
            self._pos, self._end = 0, got
        start = self._pos
        self._pos = min(self._end, start + n)
        return bytes(self._view[start : self._pos])

    def __getattr__(self, name: str) -> object:
        return getattr(self._sock, name)


class ChunkPipe(BufferedPipe):  # type: ignore[type-arg]  # generic in the stubs only
    """`BufferedPipe` with the packets kept as the bytes objects paramiko feeds it.

    Same contract as paramiko's: read up to n bytes, block until some arrive or the pipe
    closes, `PipeTimeout` after `timeout` seconds, the event set while data waits. Every
    method paramiko's Channel calls is overridden, on state of our own (the base class is
    for the type only: `Channel.in_buffer` is declared a BufferedPipe).
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._event: Event | None = None
        self._closed = False
        self._chunks: deque[bytes] = deque()
        self._head = 0  # bytes of the first chunk already read
        self._size = 0

    def set_event(self, event: Event) -> None:
        with self._lock:
            self._event = event
            if self._closed or self._size:
                event.set()
            else:
                event.clear()

    def feed(self, data: bytes) -> None:
        with self._lock:
            if self._event is not None:
                self._event.set()
            self._chunks.append(bytes(data))
            self._size += len(data)
            self._cv.notify_all()

    def read_ready(self) -> bool:
        with self._lock:
            return self._size > 0

    def read(self, nbytes: int, timeout: float | None = None) -> bytes:
        with self._lock:
            if not self._size:
                if self._closed:
                    return b""
                if timeout == 0.0:
                    raise PipeTimeout()
                while not self._size and not self._closed:
                    then = time.monotonic()
                    self._cv.wait(timeout)
                    if timeout is not None:
                        timeout -= time.monotonic() - then
                        if timeout <= 0.0:
                            raise PipeTimeout()
                if not self._size:
                    return b""
            out = self._take(min(nbytes, self._size))
            if not self._size and self._event is not None and not self._closed:
                self._event.clear()
            return out

    def _take(self, n: int) -> bytes:
        """The next n bytes (n <= the bytes held), under the lock."""
        chunks = self._chunks
        parts: list[bytes] = []
        want = n
        while want:
            first = chunks[0]
            head = self._head
            left = len(first) - head
            if left > want:
                parts.append(first[head : head + want])
                self._head = head + want
                break
            parts.append(first[head:] if head else first)
            chunks.popleft()
            self._head = 0
            want -= left
        self._size -= n
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def empty(self) -> bytes:
        with self._lock:
            out = self._take(self._size) if self._size else b""
            if self._event is not None and not self._closed:
                self._event.clear()
            return out

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._cv.notify_all()
            if self._event is not None:
                self._event.set()

    def __len__(self) -> int:
        with self._lock:
            return self._size


def install_chunk_pipe(channel: paramiko.Channel) -> None:
    """Give a session channel a ChunkPipe after `open_session` and before `exec_command`:
    nothing can arrive in between. Not for a channel whose peer may already be sending (a
    direct-tcpip channel): the transport thread could feed the old buffer during the swap."""
    channel.in_buffer = ChunkPipe()
