"""SshPool.prune: which kept transports a long-running server closes, and which it keeps.

The transports are stand-ins recording `close()` (pruning decides from the pool's own counts
and times; the real transports to a real sshd are tested in test_ssh.py and through the relay in
tests/gateway/test_relay_interop.py).
"""

from __future__ import annotations

from annextui.proxycore.ssh import SshPool, _Hop
from annextui.proxycore.sshconfig import ResolvedHost


class FakeTransport:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def is_active(self) -> bool:
        return not self.closed


def _pool(*hosts: tuple[ResolvedHost, float, int]) -> tuple[SshPool, dict[str, FakeTransport]]:
    """A pool holding a transport per (host, last used, open channels)."""
    pool = SshPool()
    transports = {}
    for host, last_used, channels in hosts:
        t = FakeTransport()
        hop = _Hop(t, "", "")  # type: ignore[arg-type]
        hop.last_used = last_used
        hop.channels = channels
        pool._hops[host] = hop
        transports[host.alias] = t
    return pool, transports


def _host(alias: str, via: ResolvedHost | None = None) -> ResolvedHost:
    return ResolvedHost(alias, "127.0.0.1", 22, "u", via=via)


def test_idle_transports_closed_busy_and_recent_kept() -> None:
    pool, t = _pool(
        (_host("old"), 0.0, 0),  # idle for 100 s
        (_host("busy"), 0.0, 1),  # a session still uses it
        (_host("recent"), 90.0, 0),  # idle for 10 s
    )
    assert pool.prune(idle=60, keep=8, now=100.0) == 1
    assert t["old"].closed
    assert not t["busy"].closed
    assert not t["recent"].closed
    assert pool.size() == 2


def test_bound_keeps_the_most_recently_used() -> None:
    pool, t = _pool(*[(_host(f"h{i}"), float(i), 0) for i in range(5)])
    assert pool.prune(idle=1000, keep=2, now=10.0) == 3
    assert [a for a, tr in t.items() if not tr.closed] == ["h3", "h4"]


def test_jump_host_of_a_kept_transport_stays() -> None:
    jump = _host("jump")
    pool, t = _pool((jump, 0.0, 0), (_host("inner", via=jump), 99.0, 1))
    assert pool.prune(idle=60, keep=8, now=100.0) == 0
    assert not t["jump"].closed


def test_released_channel_makes_the_transport_idle() -> None:
    host = _host("h")
    pool, t = _pool((host, 0.0, 0))
    release = pool._using(host)
    assert pool._hops[host].channels == 1
    assert pool.prune(idle=0, keep=0) == 0  # in use
    release()
    release()
    assert pool._hops[host].channels == 0
    assert pool.prune(idle=0, keep=0) == 1
    assert t["h"].closed
