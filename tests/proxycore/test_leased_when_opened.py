"""nodepool.LeasedWhenOpened: a proxied remote's connection leased once the client's version
(and the BYPASS to send at connection time) are known, under the key they make."""

from __future__ import annotations

from annextui.backend.keys import Key
from annextui.proxycore.nodepool import LeasedWhenOpened, NodePool
from annextui.proxycore.peer import AlreadyHave, ContentLock, Incoming, Outcome, Outgoing, Peer

UUID = "40de0000-0000-4000-8000-000000000003"
GW = "6a7e0000-0000-4000-8000-00000000a001"


class _Conn(Peer):
    """A connection as the pool sees it: opened with an offer and a BYPASS, reusable."""

    def __init__(self, offer: int, bypass: frozenset[str]) -> None:
        self.offer = offer
        self.bypass_sent = bypass
        self.closed = False

    @property
    def uuid(self) -> str:
        return UUID

    def open(self, offer: int) -> int:
        return min(offer, 3)  # the remote speaks v3 at most

    def timestamp(self) -> int:
        return 7

    def check_present(self, key: Key) -> bool:
        raise NotImplementedError

    def lock_content(self, key: Key) -> ContentLock | None:
        raise NotImplementedError

    def get(self, key: Key, offset: int, associated_file: str | None) -> Outgoing | None:
        raise NotImplementedError

    def put(self, key: Key, associated_file: str | None) -> Incoming | AlreadyHave:
        raise NotImplementedError

    def remove(self, key: Key, *, before: int | None = None) -> Outcome:
        raise NotImplementedError

    def park(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


def _route(pool: NodePool, made: list[_Conn]) -> LeasedWhenOpened:
    def connect(offer: int, bypass: frozenset[str]) -> Peer:
        conn = _Conn(offer, bypass)
        made.append(conn)
        return conn

    def lease(offer: int, bypass: frozenset[str]) -> Peer:
        return pool.lease((UUID, offer, bypass), lambda: connect(offer, bypass))

    return LeasedWhenOpened(lease, uuid=UUID, relays=True)


def test_nothing_is_leased_before_open_and_the_version_comes_from_the_connection() -> None:
    pool, made = NodePool(idle_limit=1), list[_Conn]()
    route = _route(pool, made)
    assert made == []
    assert route.uuid == UUID
    assert route.relays
    assert route.open(4) == 3
    assert [(c.offer, c.bypass_sent) for c in made] == [(4, frozenset())]


def test_given_back_and_reused_by_the_next_request_with_the_same_key() -> None:
    pool, made = NodePool(idle_limit=1), list[_Conn]()
    first = _route(pool, made)
    first.open(4)
    first.close()
    assert pool.idle() == 1
    second = _route(pool, made)
    second.open(4)
    assert second.timestamp() == 7
    assert len(made) == 1  # the same connection
    other_version = _route(pool, made)
    other_version.open(1)
    assert len(made) == 2  # another offer is another connection


def test_a_bypass_after_open_takes_a_connection_opened_with_it() -> None:
    pool, made = NodePool(idle_limit=1), list[_Conn]()
    route = _route(pool, made)
    route.open(4)
    route.pass_bypass(frozenset({GW}))
    assert pool.idle() == 1  # the first connection, back in the pool under its own key
    route.open(4)
    assert [(c.offer, c.bypass_sent) for c in made] == [
        (4, frozenset()),
        (4, frozenset({GW})),
    ]
    route.pass_bypass(frozenset({GW}))  # the same set again: nothing changes
    assert len(made) == 2
    route.close()
    assert pool.idle() == 2
    assert not any(c.closed for c in made)
