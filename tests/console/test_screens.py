"""Pilot tests of every view on real repositories built by the demo builder."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable, Tree
from textual.widgets.tree import TreeNode

from annextui.app import AnnexConsole
from annextui.backend.demo import DemoRepo
from annextui.console.balance_source import BalanceOverview
from annextui.console.sizes_source import SizesReport
from annextui.console.snapshot import Snapshot
from annextui.console.source import RepositoryBackend
from annextui.screens.balance import BalanceScreen
from annextui.screens.clusters import ClustersScreen, Ref
from annextui.screens.help import HelpScreen
from annextui.screens.nodes import NodesScreen
from annextui.screens.overview import OverviewScreen
from annextui.screens.proxies import ProxiesScreen
from annextui.screens.transfers import TransfersScreen
from annextui.screens.welcome import WelcomeScreen
from tests.console import fixed
from tests.console.fixed import FixedBackend
from tests.console.support import plain, row_keys, run_app, table_rows, wait_for, wait_for_screen
from tests.support.annex import AnnexEnv


def test_views_switch_with_number_keys(demo_template: DemoRepo) -> None:
    seen: list[type] = []

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        for key in "123456":
            await pilot.press(key)
            await pilot.pause()
            seen.append(type(app.screen))
        await pilot.press("q")

    app = run_app(RepositoryBackend(demo_template.gateway), scenario, check_nodes=False)
    assert seen == [
        OverviewScreen,
        ProxiesScreen,
        ClustersScreen,
        NodesScreen,
        BalanceScreen,
        TransfersScreen,
    ]
    assert app.return_code == 0


def test_overview_role_counts_and_alerts(demo: DemoRepo, annex: AnnexEnv) -> None:
    # A maxsize just above what node3 holds puts it over 90 %; node2 disappears.
    sizes = annex.annex_json(demo.gateway, "maxsize")[0]["repositories"]
    held = next(r["size"]["size"] for r in sizes if r["uuid"] == demo.uuids["node3"])
    annex.annex(demo.gateway, "maxsize", "node3", str(held * 100 // 96))
    shutil.move(demo.nodes["node2"], demo.root / "node2.moved")
    nodes = {demo.uuids[n] for n in demo.nodes}
    texts: dict[str, str] = {}

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await wait_for(pilot, lambda: nodes <= set(app.reach), what="reachability of the nodes")
        await pilot.pause()
        screen = app.screen
        texts["repo"] = plain(screen.query_one("#repo-info"))
        texts["counts"] = plain(screen.query_one("#counts"))
        texts["alerts"] = "\n".join(plain(w) for w in screen.query(".alert"))
        rows = table_rows(screen.query_one("#repos", DataTable))
        texts["table"] = "\n".join(" ".join(r) for r in rows)

    run_app(RepositoryBackend(demo.gateway), scenario)
    assert "role: gateway" in texts["repo"]
    assert "gateway of demo" in texts["repo"]
    assert demo.uuids["gateway"] in texts["repo"]
    assert "clusters 1" in texts["counts"]
    assert "nodes 3" in texts["counts"]
    assert "keys 300" in texts["counts"]
    assert "node3 is 96% full" in texts["alerts"]
    assert "node2 is unreachable" in texts["alerts"]
    for name in ("node1", "node2", "node3", "archive"):
        assert name in texts["table"]


def test_overview_without_alerts_says_so(demo_template: DemoRepo) -> None:
    alerts: list[str] = []

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await wait_for(pilot, lambda: len(app.reach) >= 3)
        await pilot.pause()
        alerts.extend(plain(w) for w in app.screen.query(".alert"))

    run_app(RepositoryBackend(demo_template.gateway), scenario)
    assert any("no alerts" in a and "3 of 3 nodes" in a for a in alerts), alerts


def test_proxies_list_and_reachability_on_demand(demo: DemoRepo) -> None:
    shutil.move(demo.nodes["node1"], demo.root / "node1.moved")
    out: dict[str, list[list[str]]] = {}

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await pilot.press("2")
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        out["before"] = table_rows(table)
        await pilot.press("C")
        await wait_for(pilot, lambda: len(app.reach) >= 5, what="all checked")
        await pilot.pause()
        out["after"] = table_rows(table)

    run_app(RepositoryBackend(demo.gateway), scenario, check_nodes=False)
    by_name = {r[1]: r for r in out["after"]}
    assert set(by_name) == {
        "origin-archive",
        "origin-demo",
        "origin-node1",
        "origin-node2",
        "origin-node3",
    }
    # 120 columns: UUIDs shortened to their first 8 digits, so the other columns fit
    assert by_name["origin-node2"][3] == demo.uuids["node2"][:8] + "…"
    assert by_name["origin-demo"][3] == demo.cluster_uuid[:8] + "…"
    assert by_name["origin-demo"][5] == "cluster"
    assert by_name["origin-node3"][5] == "node of demo"
    assert all(r[6] == "not checked" for r in out["before"])
    assert by_name["origin-node2"][6].startswith("● reachable")
    assert by_name["origin-node1"][6].startswith("✖")
    assert by_name["origin-demo"][6].startswith("● reachable")


def test_clusters_tree_shows_gateways_and_nodes(demo_template: DemoRepo) -> None:
    refs: list[Ref] = []
    labels: list[str] = []

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await pilot.press("3")
        await pilot.pause()
        tree: Tree[Ref] = app.screen.query_one(Tree)

        def walk(node: TreeNode[Ref]) -> None:
            for child in node.children:
                assert child.data is not None
                refs.append(child.data)
                labels.append(str(child.label))
                walk(child)

        walk(tree.root)

    run_app(RepositoryBackend(demo_template.gateway), scenario, check_nodes=False)
    cu = demo_template.cluster_uuid
    assert Ref("cluster", cu) in refs
    assert Ref("gateway", cu, demo_template.uuids["gateway"]) in refs
    for n in ("node1", "node2", "node3"):
        assert Ref("node", cu, demo_template.uuids[n]) in refs
    assert any(label.startswith("demo") for label in labels)
    assert any("node3" in label and "GB" in label for label in labels)


def test_nodes_sizes_sorting_and_filter(demo_template: DemoRepo, annex: AnnexEnv) -> None:
    real = {
        r["uuid"]: r["size"]["size"]
        for r in annex.annex_json(demo_template.gateway, "maxsize", "--bytes")[0]["repositories"]
    }
    out: dict[str, Any] = {}

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await pilot.press("4")
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        out["keys"] = row_keys(table)
        out["rows"] = table_rows(table)
        await pilot.press("s")  # next sort column: size
        await pilot.pause()
        out["by_size"] = row_keys(table)
        await pilot.press("slash", *"node1")
        await pilot.pause()
        out["filtered"] = row_keys(table)
        await pilot.press("escape")
        await pilot.pause()
        out["cleared"] = row_keys(table)

    run_app(RepositoryBackend(demo_template.gateway), scenario, check_nodes=False)
    sizes = {u: real[u] for u in out["keys"]}
    assert len(sizes) == 3
    uses = {
        demo_template.uuids[n]: sizes[demo_template.uuids[n]] / m
        for n, m in {"node1": 40e9, "node2": 60e9, "node3": 25e9}.items()
    }
    assert out["keys"] == sorted(uses, key=uses.__getitem__, reverse=True)
    rows = {r[0]: r for r in out["rows"]}
    node3 = rows["node3"]
    assert int(node3[3]) > 0
    assert node3[7] == f"{uses[demo_template.uuids['node3']]:.1%}"
    assert out["by_size"] == sorted(sizes, key=sizes.__getitem__, reverse=True)
    assert out["filtered"] == [demo_template.uuids["node1"]]
    assert sorted(out["cleared"]) == sorted(uses)


def test_help_lists_the_keys_of_the_current_view(demo_template: DemoRepo) -> None:
    helps: dict[str, list[str]] = {}

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        for view in ("3", "4", "6"):
            await pilot.press(view)
            await pilot.pause()
            await pilot.press("question_mark")
            await wait_for_screen(pilot, HelpScreen)
            table = app.screen.query_one(DataTable)
            helps[view] = [" ".join(r) for r in table_rows(table)]
            await pilot.press("escape")
            await pilot.pause()

    run_app(RepositoryBackend(demo_template.gateway), scenario, check_nodes=False)
    clusters = "\n".join(helps["3"])
    assert "Add node" in clusters
    assert "Remove node" in clusters
    assert "Quit" in clusters
    assert "Sort" not in clusters
    assert "Sort" in "\n".join(helps["4"])
    assert "Pause" in "\n".join(helps["6"])


def test_command_palette_offers_what_applies_now(demo_template: DemoRepo) -> None:
    titles: dict[str, list[str]] = {}

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        for view in ("3", "4"):
            await pilot.press(view)
            await pilot.pause()
            titles[view] = [c.title for c in app.get_system_commands(app.screen)]
        await pilot.press("ctrl+p")
        await pilot.pause()
        titles["open"] = [type(app.screen).__name__]

    run_app(RepositoryBackend(demo_template.gateway), scenario, check_nodes=False)
    assert "Add node" in titles["3"]
    assert "Init cluster" in titles["3"]
    assert "Sort" not in titles["3"]
    assert "Sort" in titles["4"]
    assert "Quit" in titles["4"]
    assert "Apply staged" not in titles["3"]  # nothing staged
    assert titles["open"] == ["CommandPalette"]


def test_filter_on_overview_and_proxies(demo_template: DemoRepo) -> None:
    out: dict[str, list[list[str]]] = {}

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await pilot.press("slash", *"archive")
        await pilot.pause()
        out["overview"] = table_rows(app.screen.query_one("#repos", DataTable))
        await pilot.press("escape")
        await pilot.press("2", "slash", *"cluster")
        await pilot.pause()
        out["proxies"] = table_rows(app.screen.query_one(DataTable))

    run_app(RepositoryBackend(demo_template.gateway), scenario, check_nodes=False)
    assert [r[0] for r in out["overview"]] == ["archive"]
    assert [r[1] for r in out["proxies"]] == ["origin-demo"]


def test_no_repository_offers_the_demo(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    out: dict[str, Any] = {}

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await pilot.pause()
        out["first"] = type(app.screen)
        out["text"] = plain(app.screen.query_one("#welcome-text"))
        await pilot.press("enter")  # focus starts on "Open the demo"
        await wait_for(pilot, lambda: app.snapshot is not None, timeout=60, what="demo")
        await wait_for_screen(pilot, OverviewScreen)
        out["role"] = app.snapshot.role if app.snapshot else None
        out["path"] = app.backend.path if app.backend else None

    app = run_app(None, scenario, missing=str(empty), check_nodes=False)
    assert out["first"] is WelcomeScreen
    assert str(empty) in str(out["text"])
    assert out["role"] == "gateway"
    path = out["path"]
    assert isinstance(path, Path)
    assert path.name == "gateway"
    # the temporary demo is removed when the console closes (run_console does it on exit)
    assert app.temporary == [path.parent]
    assert path.is_dir()
    app.remove_temporary()
    assert not path.parent.exists()


def test_quit_with_q(demo_template: DemoRepo) -> None:
    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await pilot.press("q")
        await pilot.pause()

    app = run_app(RepositoryBackend(demo_template.gateway), scenario, check_nodes=False)
    assert app.return_code == 0
    assert not app.is_running


def test_balance_wanted_vs_held_and_what_if(demo: DemoRepo, annex: AnnexEnv) -> None:
    # A key only the gateway has: balanced=nodes makes exactly one node want it.
    key = "SHA256E-s5000000--" + "cd" * 32 + ".bin"
    annex.annex(demo.gateway, "setpresentkey", key, demo.uuids["gateway"], "1")
    out: dict[str, Any] = {}
    node3 = demo.uuids["node3"]

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await pilot.press("5")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, BalanceScreen)
        table = screen.query_one("#balance", DataTable)
        out["rows"] = table_rows(table)
        out["summary"] = plain(screen.query_one("#balance-summary"))
        out["pending"] = table_rows(screen.query_one("#pending", DataTable))
        # what if node3 left the group?
        table.move_cursor(row=row_keys(table).index(f"nodes/{node3}"))
        await pilot.press("x")
        await wait_for(pilot, lambda: screen.result is not None, what="what-if result")
        await pilot.pause()
        out["whatif"] = plain(screen.query_one("#whatif-text"))
        out["moves"] = table_rows(screen.query_one("#moves", DataTable))
        await pilot.press("c")
        await pilot.press("R")  # as git-annex --rebalance would decide
        await wait_for(pilot, lambda: screen.rebalanced is not None, what="rebalance report")
        await pilot.pause()
        out["rebalanced"] = plain(screen.query_one("#balance-summary"))

    app = run_app(RepositoryBackend(demo.gateway), scenario, check_nodes=False)
    rows = {r[1]: r for r in out["rows"]}
    assert set(rows) == {"node1", "node2", "node3"}
    assert all(r[0] == "nodes" for r in rows.values())
    # held vs wanted: one node lacks the key it wants; nothing is held where it is not wanted
    wanting = [name for name, r in rows.items() if r[4] == "1"]  # to get
    assert len(wanting) == 1
    assert all(r[5] == "0" for r in rows.values())  # to drop
    assert "1 key to transfer (5 MB)" in str(out["summary"])
    assert out["pending"] == [["copy", f"gateway → {wanting[0]}", "1", "5 MB"]]
    assert "remove node3" in str(out["whatif"])
    moves = out["moves"]
    assert {m[1] for m in moves if m[0] == "move"} == {"node3 → node1", "node3 → node2"}
    moved = sum(int(m[2]) for m in moves if m[0] in ("move", "copy"))
    assert f"{moved} key{'s' if moved != 1 else ''} to transfer" in str(out["whatif"])
    assert "--rebalance" in str(out["rebalanced"])
    assert app.balance is not None
    alerts = app.balance.groups[0]
    assert alerts.plan.transfer_keys == 1


def test_palette_runs_a_command(demo_template: DemoRepo) -> None:
    out: list[type] = []

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "CommandPalette")
        await pilot.press(*"Nodes")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for_screen(pilot, NodesScreen, what="Nodes view")
        out.append(type(app.screen))

    run_app(RepositoryBackend(demo_template.gateway), scenario, check_nodes=False)
    assert out == [NodesScreen]


def test_changes_made_outside_are_picked_up(demo: DemoRepo, annex: AnnexEnv) -> None:
    node1 = demo.uuids["node1"]
    seen: list[int | None] = []

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        assert app.snapshot is not None
        seen.append(app.snapshot.repos[node1].maxsize)
        annex.annex(demo.gateway, "maxsize", "node1", "77GB")  # the real git-annex, meanwhile

        def changed() -> bool:
            snap = app.snapshot
            return snap is not None and snap.repos[node1].maxsize == 77_000_000_000

        await wait_for(pilot, changed, timeout=20, what="the new maxsize")
        seen.append(app.snapshot.repos[node1].maxsize if app.snapshot else None)

    run_app(RepositoryBackend(demo.gateway), scenario, check_nodes=False)
    assert seen == [40_000_000_000, 77_000_000_000]


class BrokenSizes(RepositoryBackend):
    def sizes(
        self, snapshot: Snapshot, progress: Callable[[int, int | None], None] | None = None
    ) -> SizesReport:
        raise RuntimeError("the disk is on fire")


def test_worker_failure_becomes_an_error_dialog(demo_template: DemoRepo) -> None:
    from annextui.screens.dialogs import ErrorScreen

    out: list[str] = []

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, ErrorScreen) and app.screen.query("#dialog-text"),
            what="error dialog",
        )
        out.append(plain(app.screen.query_one("#dialog-title")))
        out.append(plain(app.screen.query_one("#dialog-text")))
        await pilot.press("enter")
        await pilot.pause()
        out.append(type(app.screen).__name__)

    async def main() -> None:
        app = AnnexConsole(BrokenSizes(demo_template.gateway), check_nodes=False)
        async with app.run_test(size=(120, 36)) as pilot:
            await scenario(app, pilot)

    import asyncio

    asyncio.run(main())
    assert out[0] == "sizes failed"
    assert "RuntimeError: the disk is on fire" in out[1]
    assert out[2] == "OverviewScreen"


class RecordingBackend(FixedBackend):
    """The fixed data, and which balance reports the console asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.rebalance_asked: list[bool] = []

    def balance(
        self, snapshot: Snapshot, sizes: SizesReport, *, rebalance: bool = False
    ) -> BalanceOverview:
        self.rebalance_asked.append(rebalance)
        return dataclasses.replace(fixed.balance(), rebalance=rebalance)


def test_balance_view_asks_its_backend_for_the_rebalance_report() -> None:
    # The fixed backend has no repository behind it: a view reading one around its backend fails.
    backend = RecordingBackend()
    out: dict[str, object] = {}

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await pilot.press("5")
        screen = app.screen
        assert isinstance(screen, BalanceScreen)
        await pilot.press("R")
        await wait_for(pilot, lambda: screen.rebalanced is not None, what="rebalance report")
        out["report"] = screen.rebalanced
        out["summary"] = plain(screen.query_one("#balance-summary"))
        out["screen"] = type(app.screen).__name__

    run_app(backend, scenario, check_nodes=False)
    assert backend.rebalance_asked == [False, True]
    report = out["report"]
    assert isinstance(report, BalanceOverview)
    assert report.rebalance
    assert "--rebalance" in str(out["summary"])
    assert out["screen"] == "BalanceScreen"  # no error dialog
