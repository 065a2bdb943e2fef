"""`git annex testremote` (the full run, not --fast) from a real client through annextui-shell:
against the gateway's own repository, a proxied remote behind it and the cluster.

testremote stores, checks, retrieves (resuming from offsets) and removes keys of several sizes
on the remote and checks every answer, so it covers the whole P2P surface a client uses. Its
tasty tree is read by tests/support/tasty.py. Topology: tests/gateway/topology.py (the client's
`origin` is the gateway, with `annex-shell = annextui-shell`).
"""

from __future__ import annotations

import pytest

from tests.gateway import topology as T
from tests.support import tasty

pytestmark = [pytest.mark.ssh, pytest.mark.slow]

# what upstream's git-annex-shell passes for each of these remotes (measured by hand before)
EXPECTED_TESTS = 573


@pytest.mark.parametrize(
    "remote", ["origin", "origin-px", f"origin-{T.CLUSTER_NAME}"], ids=["gateway", "px", "cluster"]
)
def test_testremote_full(topo: T.Topology, remote: str) -> None:
    results, stderr = tasty.run_tasty(
        ["git", "annex", "testremote", remote],
        topo.client,
        topo.env.env,
        timeout=1800,
    )
    assert not results.failed, results.report() + "\n" + stderr[-4000:]
    assert len(results.outcomes) == EXPECTED_TESTS
    # testremote removes what it stored: no object or partial upload is left on any node
    for name, path in [*topo.nodes.items(), ("px", topo.px), ("gw", topo.gw)]:
        left = [p for d in ("objects", "tmp") for p in (path / "annex" / d).rglob("*")]
        assert not [p for p in left if p.is_file()], (name, left)
