"""A client and a server Connection joined in memory (test support, not shipped)."""

from __future__ import annotations

from dataclasses import dataclass, field

from annextui.proxycore.protocol.connection import Connection
from annextui.proxycore.protocol.events import ConnectionClosed, Event, Wait
from annextui.proxycore.protocol.messages import MAX_VERSION, Message
from annextui.proxycore.protocol.states import Role


@dataclass
class ConnectionPair:
    """Whatever one side sends is fed straight to the other; both directions are also logged
    byte for byte (`to_server`, `to_client`) so tests can compare with real transcripts."""

    client: Connection
    server: Connection
    to_server: bytearray = field(default_factory=bytearray)
    to_client: bytearray = field(default_factory=bytearray)

    @classmethod
    def create(
        cls,
        *,
        greeting: bool = False,
        client_max_version: int = MAX_VERSION,
        server_max_version: int = MAX_VERSION,
    ) -> ConnectionPair:
        return cls(
            Connection(Role.CLIENT, greeting=greeting, max_version=client_max_version),
            Connection(Role.SERVER, greeting=greeting, max_version=server_max_version),
        )

    def feed_server(self, data: bytes) -> None:
        """Deliver bytes to the server. Empty input is ignored: hang up with close_client()."""
        if data:
            self.to_server += data
            self.server.receive_data(data)

    def feed_client(self, data: bytes) -> None:
        if data:
            self.to_client += data
            self.client.receive_data(data)

    def client_send(self, *msgs: Message) -> None:
        for msg in msgs:
            self.feed_server(self.client.send(msg))

    def server_send(self, *msgs: Message) -> None:
        for msg in msgs:
            self.feed_client(self.server.send(msg))

    def client_send_data(self, chunk: bytes) -> None:
        self.feed_server(self.client.send_data(chunk))

    def server_send_data(self, chunk: bytes) -> None:
        self.feed_client(self.server.send_data(chunk))

    def close_client(self) -> None:
        """The client hangs up: the server sees EOF."""
        self.server.receive_data(b"")

    def close_server(self) -> None:
        self.client.receive_data(b"")

    def server_events(self) -> list[Event]:
        """Everything the server can read now (stops at NEED_DATA, PAUSED or a close)."""
        return _drain(self.server)

    def client_events(self) -> list[Event]:
        return _drain(self.client)


def _drain(conn: Connection) -> list[Event]:
    out: list[Event] = []
    while True:
        event = conn.next_event()
        if isinstance(event, Wait):
            return out
        out.append(event)
        if isinstance(event, ConnectionClosed):
            return out
