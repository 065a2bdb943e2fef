"""The real transcripts of p2p-protocol.md section 8, replayed byte for byte.

Client/gateway conversations run through a ConnectionPair; the gateway's legs to its nodes run
against MemoryServer nodes, with the gateway relaying body chunks as they arrive.
"""

from __future__ import annotations

from collections.abc import Callable

from annextui.backend.keys import key_for_content
from annextui.proxycore.protocol import (
    NEED_DATA,
    AuthSuccess,
    Bypass,
    CheckPresent,
    Connection,
    ConnectionClosed,
    Data,
    DataHeader,
    EndOfData,
    Event,
    Failure,
    Get,
    GetTimestamp,
    LockContent,
    Put,
    PutFrom,
    RemoveBefore,
    Role,
    State,
    Success,
    SuccessPlus,
    Timestamp,
    UnlockContent,
    Valid,
    Version,
    Wait,
    answer_version,
    reply_result,
)
from tests.support.memory_server import MemoryServer
from tests.support.pair import ConnectionPair

K1 = "SHA256E-s12--a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447.txt"
KB = "SHA256E-s300000--416e2d0b7ba90379c299916ba2a8c05f8d1aeb791bf4bc2660dfb85b1ae9de67.bin"
HELLO = b"hello world\n"
GATEWAY = "a029d394-01e3-4952-88ad-8fa89011e289"
CLUSTER = "acfe40ae-7d71-8570-9254-a204e87ea36f"
NODE1 = "20499e53-87d9-4bb6-9536-4cf67351a8d7"
NODE2 = "e37ed43c-4191-49c8-ad0e-5a4760bf770f"
PX = "7f204a31-0000-4000-8000-0be102d76bd8"


def wire(*lines: str | bytes) -> bytes:
    return b"".join(x if isinstance(x, bytes) else x.encode() + b"\n" for x in lines)


def drain(conn: Connection) -> list[Event]:
    out: list[Event] = []
    while not isinstance(event := conn.next_event(), Wait):
        out.append(event)
        if isinstance(event, ConnectionClosed):
            break
    return out


class NodeLeg:
    """The gateway's client-side Connection to a MemoryServer node, with the wire logged."""

    def __init__(
        self, uuid: str, objects: dict[str, bytes], *, clock: Callable[[], int] = lambda: 0
    ) -> None:
        self.node = MemoryServer(uuid, objects, clock=clock)
        self.conn = Connection(Role.CLIENT, greeting=True)
        self.to_node = bytearray()
        self.from_node = bytearray()
        self._deliver(self.node.start())

    def _deliver(self, data: bytes) -> None:
        if data:  # b"" would mean EOF
            self.from_node += data
            self.conn.receive_data(data)

    def _push(self, data: bytes) -> list[Event]:
        self.to_node += data
        self._deliver(self.node.feed(data))
        return drain(self.conn)

    def send(self, *msgs: object) -> list[Event]:
        return self._push(b"".join(self.conn.send(m) for m in msgs))  # type: ignore[arg-type]

    def send_data(self, chunk: bytes) -> list[Event]:
        return self._push(self.conn.send_data(chunk))

    def open(self, version: int, bypass: tuple[str, ...]) -> None:
        assert drain(self.conn) == [AuthSuccess(self.node.uuid)]
        assert self.send(Version(version)) == [Version(version)]
        if bypass and self.conn.version >= 2:
            assert self.send(Bypass(bypass)) == []


def test_8_1_get_from_a_cluster_relayed_from_one_node() -> None:
    pair = ConnectionPair.create(greeting=True)
    pair.server_send(AuthSuccess(CLUSTER))
    assert pair.client_events() == [AuthSuccess(CLUSTER)]
    pair.client_send(Version(4))
    assert pair.server_events() == [Version(4)]
    pair.feed_client(answer_version(pair.server))  # answered without contacting nodes
    pair.client_events()
    pair.client_send(Get(0, "small.txt", K1))
    [request] = pair.server_events()
    assert request == Get(0, "small.txt", K1)

    # Gateway -> node2 leg, opened lazily; body chunks are relayed as they arrive.
    node2 = NodeLeg(NODE2, {K1: HELLO})
    node2.open(pair.server.version, (GATEWAY,))
    for event in node2.send(request):
        if isinstance(event, DataHeader | Valid):
            pair.server_send(event)
        elif isinstance(event, Data):
            pair.server_send_data(event.data)
    assert pair.client_events() == [DataHeader(12), Data(HELLO), EndOfData(), Valid()]
    pair.client_send(Success())
    [ack] = pair.server_events()
    assert node2.send(ack) == []  # the client's ack, relayed
    pair.close_client()
    assert pair.server_events() == [ConnectionClosed()]

    assert pair.to_client == wire(
        f"AUTH-SUCCESS {CLUSTER}", "VERSION 4", b"DATA 12\n", HELLO, "VALID"
    )
    assert pair.to_server == wire("VERSION 4", f"GET 0 small.txt {K1}", "SUCCESS")
    assert node2.from_node == wire(f"AUTH-SUCCESS {NODE2}", "VERSION 4", "DATA 12", HELLO, "VALID")
    assert node2.to_node == wire(
        "VERSION 4", f"BYPASS {GATEWAY}", f"GET 0 small.txt {K1}", "SUCCESS"
    )


def test_8_2_put_with_resume_in_real_client_write_sizes() -> None:
    pair = ConnectionPair.create(greeting=True)
    pair.server_send(AuthSuccess(GATEWAY))
    assert pair.client_events() == [AuthSuccess(GATEWAY)]
    pair.client_send(Version(4))
    pair.server_events()
    pair.feed_client(answer_version(pair.server))
    assert pair.client_events() == [Version(4)]
    pair.client_send(CheckPresent(KB))
    pair.server_events()
    pair.server_send(Failure())
    assert pair.client_events() == [Failure()]
    pair.client_send(Put("big.bin", KB))
    assert pair.server_events() == [Put("big.bin", KB)]
    pair.server_send(PutFrom(100000))
    assert pair.client_events() == [PutFrom(100000)]

    body = bytes(range(256)) * 781 + bytes(range(64))  # 200000 bytes
    assert len(body) == 300000 - 100000
    pair.client_send(DataHeader(len(body)))
    received: list[bytes] = []
    offset = 0
    for size in [32752] * 6 + [3488]:
        pair.client_send_data(body[offset : offset + size])
        offset += size
        events = pair.server_events()
        if offset == len(body):
            assert events[-1] == EndOfData()
            events = events[:-1]
        if events and events[0] == DataHeader(len(body)):
            events = events[1:]
        [chunk] = events  # one write arrives as one chunk: nothing is held back
        assert isinstance(chunk, Data)
        assert len(chunk.data) == size
        received.append(chunk.data)
    assert b"".join(received) == body
    pair.client_send(Valid())
    assert pair.server_events() == [Valid()]
    pair.server_send(Success())
    assert pair.client_events() == [Success()]

    assert pair.to_server == wire(
        "VERSION 4", f"CHECKPRESENT {KB}", f"PUT big.bin {KB}", "DATA 200000", body, "VALID"
    )
    assert pair.to_client == wire(
        f"AUTH-SUCCESS {GATEWAY}", "VERSION 4", "FAILURE", "PUT-FROM 100000", "SUCCESS"
    )


def test_8_3_drop_from_a_cluster_while_another_remote_holds_a_lock() -> None:
    # conn A: lock the key on proxied remote px, held open during the drop.
    a = ConnectionPair.create(greeting=True)
    a.server_send(AuthSuccess(PX))
    a.client_events()
    a.client_send(Version(4))
    a.server_events()
    a.feed_client(answer_version(a.server))
    a.client_events()
    a.client_send(LockContent(K1))
    a.server_events()
    a.server_send(Success())
    a.client_events()
    assert a.client.state is State.LOCKED

    # conn B: the cluster. The gateway answers GETTIMESTAMP with its own clock, and
    # translates REMOVE-BEFORE to each node's clock (here all clocks agree).
    b = ConnectionPair.create(greeting=True)
    b.server_send(AuthSuccess(CLUSTER))
    b.client_events()
    b.client_send(Version(4))
    b.server_events()
    b.feed_client(answer_version(b.server))
    b.client_events()
    nodes = [NodeLeg(u, {K1: HELLO}, clock=lambda: 476) for u in (NODE2, NODE1)]
    b.client_send(GetTimestamp())
    assert b.server_events() == [GetTimestamp()]
    for leg in nodes:
        leg.open(4, (GATEWAY,))
        assert leg.send(GetTimestamp()) == [Timestamp(476)]
    b.server_send(Timestamp(476))
    assert b.client_events() == [Timestamp(476)]
    deadline = 476 + 599  # t + (lock_time + 600 - now_local), as observed
    b.client_send(RemoveBefore(deadline, K1))
    [request] = b.server_events()
    removed = [leg.node.uuid for leg in nodes if leg.send(request) == [Success()]]
    b.feed_client(reply_result(b.server, True, removed))
    assert b.client_events() == [SuccessPlus((NODE2, NODE1))]
    assert all(K1 not in leg.node.objects for leg in nodes)

    a.client_send(UnlockContent())
    assert a.server_events() == [UnlockContent()]

    assert a.to_server == wire("VERSION 4", f"LOCKCONTENT {K1}", "UNLOCKCONTENT")
    assert b.to_server == wire("VERSION 4", "GETTIMESTAMP", f"REMOVE-BEFORE 1075 {K1}")
    assert b.to_client == wire(
        f"AUTH-SUCCESS {CLUSTER}", "VERSION 4", "TIMESTAMP 476", f"SUCCESS-PLUS {NODE2} {NODE1}"
    )
    for leg in nodes:
        assert leg.to_node == wire(
            "VERSION 4", f"BYPASS {GATEWAY}", "GETTIMESTAMP", f"REMOVE-BEFORE 1075 {K1}"
        )
        assert leg.from_node.endswith(wire("TIMESTAMP 476", "SUCCESS"))


def test_8_4_put_to_a_cluster_fanned_out_to_two_nodes() -> None:
    pair = ConnectionPair.create(greeting=True)
    pair.server_send(AuthSuccess(CLUSTER))
    pair.client_events()
    pair.client_send(Version(4))
    pair.server_events()
    pair.feed_client(answer_version(pair.server))
    pair.client_events()
    pair.client_send(CheckPresent(K1))
    pair.server_events()
    pair.server_send(Failure())  # no node listed in the gateway's log: none contacted
    pair.client_events()
    pair.client_send(Put("small.txt", K1))
    [put] = pair.server_events()

    nodes = [NodeLeg(u, {}) for u in (NODE2, NODE1)]
    offsets = []
    for leg in nodes:
        leg.open(4, (GATEWAY,))
        [reply] = leg.send(put)
        assert isinstance(reply, PutFrom)
        offsets.append(reply.offset)
    pair.server_send(PutFrom(min(offsets)))
    assert pair.client_events() == [PutFrom(0)]

    pair.client_send(DataHeader(len(HELLO)))
    pair.client_send_data(HELLO)
    pair.client_send(Valid())
    node_replies: dict[str, list[Event]] = {leg.node.uuid: [] for leg in nodes}
    for event in pair.server_events():
        for leg in nodes:
            if isinstance(event, DataHeader | Valid):
                node_replies[leg.node.uuid] += leg.send(event)
            elif isinstance(event, Data):
                node_replies[leg.node.uuid] += leg.send_data(event.data)
    stored = [u for u, events in node_replies.items() if events == [Success()]]
    assert pair.server.state is State.AWAIT_PUT_RESULT
    pair.feed_client(reply_result(pair.server, bool(stored), stored))
    assert pair.client_events() == [SuccessPlus((NODE2, NODE1))]

    assert pair.to_server == wire(
        "VERSION 4", f"CHECKPRESENT {K1}", f"PUT small.txt {K1}", "DATA 12", HELLO, "VALID"
    )
    assert pair.to_client == wire(
        f"AUTH-SUCCESS {CLUSTER}", "VERSION 4", "FAILURE", "PUT-FROM 0",
        f"SUCCESS-PLUS {NODE2} {NODE1}",
    )  # fmt: skip
    for leg in nodes:
        assert leg.node.objects == {K1: HELLO}
        assert leg.to_node == wire(
            "VERSION 4", f"BYPASS {GATEWAY}", f"PUT small.txt {K1}", "DATA 12", HELLO, "VALID"
        )
        assert leg.from_node == wire(
            f"AUTH-SUCCESS {leg.node.uuid}", "VERSION 4", "PUT-FROM 0", "SUCCESS"
        )


# Section 8.5 with the client's GET acknowledgement the summary leaves out (without it the real
# server reads the following LOCKCONTENT as the ack).
TRANSCRIPT_8_5_IN = wire(
    "VERSION 4",
    "FOO bar",
    "SUCCESS",
    "CHECKPRESENT",
    f"GET 0 /etc/passwd {K1}",
    f"GET 6  {K1}",
    "SUCCESS",
    f"LOCKCONTENT {K1}",
    f"UNLOCKCONTENT {K1}",
    f"PUT f.txt {K1}",
    "ERROR client gives up",
    "CHECKPRESENT never-read",
)
TRANSCRIPT_8_5_OUT = wire(
    "VERSION 4",
    "ERROR unknown command",
    "ERROR unexpected command",
    "ERROR unknown command",
    "ERROR unknown command",
    "DATA 6",
    b"world\n",
    "VALID",
    "SUCCESS",
    "ERROR expected UNLOCKCONTENT",
    "ALREADY-HAVE",
)


def test_8_5_error_handling_on_a_plain_server() -> None:
    server = MemoryServer(GATEWAY, {K1: HELLO})
    assert server.start() == wire(f"AUTH-SUCCESS {GATEWAY}")
    assert server.feed(TRANSCRIPT_8_5_IN) == TRANSCRIPT_8_5_OUT
    assert server.closed  # a client's ERROR makes the server stop reading
    assert server.locked is None


def test_8_5_byte_by_byte() -> None:
    server = MemoryServer(GATEWAY, {K1: HELLO})
    server.start()
    out = b"".join(server.feed(TRANSCRIPT_8_5_IN[i : i + 1]) for i in range(len(TRANSCRIPT_8_5_IN)))
    assert out == TRANSCRIPT_8_5_OUT


def test_memory_server_put_verifies_and_resumes() -> None:
    data = b"resumable content\n" * 100
    key = str(key_for_content(data, extension=".bin"))
    server = MemoryServer(GATEWAY)
    server.start()
    out = server.feed(wire("VERSION 1", f"PUT x.bin {key}", "DATA 1000") + data[:1000])
    assert out == wire("VERSION 1", "PUT-FROM 0")
    server.feed(b"")  # the client died mid-transfer: the partial file stays
    assert len(server.partial[key]) == 1000

    again = MemoryServer(GATEWAY, server.objects)
    again.partial = server.partial
    again.start()
    out = again.feed(wire("VERSION 1", f"PUT x.bin {key}", f"DATA {len(data) - 1000}"))
    assert out == wire("VERSION 1", "PUT-FROM 1000")
    assert again.feed(data[1000:] + wire("VALID")) == wire("SUCCESS")
    assert again.objects[key] == data

    bad = MemoryServer(GATEWAY)
    bad.start()
    tampered = b"X" + data[1:]
    out = bad.feed(wire("VERSION 0", f"PUT x.bin {key}", f"DATA {len(data)}") + tampered)
    assert out == wire("VERSION 0", "PUT-FROM 0", "FAILURE")  # v0: verified at body end
    assert key not in bad.objects
    assert bad.conn.next_event() is NEED_DATA
