"""The Connection state machine: negotiation, per-version legality, DATA framing, errors."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from annextui.proxycore.protocol import (
    MAX_LINE,
    MESSAGE_TYPES,
    NEED_DATA,
    PAUSED,
    AlreadyHave,
    AlreadyHavePlus,
    Auth,
    AuthFailure,
    AuthSuccess,
    BlockingConnection,
    Bypass,
    Changed,
    CheckPresent,
    Connect,
    ConnectDone,
    Connection,
    ConnectionClosed,
    Data,
    DataHeader,
    DataPresent,
    EndOfData,
    Error,
    Event,
    Failure,
    FailurePlus,
    Get,
    GetTimestamp,
    Invalid,
    LocalProtocolError,
    LockContent,
    Message,
    NotifyChange,
    Put,
    PutFrom,
    RemoteProtocolError,
    Remove,
    RemoveBefore,
    Role,
    Service,
    State,
    Success,
    SuccessPlus,
    Timestamp,
    UnlockContent,
    Valid,
    Version,
    answer_version,
    content,
    no_content,
    reply_already_have,
    reply_result,
)
from tests.support.memory_server import MemoryServer
from tests.support.pair import ConnectionPair

K1 = "SHA256E-s12--a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447.txt"
U1 = "e37ed43c-4191-49c8-ad0e-5a4760bf770f"
U2 = "20499e53-87d9-4bb6-9536-4cf67351a8d7"
C, S = Role.CLIENT, Role.SERVER


def negotiated(version: int, *, greeting: bool = False) -> ConnectionPair:
    pair = ConnectionPair.create(greeting=greeting)
    if greeting:
        pair.server_send(AuthSuccess(U1))
        assert pair.client_events() == [AuthSuccess(U1)]
    pair.client_send(Version(version))
    assert pair.server_events() == [Version(version)]
    pair.feed_client(answer_version(pair.server))
    assert pair.client_events() == [Version(version)]
    assert pair.client.version == pair.server.version == version
    return pair


def step(pair: ConnectionPair, sender: Role, msg: Message) -> list[Event]:
    """Send from one side; return what the other side reads."""
    if sender is C:
        pair.client_send(msg)
        return pair.server_events()
    pair.server_send(msg)
    return pair.client_events()


# --- every message, at every version ----------------------------------------------------------

# How to reach a state where each message is legal: (sender, prefix of exchanges, min version).
ROUTES: dict[type[Message], tuple[Role, list[tuple[Role, Message]], int]] = {
    Auth: (C, [], 0),
    AuthSuccess: (S, [(C, Auth(U2, "tok"))], 0),
    AuthFailure: (S, [(C, Auth(U2, "tok"))], 0),
    Bypass: (C, [], 2),
    CheckPresent: (C, [], 0),
    LockContent: (C, [], 0),
    UnlockContent: (C, [(C, LockContent(K1)), (S, Success())], 0),
    Remove: (C, [], 0),
    RemoveBefore: (C, [], 3),
    GetTimestamp: (C, [], 3),
    Timestamp: (S, [(C, GetTimestamp())], 3),
    Get: (C, [], 0),
    Put: (C, [], 0),
    PutFrom: (S, [(C, Put("f", K1))], 0),
    DataHeader: (C, [(C, Put("f", K1)), (S, PutFrom(0))], 0),
    DataPresent: (C, [(C, Put("f", K1)), (S, PutFrom(0))], 4),
    Valid: (S, [(C, Get(0, None, K1)), (S, DataHeader(0))], 1),
    Invalid: (S, [(C, Get(0, None, K1)), (S, DataHeader(0))], 1),
    Success: (S, [(C, CheckPresent(K1))], 0),
    Failure: (S, [(C, CheckPresent(K1))], 0),
    SuccessPlus: (S, [(C, Remove(K1))], 2),
    FailurePlus: (S, [(C, Remove(K1))], 2),
    AlreadyHave: (S, [(C, Put("f", K1))], 0),
    AlreadyHavePlus: (S, [(C, Put("f", K1))], 2),
    Connect: (C, [], 0),
    ConnectDone: (C, [(C, Connect(Service.UPLOAD_PACK))], 0),
    NotifyChange: (C, [], 0),
    Changed: (S, [(C, NotifyChange())], 0),
    Error: (S, [(C, CheckPresent(K1))], 0),
}
SAMPLE: dict[type[Message], Message] = {
    Auth: Auth(U2, "tok"), AuthSuccess: AuthSuccess(U1), AuthFailure: AuthFailure(),
    Bypass: Bypass((U1,)), CheckPresent: CheckPresent(K1), LockContent: LockContent(K1),
    UnlockContent: UnlockContent(), Remove: Remove(K1), RemoveBefore: RemoveBefore(9, K1),
    GetTimestamp: GetTimestamp(), Timestamp: Timestamp(476), Get: Get(3, "dir/a_b%c.txt", K1),
    Put: Put(None, K1), PutFrom: PutFrom(5), DataHeader: DataHeader(0),
    DataPresent: DataPresent(), Valid: Valid(), Invalid: Invalid(), Success: Success(),
    Failure: Failure(), SuccessPlus: SuccessPlus((U1, U2)), FailurePlus: FailurePlus((U2,)),
    AlreadyHave: AlreadyHave(), AlreadyHavePlus: AlreadyHavePlus((U1,)),
    Connect: Connect(Service.RECEIVE_PACK), ConnectDone: ConnectDone(1),
    NotifyChange: NotifyChange(), Changed: Changed(("abc",)), Error: Error("no  way"),
}  # fmt: skip


def test_routes_cover_every_message_but_version() -> None:
    assert set(ROUTES) | {Version} == set(MESSAGE_TYPES)


@pytest.mark.parametrize("version", range(5))
@pytest.mark.parametrize("kind", list(ROUTES), ids=lambda k: k.WORD)
def test_every_message_round_trips_at_every_version(kind: type[Message], version: int) -> None:
    sender, prefix, min_version = ROUTES[kind]
    pair = negotiated(version)
    msg = SAMPLE[kind]
    side = pair.client if sender is C else pair.server
    if version < min_version:

        def reach_and_send() -> None:
            for who, earlier in prefix:
                step(pair, who, earlier)
            side.send(msg)

        # Either the way there or the message itself is refused before anything is sent.
        with pytest.raises(LocalProtocolError):
            reach_and_send()
        return
    for who, earlier in prefix:
        step(pair, who, earlier)
    received = step(pair, sender, msg)
    expected: list[Event] = [msg, EndOfData()] if isinstance(msg, DataHeader) else [msg]
    assert received == expected
    assert pair.client.state == pair.server.state


def test_version_negotiation_caps_at_four_and_at_the_servers_max() -> None:
    server = Connection(S)
    server.receive_data(b"VERSION 99\n")
    assert server.next_event() == Version(99)
    assert answer_version(server) == b"VERSION 4\n"
    assert server.version == 4

    pair = ConnectionPair.create(server_max_version=1)
    step(pair, C, Version(4))
    with pytest.raises(LocalProtocolError, match="answers an offer"):
        pair.server.send(Version(2))
    assert pair.server.state is State.AWAIT_VERSION  # nothing changed
    assert step(pair, S, Version(1)) == [Version(1)]
    assert pair.client.version == pair.server.version == 1


def test_client_cannot_offer_above_its_max_nor_accept_a_higher_answer() -> None:
    client = Connection(C, max_version=2)
    with pytest.raises(LocalProtocolError):
        client.send(Version(3))
    client.send(Version(2))
    client.receive_data(b"VERSION 3\n")
    with pytest.raises(RemoteProtocolError) as info:
        client.next_event()
    assert info.value.fatal
    assert info.value.error_text == "expected VERSION"


def test_a_client_that_skips_version_speaks_v0() -> None:
    pair = ConnectionPair.create()
    assert step(pair, C, Get(0, "small.txt", K1)) == [Get(0, "small.txt", K1)]
    pair.feed_client(content(pair.server, b"hello world\n"))
    assert pair.to_client == b"DATA 12\nhello world\n"  # no VALID line at v0
    assert pair.client_events() == [DataHeader(12), Data(b"hello world\n"), EndOfData()]
    assert pair.client.state is State.AWAIT_GET_ACK
    assert step(pair, C, Success()) == [Success()]
    # VERSION only as the first request.
    with pytest.raises(LocalProtocolError):
        pair.client.send(Version(4))
    pair.server.receive_data(b"VERSION 4\n")
    with pytest.raises(RemoteProtocolError) as info:
        pair.server.next_event()
    assert info.value.error_text == "unexpected command"
    assert not info.value.fatal


def test_old_server_answering_version_with_error_means_v0() -> None:
    pair = ConnectionPair.create()
    step(pair, C, Version(4))
    assert step(pair, S, Error("unknown command")) == [Error("unknown command")]
    assert pair.client.version == 0
    assert pair.client.state is State.IDLE
    with pytest.raises(LocalProtocolError, match="version"):
        pair.client.send(GetTimestamp())


def test_server_accepts_timestamp_requests_below_v3_like_git_annex() -> None:
    # git-annex 10.20261026 at VERSION 2 answers GETTIMESTAMP and REMOVE-BEFORE normally.
    pair = negotiated(2)
    pair.feed_server(b"GETTIMESTAMP\n")
    assert pair.server_events() == [GetTimestamp()]
    pair.server_send(Timestamp(404))
    pair.feed_server(f"REMOVE-BEFORE 1 {K1}\nBYPASS {U1}\n".encode())
    assert pair.server_events() == [RemoveBefore(1, K1)]
    pair.server_send(Failure())
    assert pair.server_events() == [Bypass((U1,))]
    # ... but a v1 server does not accept DATA-PRESENT, and a v1 client no PLUS reply.
    with pytest.raises(LocalProtocolError):
        negotiated(1).client.send(Bypass((U1,)))


def test_plus_replies_only_at_v2() -> None:
    for version, expected in [(1, b"SUCCESS\n"), (2, b"SUCCESS-PLUS " + U1.encode() + b"\n")]:
        pair = negotiated(version)
        step(pair, C, Remove(K1))
        assert reply_result(pair.server, True, [U1]) == expected
    pair = negotiated(4)
    step(pair, C, CheckPresent(K1))
    assert reply_result(pair.server, True, [U1]) == b"SUCCESS\n"  # CHECKPRESENT has no PLUS
    pair = negotiated(1)
    step(pair, C, Put("f", K1))
    assert reply_already_have(pair.server, [U1]) == b"ALREADY-HAVE\n"
    pair = negotiated(1)
    step(pair, C, Remove(K1))
    pair.feed_client(b"SUCCESS-PLUS " + U1.encode() + b"\n")
    with pytest.raises(RemoteProtocolError) as info:
        pair.client.next_event()
    assert info.value.error_text == "expected SUCCESS or FAILURE"


# --- request / reply order --------------------------------------------------------------------


def test_greeting_must_come_first_and_sets_peer_uuid() -> None:
    pair = ConnectionPair.create(greeting=True)
    with pytest.raises(LocalProtocolError):
        pair.client.send(Version(4))
    assert pair.client.next_event() is NEED_DATA
    assert pair.server.next_event() is PAUSED
    assert step(pair, S, AuthSuccess(U1)) == [AuthSuccess(U1)]
    assert pair.client.peer_uuid == U1
    assert pair.client.state is pair.server.state is State.IDLE


def test_auth_exchange_records_the_clients_uuid() -> None:
    pair = ConnectionPair.create()
    step(pair, C, Auth(U2, "secret"))
    assert pair.server.peer_uuid is None
    step(pair, S, AuthSuccess(U1))
    assert pair.server.peer_uuid == U2
    assert pair.client.peer_uuid == U1


@pytest.mark.parametrize(
    ("request_", "legal", "illegal"),
    [
        (CheckPresent(K1), [Success(), Failure(), Error("x")], [AlreadyHave(), SuccessPlus((U1,))]),
        (Put("f", K1), [AlreadyHave(), AlreadyHavePlus((U1,)), PutFrom(0), Error("x")],
         [Success(), DataHeader(0)]),
        (Get(0, None, K1), [DataHeader(0), Error("x")], [Success(), Valid()]),
        (GetTimestamp(), [Timestamp(1), Error("x")], [Success()]),
        (LockContent(K1), [Success(), Failure(), Error("x")], [SuccessPlus((U1,))]),
        (Remove(K1), [Success(), Failure(), SuccessPlus((U1,)), FailurePlus(()), Error("x")],
         [AlreadyHave()]),
        (NotifyChange(), [Changed(()), Error("x")], [Success()]),
    ],
)  # fmt: skip
def test_server_replies_allowed_per_request(
    request_: Message, legal: list[Message], illegal: list[Message]
) -> None:
    for reply in legal:
        pair = negotiated(4)
        step(pair, C, request_)
        assert pair.server.sendable() >= {type(reply)}
        assert pair.client.next_event() is NEED_DATA
        assert step(pair, S, reply)[0] == reply
    for reply in illegal:
        pair = negotiated(4)
        step(pair, C, request_)
        with pytest.raises(LocalProtocolError):
            pair.server.send(reply)
        assert pair.server.state is not State.IDLE  # refused: nothing changed


def test_server_pauses_while_it_owes_a_reply_and_leaves_pipelined_requests_unread() -> None:
    pair = negotiated(4)
    pair.feed_server(f"CHECKPRESENT {K1}\nREMOVE {K1}\n".encode())
    assert pair.server.next_event() == CheckPresent(K1)
    assert pair.server.next_event() is PAUSED
    assert pair.server.our_turn
    pair.server_send(Success())
    assert pair.server.next_event() == Remove(K1)
    assert pair.server.next_event() is PAUSED
    # A Connection-driven client cannot pipeline: it waits for each reply.
    client = negotiated(4).client
    client.send(CheckPresent(K1))
    with pytest.raises(LocalProtocolError):
        client.send(Remove(K1))


def test_lockcontent_success_must_be_followed_by_bare_unlockcontent() -> None:
    pair = negotiated(4)
    step(pair, C, LockContent(K1))
    step(pair, S, Success())
    assert pair.client.state is State.LOCKED
    assert pair.client.sendable() == {UnlockContent}
    with pytest.raises(LocalProtocolError):
        pair.client.send(CheckPresent(K1))
    with pytest.raises(LocalProtocolError):
        pair.server.send(Success())
    assert step(pair, C, UnlockContent()) == [UnlockContent()]
    assert pair.server.state is State.IDLE


def test_lock_failure_needs_no_unlock() -> None:
    pair = negotiated(4)
    step(pair, C, LockContent(K1))
    step(pair, S, Failure())
    assert pair.client.state is State.IDLE


def test_put_flow_with_resume_and_validity() -> None:
    pair = negotiated(4)
    step(pair, C, Put("big.bin", K1))
    step(pair, S, PutFrom(4))
    assert pair.client.sendable() == {DataHeader, DataPresent, Error}
    pair.client_send(DataHeader(8))
    with pytest.raises(LocalProtocolError, match="unsent"):
        pair.client.send(Valid())
    pair.client_send_data(b"o world\n")
    assert pair.client.outgoing_remaining == 0
    with pytest.raises(LocalProtocolError, match="exceed"):
        pair.client.send_data(b"x")
    assert pair.server_events() == [DataHeader(8), Data(b"o world\n"), EndOfData()]
    assert step(pair, C, Valid()) == [Valid()]
    assert step(pair, S, SuccessPlus((U1,))) == [SuccessPlus((U1,))]
    assert pair.to_server.endswith(b"DATA 8\no world\nVALID\n")


def test_data_present_at_v4_and_client_error_after_put_from() -> None:
    pair = negotiated(4)
    step(pair, C, Put(None, K1))
    step(pair, S, PutFrom(0))
    assert step(pair, C, DataPresent()) == [DataPresent()]
    assert pair.server.state is State.AWAIT_PUT_RESULT  # no validity after DATA-PRESENT
    step(pair, S, Failure())
    step(pair, C, Put(None, K1))
    step(pair, S, PutFrom(0))
    step(pair, C, Error("changed my mind"))
    assert pair.server.state is pair.client.state is State.IDLE


def test_get_at_v1_then_ack() -> None:
    pair = negotiated(1)
    step(pair, C, Get(6, None, K1))
    pair.feed_client(content(pair.server, b"world\n"))
    assert pair.to_client.endswith(b"DATA 6\nworld\nVALID\n")
    assert pair.client_events() == [DataHeader(6), Data(b"world\n"), EndOfData(), Valid()]
    assert pair.client.next_event() is PAUSED
    assert step(pair, C, Failure()) == [Failure()]


def test_missing_content_reply() -> None:
    for version, wire in [(0, b"DATA 0\n"), (1, b"DATA 0\nINVALID\n")]:
        pair = negotiated(version)
        step(pair, C, Get(0, None, K1))
        assert no_content(pair.server) == wire


def test_cannot_answer_before_reading_the_whole_body() -> None:
    pair = negotiated(0)
    step(pair, C, Put(None, K1))
    step(pair, S, PutFrom(0))
    pair.client_send(DataHeader(3))
    pair.client_send_data(b"ab")
    assert pair.server_events() == [DataHeader(3), Data(b"ab")]
    assert pair.server.incoming_remaining == 1
    with pytest.raises(LocalProtocolError, match="body"):
        pair.server.send(Success())
    pair.client_send_data(b"c")
    assert pair.server_events() == [Data(b"c"), EndOfData()]
    assert pair.server.state is State.AWAIT_PUT_RESULT  # v0: no VALID/INVALID
    step(pair, S, Success())


def test_client_error_between_requests_ends_the_conversation() -> None:
    pair = negotiated(4)
    received = step(pair, C, Error("client gives up"))
    assert received == [Error("client gives up"), ConnectionClosed()]
    assert pair.server.next_event() == ConnectionClosed()
    with pytest.raises(LocalProtocolError):
        pair.server.send(Success())


def test_tunnel_carries_data_both_ways_until_connectdone() -> None:
    pair = negotiated(4)
    step(pair, C, Connect(Service.UPLOAD_PACK))
    # Both sides stream at once: a half-received body does not stop the other direction.
    pair.server_send(DataHeader(4))
    pair.server_send_data(b"00")
    assert pair.client_events() == [DataHeader(4), Data(b"00")]
    assert pair.client.incoming_remaining == 2
    pair.client_send(DataHeader(2))  # allowed mid-body only inside a tunnel
    pair.client_send_data(b"hi")
    pair.server_send_data(b"00")
    assert pair.client_events() == [Data(b"00"), EndOfData()]
    assert pair.server_events() == [DataHeader(2), Data(b"hi"), EndOfData()]
    # CONNECTDONE from both sides, crossing on the wire.
    from_client = pair.client.send(ConnectDone(0))
    from_server = pair.server.send(ConnectDone(0))
    pair.feed_server(from_client)
    pair.feed_client(from_server)
    assert pair.server_events() == [ConnectDone(0), ConnectionClosed()]
    assert pair.client_events() == [ConnectDone(0), ConnectionClosed()]
    assert pair.client.state is pair.server.state is State.CLOSED


def test_refused_connect_ends_the_connection() -> None:
    pair = negotiated(4)
    step(pair, C, Connect(Service.RECEIVE_PACK))
    text = "this repository is read-only; write access denied"
    assert step(pair, S, Error(text)) == [Error(text), ConnectionClosed()]


# --- DATA framing -----------------------------------------------------------------------------


@given(
    body=st.binary(max_size=3000),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12),
)
def test_data_framing_across_arbitrary_chunk_boundaries(body: bytes, cuts: list[int]) -> None:
    # The body may contain newlines and things that look like messages: none are parsed.
    body = body + b"\nVALID\nSUCCESS\n"[: len(body) % 15]
    wire = f"VERSION 1\nPUT f {K1}\n".encode()
    server = Connection(S)
    tail = f"DATA {len(body)}\n".encode() + body + b"VALID\n"
    server.receive_data(wire)
    assert server.next_event() == Version(1)
    answer_version(server)
    assert server.next_event() == Put("f", K1)
    server.send(PutFrom(0))
    events: list[object] = []
    points = sorted({min(c, len(tail)) for c in cuts} | {0, len(tail)})
    for a, b in pairwise(points):
        server.receive_data(tail[a:b])
        while (ev := server.next_event()) is not NEED_DATA:
            assert ev is not PAUSED
            events.append(ev)
            if ev == Valid():
                break
    assert events[0] == DataHeader(len(body))
    chunks = [e.data for e in events if isinstance(e, Data)]
    assert b"".join(chunks) == body
    assert all(chunks)  # never an empty Data event
    assert events[-2:] == [EndOfData(), Valid()]
    assert server.state is State.AWAIT_PUT_RESULT


def test_large_body_streams_in_the_pieces_it_arrives_in() -> None:
    size = 20 * 1024 * 1024
    piece = b"\xab" * 65536
    pair = negotiated(4)
    step(pair, C, Put(None, K1))
    step(pair, S, PutFrom(0))
    pair.client.send(DataHeader(size))
    pair.server.receive_data(b"DATA %d\n" % size)
    assert pair.server.next_event() == DataHeader(size)
    received = 0
    while received < size:
        pair.server.receive_data(pair.client.send_data(piece))
        event = pair.server.next_event()
        assert isinstance(event, Data)
        assert len(event.data) == len(piece)  # delivered at once, not accumulated
        received += len(event.data)
        assert pair.server.incoming_remaining == size - received
        assert pair.server.next_event() in (NEED_DATA, EndOfData())
    assert pair.server.incoming_remaining == 0


def test_body_then_next_message_in_one_read() -> None:
    client = Connection(C)
    client.send(Version(2))
    client.receive_data(b"VERSION 2\n")
    client.next_event()
    client.send(Get(0, None, K1))
    client.receive_data(b"DATA 5\nab\ncdVALID\r\n")
    events = [client.next_event() for _ in range(4)]
    assert events == [DataHeader(5), Data(b"ab\ncd"), EndOfData(), Valid()]


# --- errors (spec section 5) ------------------------------------------------------------------


def server_after(version: int, *lines: bytes) -> Connection:
    server = Connection(S)
    server.receive_data(b"VERSION %d\n" % version)
    server.next_event()
    answer_version(server)
    for line in lines:
        server.receive_data(line)
    return server


def expect_remote_error(conn: Connection, text: str | None, *, fatal: bool) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    assert info.value.error_text == text
    assert info.value.fatal is fatal


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (b"FOO bar\n", "unknown command"),
        (b"\n", "unknown command"),
        (b"CHECKPRESENT\n", "unknown command"),
        (b"GET 0 /etc/passwd " + K1.encode() + b"\n", "unknown command"),
        (b"SUCCESS\n", "unexpected command"),
        (b"AUTH-SUCCESS " + U1.encode() + b"\n", "unexpected command"),
        (b"DATA 5\n", "unexpected command"),
        (b"VALID\n", "unexpected command"),
        (b"VERSION 4\n", "unexpected command"),  # second VERSION
        (b"DATA-PRESENT\n", "unexpected command"),
    ],
)
def test_server_recovers_from_bad_lines_between_requests(line: bytes, text: str) -> None:
    server = server_after(4, line, b"CHECKPRESENT " + K1.encode() + b"\n")
    expect_remote_error(server, text, fatal=False)
    assert server.owed_error == text
    assert server.next_event() is PAUSED  # the ERROR reply comes first
    assert server.sendable() == {Error}
    with pytest.raises(LocalProtocolError, match="owed"):
        server.send(Success())
    assert server.send(Error(text)) == f"ERROR {text}\n".encode()
    assert server.next_event() == CheckPresent(K1)


def test_bad_line_in_locked_state_releases_the_lock() -> None:
    server = server_after(4, f"LOCKCONTENT {K1}\n".encode())
    assert server.next_event() == LockContent(K1)
    server.send(Success())
    server.receive_data(f"UNLOCKCONTENT {K1}\n".encode())
    expect_remote_error(server, "expected UNLOCKCONTENT", fatal=False)
    assert server.state is State.IDLE


@pytest.mark.parametrize("version", [3, 4])
def test_put_from_needs_data(version: int) -> None:
    server = server_after(version, f"PUT f {K1}\nDATA-PRESENT\n".encode())
    server.next_event()
    server.send(PutFrom(0))
    if version == 4:
        assert server.next_event() == DataPresent()
        return
    # Below v4: "ERROR expected DATA" and no SUCCESS/FAILURE.
    expect_remote_error(server, "expected DATA", fatal=False)
    assert server.state is State.IDLE


def test_missing_validity_line_still_gets_a_result() -> None:
    server = server_after(1, f"PUT f {K1}\n".encode())
    server.next_event()
    server.send(PutFrom(0))
    server.receive_data(b"DATA 1\nxSUCCESS\n")
    assert [server.next_event() for _ in range(3)] == [DataHeader(1), Data(b"x"), EndOfData()]
    expect_remote_error(server, "expected VALID or INVALID", fatal=False)
    assert server.state is State.AWAIT_PUT_RESULT
    server.send(Error("expected VALID or INVALID"))
    server.send(Success())
    assert server.state.value == "idle"  # (mypy narrowed `state` above)


@pytest.mark.parametrize(("version", "text"), [
    (1, "expected SUCCESS or FAILURE"),
    (2, "expected SUCCESS or SUCCESS-PLUS or FAILURE or FAILURE-PLUS"),
])  # fmt: skip
def test_get_ack_error_text_depends_on_version(version: int, text: str) -> None:
    server = server_after(version, f"GET 0  {K1}\nCHECKPRESENT {K1}\n".encode())
    server.next_event()
    content(server, b"hello world\n")
    expect_remote_error(server, text, fatal=False)
    assert server.state is State.IDLE


@pytest.mark.parametrize(
    ("version", "request_", "reply", "text"),
    [
        (4, Version(4), b"SUCCESS\n", "expected VERSION"),
        (4, CheckPresent(K1), b"ALREADY-HAVE\n", "expected SUCCESS or FAILURE"),
        (4, CheckPresent(K1), b"garbage\n", "expected SUCCESS or FAILURE"),
        (4, Put(None, K1), b"SUCCESS\n", "expected PUT_FROM or ALREADY_HAVE"),
        (1, Put(None, K1), b"ALREADY-HAVE-PLUS x\n", "expected PUT_FROM or ALREADY_HAVE"),
        (2, Remove(K1), b"DATA 0\n", "expected SUCCESS or SUCCESS-PLUS or FAILURE or FAILURE-PLUS"),
        (4, GetTimestamp(), b"SUCCESS\n", "expected TIMESTAMP"),
        (4, Get(0, None, K1), b"SUCCESS\n", "expected DATA"),
        (4, NotifyChange(), b"SUCCESS\n", "expected CHANGED"),
        (4, Auth(U1, "t"), b"SUCCESS\n", "auth failed"),
        (4, Connect(Service.UPLOAD_PACK), b"SUCCESS\n", "expected DATA or CONNECTDONE"),
    ],
)  # fmt: skip
def test_client_side_errors_are_fatal_with_git_annex_texts(
    version: int, request_: Message, reply: bytes, text: str
) -> None:
    client = Connection(C)
    if not isinstance(request_, Version):
        client.send(Version(version))
        client.receive_data(b"VERSION %d\n" % version)
        client.next_event()
    client.send(request_)
    client.receive_data(reply)
    expect_remote_error(client, text, fatal=True)
    assert client.state is State.BROKEN
    assert client.owed_error == text
    assert client.send(Error(text)) == f"ERROR {text}\n".encode()  # the one farewell
    with pytest.raises(LocalProtocolError):
        client.send(Error(text))
    expect_remote_error(client, None, fatal=True)


def test_get_validity_missing_is_fatal_for_the_client() -> None:
    client = Connection(C)
    client.send(Version(4))
    client.receive_data(b"VERSION 4\n")
    client.next_event()
    client.send(Get(0, None, K1))
    client.receive_data(b"DATA 1\nxSUCCESS\n")
    assert [client.next_event() for _ in range(3)] == [DataHeader(1), Data(b"x"), EndOfData()]
    expect_remote_error(client, "expected VALID or INVALID", fatal=True)


def test_line_length_limit() -> None:
    ok = server_after(4, b"X" * (MAX_LINE - 1) + b"\n")
    expect_remote_error(ok, "unknown command", fatal=False)  # long but within the limit
    server = server_after(4, b"X" * MAX_LINE)
    expect_remote_error(server, None, fatal=True)
    trickle = server_after(4)
    for _ in range(MAX_LINE // 1024 - 1):
        trickle.receive_data(b"Y" * 1024)
        assert trickle.next_event() is NEED_DATA
    trickle.receive_data(b"Y" * 1024)
    expect_remote_error(trickle, None, fatal=True)
    late = server_after(4, b"Z" * MAX_LINE + b"\n")
    expect_remote_error(late, None, fatal=True)


def test_eof_handling() -> None:
    server = server_after(4)
    server.receive_data(b"")
    assert server.next_event() == ConnectionClosed()
    assert server.state is State.CLOSED
    with pytest.raises(LocalProtocolError):
        server.receive_data(b"more")

    locked = server_after(4, f"LOCKCONTENT {K1}\n".encode())
    locked.next_event()
    locked.send(Success())
    locked.receive_data(b"")
    assert locked.next_event() == ConnectionClosed()  # orderly hang-up unlocks

    midline = server_after(4, b"CHECKPRES", b"")
    expect_remote_error(midline, None, fatal=True)

    midbody = server_after(4, f"PUT f {K1}\n".encode())
    midbody.next_event()
    midbody.send(PutFrom(0))
    midbody.receive_data(b"DATA 10\nabc")
    midbody.receive_data(b"")
    assert [midbody.next_event() for _ in range(2)] == [DataHeader(10), Data(b"abc")]
    expect_remote_error(midbody, None, fatal=True)


def test_client_may_still_get_its_reply_after_closing_its_side() -> None:
    # `printf 'VERSION 4\nCHECKPRESENT K\n' | git-annex-shell p2pstdio ...` gets both answers.
    server = Connection(S)
    server.receive_data(f"VERSION 4\nCHECKPRESENT {K1}\n".encode())
    server.receive_data(b"")
    assert server.next_event() == Version(4)
    assert server.next_event() is PAUSED
    answer_version(server)
    assert server.next_event() == CheckPresent(K1)
    server.send(Failure())
    assert server.next_event() == ConnectionClosed()


def test_local_errors_change_nothing() -> None:
    pair = negotiated(2)
    before = (pair.client.state, pair.client.version)
    for bad in [GetTimestamp(), DataPresent(), Success(), UnlockContent(), Version(2)]:
        with pytest.raises(LocalProtocolError):
            pair.client.send(bad)
    with pytest.raises(LocalProtocolError):
        pair.client.send_data(b"x")
    assert (pair.client.state, pair.client.version) == before
    assert step(pair, C, CheckPresent(K1)) == [CheckPresent(K1)]


def test_sendable_matches_what_send_accepts() -> None:
    pair = negotiated(2)
    assert pair.client.sendable() == {
        Auth, CheckPresent, LockContent, Remove, Get, Put, NotifyChange, Connect, Bypass, Error,
    }  # fmt: skip
    assert pair.server.sendable() == frozenset()
    with pytest.raises(ValueError, match="max_version"):
        Connection(C, max_version=5)


# --- the blocking helper ----------------------------------------------------------------------


class Wire:
    """A MemoryServer behind blocking read/write callables, as a pipe would be."""

    def __init__(self) -> None:
        self.server = MemoryServer(U1, {K1: b"hello world\n" * 1000})
        self.pending = bytearray(self.server.start())
        self.reads: list[int] = []

    def write(self, data: bytes) -> None:
        self.pending += self.server.feed(data)

    def read(self, n: int) -> bytes:
        self.reads.append(n)
        chunk = bytes(self.pending[:n])
        del self.pending[:n]
        return chunk


def test_blocking_connection_over_callables() -> None:
    wire = Wire()
    peer = BlockingConnection(Connection(C, greeting=True), wire.read, wire.write, read_size=1000)
    assert peer.next_message() == AuthSuccess(U1)
    peer.send(Version(4))
    with pytest.raises(LocalProtocolError, match="not allowed"):
        peer.send(CheckPresent(K1))  # no pipelining: the VERSION answer comes first
    assert peer.next_message() == Version(4)
    peer.send(CheckPresent(K1))
    assert peer.next_message() == Success()
    peer.send(Get(0, None, K1))
    assert peer.next_message() == DataHeader(12000)
    chunks = list(peer.iter_body())
    assert b"".join(chunks) == b"hello world\n" * 1000
    assert max(len(c) for c in chunks) <= 1000  # bounded by read_size
    assert peer.next_message() == Valid()
    with pytest.raises(LocalProtocolError, match="our turn"):
        peer.next_event()
    peer.send(Success())
    # A refused message after a good one: the good one is still written.
    with pytest.raises(LocalProtocolError):
        peer.send(CheckPresent(K1), Success())
    assert peer.next_message() == Success()


def test_message_base_is_abstract() -> None:
    with pytest.raises(TypeError, match="abstract"):
        Message()


def _client_awaiting_body(length: int) -> Connection:
    """A v1 client that asked for K1 and read the `DATA length` line."""
    pair = negotiated(1)
    step(pair, C, Get(0, None, K1))
    pair.client.receive_data(f"DATA {length}\n".encode())
    assert pair.client.next_event() == DataHeader(length)
    return pair.client


def test_a_body_handed_over_as_bytes_comes_back_as_the_same_object() -> None:
    """A 1 MiB read of a node's GET body is relayed without the two copies of the line
    buffer; what follows the body in the same read is still read, in order."""
    client = _client_awaiting_body(10)
    first = bytes(range(6))
    client.receive_data(first)
    ev = client.next_event()
    assert isinstance(ev, Data)
    assert ev.data is first
    client.receive_data(b"6789VALI")  # the end of the body and part of what follows
    client.receive_data(b"D\n")
    assert client.next_event() == Data(b"6789")
    assert client.next_event() == EndOfData()
    assert client.next_event() == Valid()


def test_body_bytes_keep_their_order_with_bytes_received_after_them() -> None:
    client = _client_awaiting_body(8)
    client.receive_data(b"abc")  # kept as it came
    client.receive_data(b"defgh")  # behind it, in the line buffer
    client.receive_data(b"VALID\n")
    events = []
    while (ev := client.next_event()) is not NEED_DATA:
        events.append(ev)
        if ev == Valid():
            break
    assert events == [Data(b"abc"), Data(b"defgh"), EndOfData(), Valid()]


def test_a_body_view_of_a_reused_buffer_is_copied() -> None:
    """BlockingConnection's readinto path hands views of one buffer it reads into again."""
    client = _client_awaiting_body(4)
    buf = bytearray(b"wxyz")
    client.receive_data(memoryview(buf))  # type: ignore[arg-type]  # what readinto passes
    buf[:] = b"0000"
    assert client.next_event() == Data(b"wxyz")


def test_a_hang_up_inside_a_body_handed_over_as_bytes_breaks_the_connection() -> None:
    client = _client_awaiting_body(10)
    client.receive_data(b"12345")
    assert client.next_event() == Data(b"12345")
    client.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="5 DATA bytes outstanding"):
        client.next_event()
