"""The console's reachability of a local node whose repository vanished (renamed away, or its
disk unmounted leaving an empty directory): unreachable until the repository is back. A guard
for issue 11 item 5 (the console already said so; the gateway now agrees)."""

from __future__ import annotations

from pathlib import Path

import pytest

from annextui.console.reachability import check_reachability
from annextui.console.snapshot import load_snapshot
from tests.support.annex import AnnexEnv

GW = "6a7e0000-0000-4000-8000-0000000000e1"
NODE = "40de0000-0000-4000-8000-0000000000e2"


@pytest.mark.parametrize("replace", [False, True], ids=["renamed", "unmounted"])
def test_vanished_node_is_unreachable_until_back(annex_env: AnnexEnv, replace: bool) -> None:
    gw = annex_env.make_annex_repo("gw.git", GW, "gateway", bare=True)
    node = annex_env.make_annex_repo("node.git", NODE, "node", bare=True)
    annex_env.git(gw, "remote", "add", "node", str(node))
    annex_env.git(gw, "config", "remote.node.annex-uuid", NODE)

    def state() -> str:
        return check_reachability(load_snapshot(Path(gw)), NODE).state

    assert state() == "reachable"
    away = node.with_name("node.away.git")
    node.rename(away)
    if replace:
        node.mkdir()
    assert state() == "unreachable"
    assert not any(node.iterdir()) if replace else not node.exists()
    if replace:
        node.rmdir()
    away.rename(node)
    assert state() == "reachable"
