"""NodePool at a server's shutdown: `close` then `wait_closed` account for every connection the
pool opened, the idle ones, those closing on background threads (surplus, stale) and those
still leased, closed as they come back. The p2phttp test with real nodes is
tests/p2phttp/test_node_pool.py (`test_sigterm_waits_for_a_node_connection_closing_...`)."""

from __future__ import annotations

import threading

from annextui.proxycore.nodepool import NodePool
from tests.proxycore.test_leased_when_opened import _Conn

WAIT = 60.0  # a bound only: every wait below ends as soon as the closes do


class _HeldClose(_Conn):
    """A connection whose close (a node's shell committing its journal) ends when released."""

    def __init__(self) -> None:
        super().__init__(4, frozenset())
        self.release = threading.Event()

    def close(self) -> None:
        self.release.wait()
        super().close()


def test_close_waits_for_a_surplus_connection_closing_in_the_background() -> None:
    pool = NodePool(idle_limit=1)
    inner = [_HeldClose(), _HeldClose()]
    made = [pool.lease("node3", lambda: inner[0]), pool.lease("node3", lambda: inner[1])]
    for peer in made:
        peer.close()  # the second one back makes the first surplus: closed in the background
    assert pool.idle() == 1
    pool.close()  # the idle one starts closing too
    told: list[int] = []
    assert pool.wait_closed(0, told.append) == 2  # neither close has ended
    assert told == [2]
    inner[0].release.set()
    inner[1].release.set()
    assert pool.wait_closed(WAIT) == 0
    assert all(c.closed for c in inner)


def test_a_connection_leased_at_shutdown_is_closed_when_given_back() -> None:
    pool = NodePool(idle_limit=1)
    conn = _Conn(4, frozenset())
    leased = pool.lease("node3", lambda: conn)
    pool.close()
    assert pool.wait_closed(0) == 1  # still in a request's hands
    back = threading.Thread(target=leased.close)
    back.start()
    assert pool.wait_closed(WAIT) == 0
    back.join()
    assert conn.closed
    assert pool.idle() == 0  # not kept: the pool keeps nothing once closed
    told: list[int] = []
    assert pool.wait_closed(0, told.append) == 0
    assert told == []  # nothing to wait for: nothing said


def test_a_close_that_never_ends_is_left_after_the_bound() -> None:
    pool = NodePool(idle_limit=1)
    stuck = _HeldClose()
    pool.lease("node3", lambda: stuck).close()
    pool.close()
    assert pool.wait_closed(0.05) == 1  # the shutdown goes on without it
    stuck.release.set()
    assert pool.wait_closed(WAIT) == 0
