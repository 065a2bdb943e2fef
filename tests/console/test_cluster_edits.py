"""Clusters view: rename and delete a cluster, and a cluster made with `i` existing at once.

Each flow stages with keys, reviews the diff, confirms, and is judged by the real git-annex on
the demo gateway (updatecluster/updateproxy find nothing left to change, info, fsck).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from annextui.app import AnnexConsole
from annextui.backend.demo import DemoRepo
from annextui.console.edits import AddNode, DeleteCluster, RenameCluster
from annextui.console.source import RepositoryBackend
from annextui.screens.clusters import ClustersScreen, Ref
from tests.console.support import plain, run_app, wait_for
from tests.console.test_edits import answer_prompt, pick, review, select
from tests.support.annex import AnnexEnv


def objects(repo: Path) -> set[str]:
    return {p.name for p in repo.rglob("annex/objects/**/*") if p.is_file()}


def git_annex_agrees(annex: AnnexEnv, gateway: Path) -> str:
    """git-annex's updatecluster and updateproxy find every record already as they would write
    it; returns their output."""
    out = annex.annex(gateway, "updatecluster").stdout
    assert "Added node" not in out
    assert "Removed node" not in out
    assert "Started proxying" not in out
    assert "Stopped proxying" not in out
    return out


def described(annex: AnnexEnv, gateway: Path) -> dict[str, str]:
    info = annex.annex_json(gateway, "info", "--fast")[0]
    return {r["uuid"]: r["description"] for r in info["semitrusted repositories"]}


def test_rename_cluster_confirmed(demo: DemoRepo, annex: AnnexEnv) -> None:
    cu = demo.cluster_uuid

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await select(app, pilot, Ref("cluster", cu))
        await pilot.press("n")
        await answer_prompt(app, pilot, "vault")
        assert app.staged == (RenameCluster("demo", "vault"),)
        body = await review(app, pilot, confirm=True)
        assert f"+ annex.cluster.vault = {cu}" in body
        assert "- annex.cluster.demo" in body
        assert "proxy.log" in body
        assert app.snapshot is not None
        assert app.snapshot.cluster_name(cu) == "vault"

    run_app(RepositoryBackend(demo.gateway), scenario, check_nodes=False)
    assert annex.git(demo.gateway, "config", "annex.cluster.vault") == cu
    assert annex.git(demo.gateway, "config", "remote.node1.annex-cluster-node") == "vault"
    out = git_annex_agrees(annex, demo.gateway)
    assert "No cluster node changes for cluster: vault" in out
    assert described(annex, demo.gateway)[cu] == "demo cluster"  # a chosen description stays


def test_delete_cluster_confirmed(demo: DemoRepo, annex: AnnexEnv) -> None:
    cu = demo.cluster_uuid
    before = objects(demo.root)

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await select(app, pilot, Ref("node", cu, demo.uuids["node1"]))
        await pilot.press("d")
        assert app.staged == (DeleteCluster("demo"),)
        body = await review(app, pilot, confirm=True)
        assert "- annex.cluster.demo" in body
        assert "cluster.log" in body
        assert "trust.log" in body
        assert app.snapshot is not None
        assert app.snapshot.cluster(cu) is None

    run_app(RepositoryBackend(demo.gateway), scenario, check_nodes=False)
    assert cu not in described(annex, demo.gateway)
    assert annex.git(demo.gateway, "config", "--get-regexp", "annex.cluster", check=False) == ""
    git_annex_agrees(annex, demo.gateway)
    assert objects(demo.root) == before  # nodes and their content untouched
    listed = described(annex, demo.gateway)
    assert {demo.uuids[n] for n in ("node1", "node2", "node3")} <= set(listed)


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
def test_new_cluster_exists_at_once(demo: DemoRepo, annex: AnnexEnv, size: tuple[int, int]) -> None:
    """After `i` is applied the cluster is in the tree, the Overview count and `annextui info`
    before it has nodes, and `a` adds a node to it (or to the first, picked from a list)."""
    seen: dict[str, object] = {}

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await pilot.press("3")
        await pilot.pause()
        await pilot.press("i")
        await answer_prompt(app, pilot, "second")
        await answer_prompt(app, pilot, "cluster second")
        await review(app, pilot, confirm=True)
        snap = app.snapshot
        assert snap is not None
        cu = snap.local_clusters["second"]
        seen["cu"] = cu
        screen = app.screen
        assert isinstance(screen, ClustersScreen)
        # in the tree, with no nodes yet: select it and add a node to it
        await wait_for(pilot, lambda: screen.select_ref(Ref("cluster", cu)), what="new cluster")
        await pilot.pause()
        await pilot.press("a")
        await pick(app, pilot, "archive")
        assert app.staged == (AddNode("archive", "second"),)
        await pilot.press("ctrl+z")
        # its (empty) nodes line names it too; the first cluster is still there
        assert screen.select_ref(Ref("nodes", cu))
        await pilot.pause()
        await pilot.press("a")
        await pick(app, pilot, "archive")
        assert app.staged == (AddNode("archive", "second"),)
        await pilot.press("ctrl+z")
        assert screen.select_ref(Ref("cluster", demo.cluster_uuid))
        await pilot.pause()
        await pilot.press("a")
        await pick(app, pilot, "archive")
        assert app.staged == (AddNode("archive", "demo"),)
        await pilot.press("ctrl+z")
        await pilot.press("1")  # Overview: two clusters
        await pilot.pause()
        seen["overview"] = plain(app.screen.query_one("#counts"))

    run_app(RepositoryBackend(demo.gateway), scenario, check_nodes=False, size=size)
    cu = seen["cu"]
    out = annex_info(annex, demo.gateway)
    listed = {c["uuid"]: c for c in out["clusters"]}
    assert listed[cu]["names"] == ["second"]
    assert listed[cu]["nodes"] == []
    assert re.search(r"\bclusters\s+2\b", str(seen["overview"])), seen["overview"]


def annex_info(annex: AnnexEnv, gateway: Path) -> dict[str, Any]:
    """`annextui info --json` (JSON: its values' types are the test's to check)."""
    res = annex.run([sys.executable, "-m", "annextui", "-C", str(gateway), "info", "--json"])
    data: dict[str, Any] = json.loads(res.stdout)
    return data


def test_node_not_yet_fetched(demo: DemoRepo, annex: AnnexEnv, tmp_path: Path) -> None:
    """A node whose own git-annex branch the gateway has not fetched has no description yet."""
    ghost = "9b05a000-0000-4000-8000-000000000001"
    annex.git(demo.gateway, "remote", "add", "ghost", str(tmp_path / "nowhere"))
    annex.git(demo.gateway, "config", "remote.ghost.annex-uuid", ghost)
    annex.git(demo.gateway, "config", "remote.ghost.annex-cluster-node", "demo")
    annex.annex(demo.gateway, "updatecluster")
    details: list[str] = []

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await select(app, pilot, Ref("node", demo.cluster_uuid, ghost))
        await pilot.pause()
        details.append(plain(app.screen.query_one("#cluster-details")))

    run_app(RepositoryBackend(demo.gateway), scenario, check_nodes=False)
    assert "not yet fetched" in details[0]
    assert ghost in details[0]
