"""In-memory nodes and a served gateway for the gateway unit tests.

* `MemoryStream` is a `remote.ByteStream` onto a `MemoryServer` (tests/support/memory_server.py,
  a fake node), logging what the gateway wrote; `fail_after` / `eof_after` make the node die
  mid-transfer.
* `Served` runs `server.Server` for a Peer on one end of a socketpair in a thread, and gives the
  test a protocol client on the other end, as the shell would serve a real client.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

from annextui.proxycore import protocol as p
from annextui.proxycore.cluster import NodeSpec
from annextui.proxycore.peer import Peer
from annextui.proxycore.remote import NodeError, RemotePeer
from annextui.proxycore.server import FdTransport, Server, ServeResult, ServerMode
from tests.support.memory_server import MemoryServer


class MemoryStream:
    """A byte stream to a MemoryServer: what we write is fed to it, its replies are read."""

    def __init__(
        self,
        server: MemoryServer,
        *,
        fail_after: int | None = None,
        eof_after: int | None = None,
    ) -> None:
        self.server = server
        self.written = bytearray()
        self._out = bytearray(server.start())
        self.fail_after = fail_after  # writes beyond this many bytes raise (node died)
        self.eof_after = eof_after  # reads beyond this many bytes see EOF (node died)
        self._read_total = 0
        self.closed = False

    def read(self, n: int) -> bytes:
        if self.closed:
            return b""
        if self.eof_after is not None:
            n = min(n, self.eof_after - self._read_total)
            if n <= 0:
                return b""
        chunk = bytes(self._out[:n])
        del self._out[:n]
        self._read_total += len(chunk)
        return chunk

    def write(self, data: bytes | memoryview) -> None:
        if self.closed:
            raise BrokenPipeError("node gone")
        data = bytes(data)
        if self.fail_after is not None and len(self.written) + len(data) > self.fail_after:
            self.closed = True
            raise BrokenPipeError("node died")
        self.written += data
        self._out += self.server.feed(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.server.feed(b"")

    @property
    def lines(self) -> list[bytes]:
        """What the gateway sent, as lines (bodies included verbatim)."""
        return bytes(self.written).split(b"\n")


@dataclass
class FakeNode:
    """A node made of a MemoryServer; `connect` is a NodeSpec connector counting connections."""

    uuid: str
    name: str
    cost: float = 100.0
    objects: dict[str, bytes] = field(default_factory=dict)
    clock: int = 0
    max_version: int = 4
    down: bool = False
    fail_after: int | None = None
    eof_after: int | None = None
    streams: list[MemoryStream] = field(default_factory=list)
    servers: list[MemoryServer] = field(default_factory=list)
    partial: dict[str, bytearray] = field(default_factory=dict)

    def opener(self) -> MemoryStream:
        if self.down:
            raise NodeError(f"cannot connect to {self.name}: connection refused")
        srv = MemoryServer(
            self.uuid, self.objects, clock=lambda: self.clock, max_version=self.max_version
        )
        srv.partial = self.partial  # shared between connections, like annex/tmp
        s = MemoryStream(srv, fail_after=self.fail_after, eof_after=self.eof_after)
        self.servers.append(srv)
        self.streams.append(s)
        return s

    def peer(self, offer: int = 4, bypass: frozenset[str] = frozenset()) -> RemotePeer:
        return RemotePeer(self.opener, uuid=self.uuid, name=self.name, bypass=bypass, offer=offer)

    def spec(self) -> NodeSpec:
        return NodeSpec(self.uuid, self.name, self.cost, lambda o, b: self.peer(o, b))

    @property
    def sent(self) -> list[bytes]:
        return [line for s in self.streams for line in s.lines]


class Served:
    """A Peer served by the real Server loop; `client` talks to it like a git-annex client."""

    def __init__(self, peer: Peer, *, mode: ServerMode = ServerMode.READWRITE) -> None:
        self.peer = peer
        ours, theirs = socket.socketpair()
        self._sock = theirs
        self._server_sock = ours
        self.result: ServeResult | None = None
        transport = FdTransport(ours.fileno(), ours.fileno(), pipe_size=0)
        self._thread = threading.Thread(
            target=self._run, args=(Server(peer, transport, mode=mode),), daemon=True
        )
        self._thread.start()
        self.client = p.BlockingConnection(
            p.Connection(p.Role.CLIENT, greeting=True), self._recv, theirs.sendall
        )
        hello = self.client.next_message()
        assert isinstance(hello, p.AuthSuccess), hello

    def _recv(self, n: int) -> bytes:
        return self._sock.recv(n)

    def _run(self, server: Server) -> None:
        try:
            self.result = server.run()
        finally:
            self._server_sock.shutdown(socket.SHUT_WR)

    def version(self, offer: int = 4) -> int:
        self.client.send(p.Version(offer))
        reply = self.client.next_message()
        assert isinstance(reply, p.Version), reply
        return reply.version

    def request(self, msg: p.Message) -> p.Message:
        self.client.send(msg)
        return self.client.next_message()

    def put(self, key: str, body: bytes, af: str | None = None) -> tuple[p.Message, p.Message]:
        """PUT, send what the gateway asks for; (first reply, final reply)."""
        first = self.request(p.Put(af, key))
        if not isinstance(first, p.PutFrom):
            return first, first
        rest = body[first.offset :]
        self.client.send_content(
            len(rest), [rest[i : i + 65536] for i in range(0, len(rest), 65536)]
        )
        return first, self.client.next_message()

    def get(self, key: str, offset: int = 0, af: str | None = None) -> tuple[bytes, bool | None]:
        """GET: (body, VALID?) and acknowledge with SUCCESS."""
        header = self.request(p.Get(offset, af, key))
        if isinstance(header, p.Error):
            raise AssertionError(f"ERROR {header.text}")
        assert isinstance(header, p.DataHeader), header
        body = self.client.read_body()
        valid: bool | None = None
        if self.client.conn.state is p.State.AWAIT_GET_VALIDITY:
            v = self.client.next_message()
            valid = isinstance(v, p.Valid)
        self.client.send(p.Success() if valid is not False else p.Failure())
        return body, valid

    def close(self) -> ServeResult:
        self._sock.shutdown(socket.SHUT_WR)
        self._thread.join(timeout=60)
        assert not self._thread.is_alive()
        self._sock.close()
        self._server_sock.close()
        assert self.result is not None
        return self.result
