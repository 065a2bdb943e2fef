"""Target selection for `--uuid`: what git config permits, what the branch names, and refusals."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from annextui.backend.branch import BranchView
from annextui.backend.demo import DemoRepo, build_demo
from annextui.backend.repo import Repository
from annextui.backend.state import load_state
from annextui.proxycore.targets import (
    ClusterTarget,
    LocalTarget,
    RemoteTarget,
    TargetRefused,
    cluster_node_remotes,
    select_target,
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRepo:
    return build_demo(tmp_path_factory.mktemp("t") / "d", keys=5)


def _select(path: Path, uuid: str) -> object:
    repo = Repository(path)
    return select_target(repo, load_state(BranchView(repo)), uuid)


def test_own_uuid_is_served_locally(demo: DemoRepo) -> None:
    assert _select(demo.gateway, demo.uuids["gateway"]) == LocalTarget(demo.uuids["gateway"])


def test_cluster_and_proxied_node(demo: DemoRepo) -> None:
    assert _select(demo.gateway, demo.cluster_uuid) == ClusterTarget(demo.cluster_uuid)
    t = _select(demo.gateway, demo.uuids["node2"])
    assert isinstance(t, RemoteTarget)
    assert t.remote.name == "node2"
    a = _select(demo.gateway, demo.uuids["archive"])
    assert isinstance(a, RemoteTarget)
    assert a.remote.name == "archive"


def test_branch_alone_never_enables_proxying(demo: DemoRepo, tmp_path: Path) -> None:
    copy = tmp_path / "gw"
    subprocess.run(["cp", "-a", str(demo.gateway), str(copy)], check=True)
    for name in ("node1", "node2", "node3", "archive"):
        subprocess.run(
            ["git", "-C", str(copy), "remote", "set-url", name, str(demo.root / name)], check=True
        )
    # proxy.log still lists archive, but local config no longer permits it.
    subprocess.run(
        ["git", "-C", str(copy), "config", "--unset", "remote.archive.annex-proxy"], check=True
    )
    with pytest.raises(TargetRefused, match="not configured to proxy for repository archive"):
        _select(copy, demo.uuids["archive"])


def test_unknown_uuid_is_refused_like_git_annex(demo: DemoRepo) -> None:
    stranger = "12345678-0000-4000-8000-000000000000"
    with pytest.raises(TargetRefused) as exc:
        _select(demo.gateway, stranger)
    assert str(exc.value) == (
        f"expected repository UUID {stranger} but found UUID {demo.uuids['gateway']}"
    )


def test_cluster_nodes_cheapest_first(demo: DemoRepo) -> None:
    repo = Repository(demo.gateway)
    nodes = cluster_node_remotes(repo, load_state(BranchView(repo)), demo.cluster_uuid)
    assert sorted(r.name for r in nodes) == ["node1", "node2", "node3"]
