"""The gateway's peers against in-memory nodes: RemotePeer, ProxiedPeer and ClusterPeer, each
served by the real Server loop to a protocol client, as annextui-shell serves git-annex.

The gateway repository is a real git-annex repository (its location logs are checked); nodes
are `MemoryServer`s, which answer like git-annex-shell (the protocol interop tests pin that).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from annextui.backend.keys import Key, key_for_content
from annextui.backend.repo import Repository
from annextui.proxycore import protocol as p
from annextui.proxycore.cluster import ClusterPeer
from annextui.proxycore.local import monotonic_seconds
from annextui.proxycore.peer import Outcome
from annextui.proxycore.proxied import ProxiedPeer
from annextui.proxycore.records import GatewayRecords
from annextui.proxycore.remote import NodeError, RemotePeer
from tests.gateway.support import FakeNode, Served
from tests.support import annex as annex_support
from tests.support.waiting import wait_until

GW = "6a7e0000-0000-4000-8000-0000000000aa"
CU = "ac000000-0000-8000-8000-0000000000cc"  # a cluster UUID (ac…, 8 at offset 14)
CLIENT = "c11e0000-0000-4000-8000-0000000000cc"
N = [f"40de0000-0000-4000-8000-00000000000{i}" for i in range(1, 5)]


@pytest.fixture(scope="module")
def gw_repo(tmp_path_factory: pytest.TempPathFactory, git_annex_bin: Path) -> Repository:
    root = tmp_path_factory.mktemp("gwunit")
    env = annex_support.base_env(root / "home", bin_dirs=[git_annex_bin.parent])
    annex_support.write_gitconfig(root / "home")
    path = annex_support.make_annex_repo(root / "gw.git", GW, "gateway", bare=True, env=env)
    return Repository(path)


def _content(n: int = 200_000) -> tuple[Key, bytes]:
    data = random.randbytes(n)
    return key_for_content(data, "SHA256E", ".bin"), data


def _records(repo: Repository, nodes: list[FakeNode] | None = None) -> GatewayRecords:
    clusters = {CU: frozenset(n.uuid for n in nodes or [])}
    return GatewayRecords(repo, clusters=clusters)


def _cluster(repo: Repository, nodes: list[FakeNode], **kw: object) -> ClusterPeer:
    return ClusterPeer(
        uuid=CU,
        gateway_uuid=GW,
        nodes=lambda bypass: [n.spec() for n in nodes],
        records=_records(repo, nodes),
        **kw,  # type: ignore[arg-type]
    )


def _logged(repo: Repository, key: Key) -> set[str]:
    return GatewayRecords(repo).locations(key)


@pytest.fixture
def nodes() -> list[FakeNode]:
    return [FakeNode(N[i], f"node{i + 1}", cost=100.0 + i) for i in range(3)]


# -- RemotePeer ------------------------------------------------------------------------------------


def test_remote_peer_negotiates_and_sends_bypass() -> None:
    node = FakeNode(N[0], "node1", max_version=2)
    peer = RemotePeer(node.opener, uuid=N[0], name="node1", bypass=frozenset({"b", "a"}))
    assert peer.connect(4) == 2
    assert node.sent[:2] == [b"VERSION 4", b"BYPASS a b"]
    old = FakeNode(N[1], "old", max_version=1)
    peer1 = RemotePeer(old.opener, uuid=N[1], name="old", bypass=frozenset({"a"}))
    assert peer1.connect(4) == 1
    assert not any(line.startswith(b"BYPASS") for line in old.sent)  # v1 cannot carry it


def test_remote_peer_refuses_the_wrong_repository() -> None:
    node = FakeNode(N[0], "node1")
    peer = RemotePeer(node.opener, uuid=N[1], name="node1")
    with pytest.raises(NodeError, match="expected repository UUID"):
        peer.connect()


def test_remote_peer_transfers_and_resumes() -> None:
    node = FakeNode(N[0], "node1")
    key, data = _content()
    node.partial[str(key)] = bytearray(data[:1000])
    peer = node.peer()
    inc = peer.put(key, "a.bin")
    assert not isinstance(inc, p.AlreadyHave)
    assert inc.offset == 1000  # type: ignore[union-attr]
    inc.begin(len(data) - 1000)  # type: ignore[union-attr]
    inc.write(data[1000:])  # type: ignore[union-attr]
    assert inc.finish(True).ok  # type: ignore[union-attr]
    assert node.objects[str(key)] == data
    out = peer.get(key, 7, None)
    assert out is not None
    buf = bytearray(len(data))
    got = 0
    while got < out.length:
        got += out.readinto(memoryview(buf)[got:])
    assert bytes(buf[:got]) == data[7:]
    assert out.valid()
    out.close(Outcome(True))
    assert peer.check_present(key)
    assert peer.remove(key, before=10**9).ok
    assert b"REMOVE-BEFORE 1000000000 " + str(key).encode() in node.sent


# -- ProxiedPeer -----------------------------------------------------------------------------------


def test_proxied_version_is_what_the_remote_negotiated(gw_repo: Repository) -> None:
    node = FakeNode(N[0], "node1", max_version=2)
    s = Served(ProxiedPeer(node.peer(), uuid=N[0], name="node1", records=_records(gw_repo)))
    assert s.version(4) == 2
    assert node.sent[0] == b"VERSION 4"
    assert not any(line.startswith(b"BYPASS") for line in node.sent)  # single remote: none
    assert s.close().error is None


def test_proxied_v0_client_offers_0(gw_repo: Repository) -> None:
    node = FakeNode(N[0], "node1")
    key, _ = _content(10)
    s = Served(ProxiedPeer(node.peer(), uuid=N[0], name="node1", records=_records(gw_repo)))
    assert isinstance(s.request(p.CheckPresent(str(key))), p.Failure)
    assert node.sent[0] == b"VERSION 0"
    s.close()


def test_proxied_put_and_remove_are_recorded(gw_repo: Repository) -> None:
    node = FakeNode(N[0], "node1")
    key, data = _content()
    s = Served(ProxiedPeer(node.peer(), uuid=N[0], name="node1", records=_records(gw_repo)))
    s.version()
    first, final = s.put(str(key), data, "x.bin")
    assert first == p.PutFrom(0)
    assert isinstance(final, p.Success)
    assert _logged(gw_repo, key) == {N[0]}
    assert s.get(str(key)) == (data, True)
    assert isinstance(s.request(p.Remove(str(key))), p.Success)
    assert _logged(gw_repo, key) == set()
    assert s.close().error is None


def test_proxied_unreachable_remote_fails_each_request(gw_repo: Repository) -> None:
    node = FakeNode(N[0], "node1", down=True)
    key, _ = _content(10)
    s = Served(ProxiedPeer(node.peer(), uuid=N[0], name="node1", records=_records(gw_repo)))
    assert s.version(4) == 4
    r = s.request(p.CheckPresent(str(key)))
    assert isinstance(r, p.Error)
    assert "connection refused" in r.text
    assert isinstance(s.request(p.Put(None, str(key))), p.Error)  # session goes on
    assert s.close().error is None


def _relay(node: FakeNode, gw_repo: Repository, via: str | None = None) -> Served:
    peer = ProxiedPeer(
        node.peer(), uuid=N[0], name="node1", records=_records(gw_repo), via=via, gateway=GW
    )
    return Served(peer)


def test_proxied_passes_on_the_gateways_passed(gw_repo: Repository) -> None:
    """A client's BYPASS goes on to the remote with this gateway added, before the request."""
    node = FakeNode(N[0], "node1")
    key, _ = _content(10)
    s = _relay(node, gw_repo)
    assert s.version(4) == 4
    s.client.send(p.Bypass((N[3],)))
    assert isinstance(s.request(p.CheckPresent(str(key))), p.Failure)
    sent = [line for line in node.sent if line]
    assert sent[:3] == [
        b"VERSION 4",
        f"BYPASS {N[3]} {GW}".encode(),
        f"CHECKPRESENT {key}".encode(),
    ]
    assert s.close().error is None


def test_proxied_refuses_a_request_that_passed_this_gateway(gw_repo: Repository) -> None:
    node = FakeNode(N[0], "node1")
    key, _ = _content(10)
    s = _relay(node, gw_repo)
    assert s.version(4) == 4
    s.client.send(p.Bypass((GW,)))
    r = s.request(p.CheckPresent(str(key)))
    assert isinstance(r, p.Error)
    assert "already passed this gateway" in r.text
    assert not any(line.startswith(b"CHECKPRESENT") for line in node.sent)  # not relayed
    assert s.close().error is None


def test_proxied_behind_a_passed_gateway_is_never_connected(gw_repo: Repository) -> None:
    """A remote behind another gateway: VERSION answered at once, connected only after the
    client's BYPASS, and not at all when that gateway was passed already."""
    node = FakeNode(N[0], "node1", max_version=2)
    key, _ = _content(10)
    s = _relay(node, gw_repo, via=N[3])
    assert s.version(4) == 4  # not the remote's 2: it is not contacted for VERSION
    assert node.streams == []
    s.client.send(p.Bypass((N[3],)))
    r = s.request(p.CheckPresent(str(key)))
    assert isinstance(r, p.Error)
    assert "already passed" in r.text
    assert node.streams == []  # no shell started for a request going round in a circle
    assert s.close().error is None


def test_proxied_behind_another_gateway_gets_this_gateway_bypassed(gw_repo: Repository) -> None:
    node = FakeNode(N[0], "node1", max_version=2)
    key, _ = _content(10)
    s = _relay(node, gw_repo, via=N[3])
    assert s.version(4) == 4
    assert isinstance(s.request(p.CheckPresent(str(key))), p.Failure)
    sent = [line for line in node.sent if line]
    assert sent[:2] == [b"VERSION 4", f"BYPASS {GW}".encode()]
    assert s.close().error is None


# -- ClusterPeer: PUT ------------------------------------------------------------------------------


def test_cluster_put_fans_out_from_each_offset(gw_repo: Repository, nodes: list[FakeNode]) -> None:
    key, data = _content(300_000)
    nodes[0].partial[str(key)] = bytearray(data[:120_000])
    nodes[1].partial[str(key)] = bytearray(data[:50_000])
    s = Served(_cluster(gw_repo, nodes))
    assert s.version() == 4
    s.client.send(p.Bypass(("zz-other-gateway",)))
    first, final = s.put(str(key), data, "f.bin")
    assert first == p.PutFrom(0)  # node3 has nothing
    assert isinstance(final, p.SuccessPlus)
    assert set(final.uuids) == {n.uuid for n in nodes}
    assert all(n.objects[str(key)] == data for n in nodes)
    # each node was told only what it lacked, and every node got our BYPASS
    assert b"DATA 180000" in nodes[0].sent
    assert b"DATA 250000" in nodes[1].sent
    assert b"DATA 300000" in nodes[2].sent
    assert all(f"BYPASS {GW} zz-other-gateway".encode() in n.sent for n in nodes)
    assert _logged(gw_repo, key) == {n.uuid for n in nodes}
    assert s.close().error is None


def test_cluster_put_skips_logged_nodes_and_reports_holders(
    gw_repo: Repository, nodes: list[FakeNode]
) -> None:
    key, data = _content()
    s = Served(_cluster(gw_repo, nodes))
    s.version()
    s.put(str(key), data)
    # everything placed: a second PUT goes to all nodes (no candidates), all have it
    r = s.request(p.Put(None, str(key)))
    assert isinstance(r, p.AlreadyHavePlus)
    assert set(r.uuids) == {n.uuid for n in nodes}
    s.close()


def test_cluster_put_v1_client_gets_plain_replies(
    gw_repo: Repository, nodes: list[FakeNode]
) -> None:
    key, data = _content()
    s = Served(_cluster(gw_repo, nodes))
    assert s.version(1) == 1
    _, final = s.put(str(key), data)
    assert isinstance(final, p.Success)
    assert all(b"VERSION 1" in n.sent for n in nodes)
    s.close()


def test_cluster_put_survives_a_down_node(gw_repo: Repository, nodes: list[FakeNode]) -> None:
    key, data = _content()
    nodes[1].down = True
    s = Served(_cluster(gw_repo, nodes))
    s.version()
    _, final = s.put(str(key), data)
    assert isinstance(final, p.SuccessPlus)
    assert set(final.uuids) == {nodes[0].uuid, nodes[2].uuid}
    assert _logged(gw_repo, key) == {nodes[0].uuid, nodes[2].uuid}
    s.close()


@pytest.mark.parametrize("how", ["write", "read"])
def test_cluster_put_survives_a_node_dying_mid_body(
    gw_repo: Repository, nodes: list[FakeNode], how: str
) -> None:
    key, data = _content(2_000_000)
    if how == "write":
        nodes[2].fail_after = 500_000  # its connection breaks while the body streams
    else:
        nodes[2].eof_after = 60  # it hangs up: greeting and VERSION only
    s = Served(_cluster(gw_repo, nodes))
    s.version()
    _, final = s.put(str(key), data)
    assert isinstance(final, p.SuccessPlus)
    assert set(final.uuids) == {nodes[0].uuid, nodes[1].uuid}
    assert str(key) not in nodes[2].objects
    assert _logged(gw_repo, key) == {nodes[0].uuid, nodes[1].uuid}
    # the session goes on: the node is reconnected for the next request
    key2, data2 = _content(1000)
    nodes[2].fail_after = None
    nodes[2].eof_after = None
    _, final2 = s.put(str(key2), data2)
    assert isinstance(final2, p.SuccessPlus)
    assert s.close().error is None


def test_cluster_put_nowhere_is_an_error_not_a_hangup(
    gw_repo: Repository, nodes: list[FakeNode]
) -> None:
    key, _ = _content(10)
    for n in nodes:
        n.down = True
    s = Served(_cluster(gw_repo, nodes))
    s.version()
    r = s.request(p.Put(None, str(key)))
    assert isinstance(r, p.Error)
    assert "no node of the cluster accepted the content" in r.text
    assert _logged(gw_repo, key) == set()
    s.close()


class _Wants:
    def __init__(self, wanted: dict[str, bool]) -> None:
        self.wanted = wanted
        self.asked: list[tuple[str, frozenset[str]]] = []

    def wants(self, uuid: str, key: Key, af: str | None, present: frozenset[str]) -> bool:
        self.asked.append((uuid, present))
        return self.wanted.get(uuid, False)

    def configured(self, uuid: str) -> bool:
        return uuid in self.wanted


def test_cluster_put_follows_preferred_content(gw_repo: Repository, nodes: list[FakeNode]) -> None:
    key, data = _content()
    prefs = _Wants({nodes[1].uuid: True, nodes[2].uuid: True})
    s = Served(_cluster(gw_repo, nodes, preferences=prefs))
    s.version()
    _, final = s.put(str(key), data)
    assert isinstance(final, p.SuccessPlus)
    assert set(final.uuids) == {nodes[1].uuid, nodes[2].uuid}
    assert nodes[0].streams == []  # never connected
    # later nodes are judged assuming the earlier picks have it
    assert prefs.asked[-1] == (nodes[2].uuid, frozenset({nodes[1].uuid}))
    s.close()


def test_cluster_put_falls_back_when_the_wanted_node_is_down(
    gw_repo: Repository, nodes: list[FakeNode]
) -> None:
    key, data = _content()
    nodes[1].down = True
    s = Served(_cluster(gw_repo, nodes, preferences=_Wants({nodes[1].uuid: True})))
    s.version()
    _, final = s.put(str(key), data)
    assert isinstance(final, p.SuccessPlus)
    assert set(final.uuids) == {nodes[0].uuid, nodes[2].uuid}
    s.close()


# -- ClusterPeer: GET / CHECKPRESENT / LOCKCONTENT -------------------------------------------------


def test_cluster_get_and_checkpresent_only_ask_logged_nodes(
    gw_repo: Repository, nodes: list[FakeNode]
) -> None:
    key, _ = _content()
    s = Served(_cluster(gw_repo, nodes))
    s.version()
    assert isinstance(s.request(p.CheckPresent(str(key))), p.Failure)
    assert s.get(str(key)) == (b"", False)
    assert all(n.streams == [] for n in nodes)  # nobody contacted
    assert isinstance(s.request(p.LockContent(str(key))), p.Failure)
    assert all(n.streams == [] for n in nodes)
    s.close()


def test_cluster_get_fails_over_before_and_during_the_body(
    gw_repo: Repository, nodes: list[FakeNode]
) -> None:
    key, data = _content(1_500_000)
    for n in nodes:
        n.objects[str(key)] = data
    GatewayRecords(gw_repo).record(key, [n.uuid for n in nodes], present=True)
    # the cheapest node is down; the next one dies in the middle of the body
    nodes[0].down = True
    nodes[1].eof_after = 700_000
    s = Served(_cluster(gw_repo, nodes, rng=random.Random(1)))
    s.version()
    assert s.get(str(key), 5, "f.bin") == (data[5:], True)
    resumed = [line for line in nodes[2].sent if line.startswith(b"GET ")]
    assert len(resumed) == 1
    assert int(resumed[0].split()[1]) > 5  # asked for the rest only
    assert isinstance(s.request(p.CheckPresent(str(key))), p.Success)
    s.close()


def test_cluster_get_prefers_the_least_busy_node(
    gw_repo: Repository, nodes: list[FakeNode]
) -> None:
    from annextui.proxycore.transfers import Direction, Transfer, TransferRecorder

    key, data = _content(1000)
    for n in nodes:
        n.objects[str(key)] = data
    GatewayRecords(gw_repo).record(key, [n.uuid for n in nodes], present=True)
    busy = []
    for n in nodes[:2]:  # transfers in flight with the two cheapest nodes
        other, _ = _content(10)
        rec = TransferRecorder.start(
            gw_repo.annexdir, Transfer(Direction.DOWNLOAD, n.uuid, str(other))
        )
        assert rec is not None
        busy.append(rec)
    try:
        s = Served(_cluster(gw_repo, nodes))
        s.version()
        assert s.get(str(key)) == (data, True)
        assert [bool(n.streams) for n in nodes] == [False, False, True]
        s.close()
    finally:
        for rec in busy:
            rec.finish(True)


# -- ClusterPeer: REMOVE / GETTIMESTAMP ------------------------------------------------------------


def test_cluster_remove_everywhere(gw_repo: Repository, nodes: list[FakeNode]) -> None:
    key, data = _content(100)
    s = Served(_cluster(gw_repo, nodes))
    s.version()
    s.put(str(key), data)
    r = s.request(p.Remove(str(key)))
    assert isinstance(r, p.SuccessPlus)
    assert set(r.uuids) == {n.uuid for n in nodes}
    assert all(str(key) not in n.objects for n in nodes)
    assert _logged(gw_repo, key) == set()
    s.close()


def test_cluster_remove_partial_failure_lists_what_was_removed(
    gw_repo: Repository, nodes: list[FakeNode]
) -> None:
    key, data = _content(100)
    s = Served(_cluster(gw_repo, nodes))
    s.version()
    s.put(str(key), data)
    nodes[1].eof_after = 0  # reconnects will fail: the node "dies"
    for st in nodes[1].streams:
        st.closed = True
    r = s.request(p.Remove(str(key)))
    assert isinstance(r, p.FailurePlus)
    assert set(r.uuids) == {nodes[0].uuid, nodes[2].uuid}
    assert _logged(gw_repo, key) == {nodes[1].uuid}
    s.close()


def test_cluster_remove_before_translates_each_nodes_clock(
    gw_repo: Repository, nodes: list[FakeNode]
) -> None:
    key, data = _content(100)
    nodes[0].clock = 1000
    nodes[1].clock = 10**12  # far ahead of the gateway's clock
    nodes[2].clock = 7
    s = Served(_cluster(gw_repo, nodes))
    s.version()
    s.put(str(key), data)
    ts = s.request(p.GetTimestamp())
    assert isinstance(ts, p.Timestamp)
    assert abs(ts.timestamp - monotonic_seconds()) <= 2  # the gateway's own clock
    r = s.request(p.RemoveBefore(ts.timestamp + 100, str(key)))
    assert isinstance(r, p.SuccessPlus), r
    assert len(r.uuids) == 3
    assert b"REMOVE-BEFORE %d " % (10**12 + 100) + str(key).encode() in nodes[1].sent
    s.close()


def test_cluster_of_one_relays_the_node_timestamp(gw_repo: Repository) -> None:
    node = FakeNode(N[0], "solo", clock=4242)
    s = Served(_cluster(gw_repo, [node]))
    s.version()
    assert s.request(p.GetTimestamp()) == p.Timestamp(4242)
    s.close()


def test_cluster_remove_v2_plain_answers(gw_repo: Repository, nodes: list[FakeNode]) -> None:
    key, _ = _content(100)
    s = Served(_cluster(gw_repo, nodes))
    assert s.version(1) == 1
    assert isinstance(s.request(p.Remove(str(key))), p.Success)
    s.close()


# -- LocalPeer nodes (real repositories, in process) -----------------------------------------------


def test_cluster_with_local_repository_nodes(
    annex_env: annex_support.AnnexEnv, gw_repo: Repository
) -> None:
    from annextui.proxycore.cluster import NodeSpec
    from annextui.proxycore.local import LocalPeer
    from annextui.proxycore.localrepo import LocalRepo

    paths = [annex_env.make_annex_repo(f"n{i}.git", N[i], f"n{i}", bare=True) for i in range(2)]

    def spec(i: int) -> NodeSpec:
        return NodeSpec(
            N[i],
            f"n{i}",
            100.0,
            lambda o, b: LocalPeer(LocalRepo.open(str(paths[i])), client_uuid=GW),
        )

    peer = ClusterPeer(
        uuid=CU,
        gateway_uuid=GW,
        nodes=lambda bypass: [spec(0), spec(1)],
        records=GatewayRecords(gw_repo, clusters={CU: frozenset(N[:2])}),
    )
    key, data = _content(3_000_000)
    s = Served(peer)
    s.version()
    _, final = s.put(str(key), data, "big.bin")
    assert isinstance(final, p.SuccessPlus)
    assert set(final.uuids) == set(N[:2])
    assert s.get(str(key)) == (data, True)
    assert s.close().error is None
    for i, path in enumerate(paths):
        res = annex_env.annex(path, "fsck", "--key", str(key))
        assert "ok" in res.stdout
        assert annex_env.annex(path, "whereis", "--key", str(key)).stdout.count(N[i]) == 1


def test_cluster_get_from_a_local_node_reads_the_log_only_to_fail_over(
    annex_env: annex_support.AnnexEnv, gw_repo: Repository, nodes: list[FakeNode]
) -> None:
    """An idle in-process node of the lowest cost whose file is there serves a GET without a
    location lookup; the failover list is read from the log only when it breaks mid-body."""
    import os

    from annextui.proxycore.cluster import NodeSpec
    from annextui.proxycore.local import LocalPeer
    from annextui.proxycore.localrepo import LocalRepo
    from annextui.proxycore.peer import Outgoing

    path = annex_env.make_annex_repo("fastn0.git", N[0], "n0", bare=True)
    shrink: set[str] = set()  # keys whose object shrinks to half once a GET has opened it

    class ShrinkingPeer(LocalPeer):
        def get(self, key: Key, offset: int, associated_file: str | None) -> Outgoing | None:
            out = super().get(key, offset, associated_file)
            kp = self.store.present(key)
            if out is not None and kp is not None and str(key) in shrink:
                os.chmod(kp.object, 0o644)
                os.truncate(kp.object, os.stat(kp.object).st_size // 2)
            return out

    local = NodeSpec(
        N[0],
        "n0",
        100.0,
        lambda o, b: ShrinkingPeer(LocalRepo.open(str(path)), client_uuid=GW),
        in_process=True,
    )
    far = nodes[1]  # cost 101: behind the local node in any ranking
    records = GatewayRecords(gw_repo, clusters={CU: frozenset({N[0], far.uuid})})
    lookups: list[str] = []
    real = records.locations

    def counted(key: Key | str) -> set[str]:
        lookups.append(str(key))
        return real(key)

    records.locations = counted  # type: ignore[method-assign]

    def cluster() -> ClusterPeer:
        return ClusterPeer(
            uuid=CU, gateway_uuid=GW, nodes=lambda bypass: [local, far.spec()], records=records
        )

    (k1, d1), (k2, d2) = _content(3_000_000), _content(3_000_000)
    s = Served(cluster())
    s.version()
    for key, data in ((k1, d1), (k2, d2)):
        _, final = s.put(str(key), data, None)
        assert set(final.uuids) == {N[0], far.uuid}  # type: ignore[attr-defined]
    assert s.close().error is None
    lookups.clear()
    far.streams.clear()
    s = Served(cluster())
    s.version()
    assert isinstance(s.request(p.CheckPresent(str(k1))), p.Success)  # opens the local node
    assert lookups == [str(k1)]
    lookups.clear()
    assert s.get(str(k1)) == (d1, True)
    assert lookups == []  # served by n0, no lookup
    assert far.streams == []  # never contacted
    shrink.add(str(k2))
    assert s.get(str(k2)) == (d2, True)
    assert lookups == [str(k2)]  # read once, when n0's file broke off mid-body
    resumed = [line for line in far.sent if line.startswith(b"GET ")]
    assert len(resumed) == 1
    assert int(resumed[0].split()[1]) > 0
    s.close()


def test_gateway_keeps_its_own_copy_when_it_wants_the_key(
    annex_env: annex_support.AnnexEnv, nodes: list[FakeNode]
) -> None:
    from annextui.proxycore.local import LocalPeer
    from annextui.proxycore.localrepo import LocalRepo

    gw = annex_env.make_annex_repo("owngw.git", GW, "gateway", bare=True)
    repo = Repository(gw)
    prefs = _Wants({GW: True, nodes[0].uuid: True})

    def own() -> LocalPeer:
        return LocalPeer(LocalRepo.open(str(gw)), client_uuid=CLIENT)

    key, data = _content(400_000)
    s = Served(_cluster(repo, nodes, preferences=prefs, own=own))
    s.version()
    _, final = s.put(str(key), data, "keep.bin")
    assert isinstance(final, p.SuccessPlus)
    assert set(final.uuids) == {GW, nodes[0].uuid}
    assert s.close().error is None
    assert "ok" in annex_env.annex(gw, "fsck", "--key", str(key)).stdout
    # GET is served from the gateway's copy first: no node is contacted
    nodes[0].streams.clear()
    s = Served(_cluster(repo, nodes, preferences=prefs, own=own))
    s.version()
    assert s.get(str(key)) == (data, True)
    assert nodes[0].streams == []
    s.close()
    # the cluster is its nodes: once they dropped it, CHECKPRESENT says so, although the
    # gateway's own copy (counted under the gateway's UUID) is still there
    s = Served(_cluster(repo, nodes, preferences=prefs, own=own))
    s.version()
    assert isinstance(s.request(p.Remove(str(key))), p.SuccessPlus)
    assert isinstance(s.request(p.CheckPresent(str(key))), p.Failure)
    s.close()
    assert "ok" in annex_env.annex(gw, "fsck", "--key", str(key)).stdout


# -- server modes and live transfer records --------------------------------------------------------


def test_gateway_enforces_its_own_server_mode(gw_repo: Repository, nodes: list[FakeNode]) -> None:
    from annextui.proxycore.server import APPENDONLY_ERROR, READONLY_ERROR, ServerMode

    key, data = _content(100)
    s = Served(_cluster(gw_repo, nodes), mode=ServerMode.READONLY)
    s.version()
    assert s.request(p.Put(None, str(key))) == p.Error(READONLY_ERROR)
    assert all(n.streams == [] for n in nodes)  # refused before anything was relayed
    s.close()
    nodes[0].objects[str(key)] = data
    s = Served(_cluster(gw_repo, nodes), mode=ServerMode.APPENDONLY)
    s.version()
    assert s.request(p.Remove(str(key))) == p.Error(APPENDONLY_ERROR)
    assert str(key) in nodes[0].objects
    s.close()


def test_relayed_transfers_are_visible_while_they_run(
    gw_repo: Repository, nodes: list[FakeNode]
) -> None:
    from annextui.proxycore.transfers import Direction, list_transfers

    key, data = _content(8 << 20)
    s = Served(_cluster(gw_repo, nodes[:1]))
    s.version()
    first = s.request(p.Put("live.bin", str(key)))
    assert first == p.PutFrom(0)
    s.client.send(p.DataHeader(len(data)))
    s.client.send_data(data[: 4 << 20])

    def uploading() -> bool:
        return any(
            t.transfer.direction is Direction.UPLOAD
            and t.transfer.uuid == nodes[0].uuid
            and t.transfer.key == str(key)
            and (t.bytes_done or 0) >= (1 << 20)
            for t in list_transfers(gw_repo.annexdir)
        )

    wait_until(uploading, "an upload record with bytes so far", 30)
    s.client.send_data(data[4 << 20 :])
    s.client.send(p.Valid())
    assert isinstance(s.client.next_message(), p.SuccessPlus)
    assert not any(t.transfer.key == str(key) for t in list_transfers(gw_repo.annexdir))
    s.close()


def test_cluster_put_of_a_key_it_has_adds_no_unwanted_copies(
    gw_repo: Repository, nodes: list[FakeNode]
) -> None:
    """A client that lost a race: the key arrived meanwhile on the one node that wants it."""
    key, data = _content()
    nodes[1].objects[str(key)] = data
    GatewayRecords(gw_repo).record(key, [nodes[1].uuid], present=True)
    s = Served(_cluster(gw_repo, nodes, preferences=_Wants({})))  # nobody wants another copy
    s.version()
    assert s.request(p.Put(None, str(key))) == p.AlreadyHavePlus((nodes[1].uuid,))
    assert [str(key) in n.objects for n in nodes] == [False, True, False]
    s.close()


# -- GatewayRecords: location lookups --------------------------------------------------------------


def test_locations_stay_current_through_the_batch_reader(
    tmp_path: Path, git_annex_bin: Path
) -> None:
    """A session's lookups move to one `git cat-file --batch` after BATCH_AFTER of them; what
    they return must stay what git-annex wrote: branch commits made by git-annex meanwhile,
    the session's own journal, and keys with no log at all."""
    from annextui.proxycore.records import BATCH_AFTER

    env = annex_support.base_env(tmp_path / "home", bin_dirs=[git_annex_bin.parent])
    annex_support.write_gitconfig(tmp_path / "home")
    path = annex_support.make_annex_repo(tmp_path / "gw.git", GW, "gateway", bare=True, env=env)
    keys = [f"SHA256E-s{i + 1}--{i:064x}.bin" for i in range(BATCH_AFTER + 3)]

    def setpresent(key: str, uuid: str, present: bool = True) -> None:
        annex_support.git_annex(path, "setpresentkey", key, uuid, "1" if present else "0", env=env)
        annex_support.git_annex(path, "merge", "-q", env=env)  # commits the journal
        assert not any((path / "annex" / "journal").iterdir())  # so it is on the branch

    for k in keys:
        setpresent(k, N[0])
    rec = GatewayRecords(Repository(path))
    try:
        for k in keys:
            assert rec.locations(k) == {N[0]}
        assert rec.blob_reads_batched  # the batch reader is what answers from here on
        setpresent(keys[0], N[1])  # git-annex moves the branch under the open session
        setpresent(keys[1], N[0], present=False)
        fresh = "SHA256E-s9--" + "f" * 64 + ".bin"
        assert rec.locations(keys[0]) == {N[0], N[1]}
        assert rec.locations(keys[1]) == set()
        assert rec.locations(fresh) == set()
        setpresent(fresh, N[2])
        assert rec.locations(fresh) == {N[2]}
        rec.record(keys[2], [N[3]], present=True)  # the session's own journal
        assert rec.locations(keys[2]) == {N[0], N[3]}
        assert rec.blob_reads_batched  # no fallback to dulwich was needed
    finally:
        rec.close()
    assert not rec.blob_reads_batched
    whereis = annex_support.git_annex_json(path, "whereis", "--key", keys[2], env=env)
    assert {w["uuid"] for w in whereis[0]["whereis"]} >= {N[0], N[3]}
