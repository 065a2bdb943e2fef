"""Issue 15, items 4, 7, 9 and 10 under Pilot, on fixed data, at 80x24 and 120x36: badges and
the data stamp never fall off the top bar, `r` says what it re-read, the footer keeps `q` `?`
`^p`, tables fit (columns give way, UUIDs shorten), the help table and the what-if panel are
usable, the pictures (sparklines, usage bars, trend) and the saved theme, and the mouse (tabs,
column headers)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Sparkline

from annextui.app import AnnexConsole
from annextui.console.edits import SetMaxsize
from annextui.console.settings import load_settings, settings_path
from annextui.screens.transfers import ThroughputLine, TransfersScreen
from tests.console import fixed
from tests.console.fixed import FixedBackend
from tests.console.support import screen_lines, settle, table_rows, wait_for, wait_for_screen

SIZES = [(80, 24), (120, 36)]
STAMP = "05:42:10 0000000"  # fixed.NOW in UTC, and the fixed branch commit, short


pytestmark = pytest.mark.usefixtures("utc")


Scenario = Callable[[AnnexConsole, Pilot[int]], Awaitable[None]]


def run(size: tuple[int, int], scenario: Scenario, *, readonly: bool = False) -> AnnexConsole:
    async def main() -> AnnexConsole:
        app = AnnexConsole(FixedBackend(readonly=readonly))
        async with app.run_test(size=size, notifications=True) as pilot:
            await wait_for(pilot, lambda: app.balance is not None and len(app.reach) == 3)
            await scenario(app, pilot)
        return app

    return asyncio.run(asyncio.wait_for(main(), 120))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("readonly", [False, True])
def test_badges_and_data_stamp_stay_on_the_top_bar(size: tuple[int, int], readonly: bool) -> None:
    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        if not readonly:
            for gb in (10, 20, 30):
                assert app.stage(SetMaxsize("node1", f"{gb}GB"))
        for key in "123456":
            await pilot.press(key)
            await settle(pilot)
            top = screen_lines(app)[0]
            assert len(top) <= size[0]
            assert STAMP in top, (key, top)
            badge = "READ-ONLY" if readonly else "● 3 staged"
            assert top.rstrip().endswith(badge), (key, top)

    run(size, scenario, readonly=readonly)


@pytest.mark.parametrize("size", SIZES)
def test_footer_keeps_quit_help_and_palette(size: tuple[int, int]) -> None:
    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        for key in "123456":
            await pilot.press(key)
            # a view's first paint under load may not have its footer yet
            await wait_for(pilot, lambda: "Quit" in screen_lines(app)[-1], what="the footer")
            footer = screen_lines(app)[-1]
            for shown in ("q Quit", "? Help", "^p Commands"):
                assert shown in footer, (key, footer)

    run(size, scenario)


def test_r_says_what_it_read_again() -> None:
    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await pilot.press("6")
        app.clear_notifications()
        await pilot.press("r")
        await wait_for(pilot, lambda: any("Refreshed" in n.title for n in app._notifications))
        (toast,) = [n for n in app._notifications if n.title == "Refreshed"]
        assert "git-annex branch 0000000 and git config read at 05:42:10" in toast.message
        assert "sizes and balance recomputing" in toast.message
        assert "live transfers sampled" in toast.message  # what this view reads besides

    run((120, 36), scenario)


@pytest.mark.parametrize("size", SIZES)
def test_tables_fit_and_uuids_shorten(size: tuple[int, int]) -> None:
    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        for key in "1246":
            await pilot.press(key)
            await settle(pilot)
            table = app.screen.query_one(DataTable)
            # every column is on screen: nothing to scroll to sideways
            assert table.max_scroll_x == 0, (key, [c.label.plain for c in table.columns.values()])
        await pilot.press("1")
        await settle(pilot)
        table = app.screen.query_one("#repos", DataTable)
        shown = {c.key.value for c in table.columns.values()}
        # what gives way first goes first; the name, role and usage stay
        assert {"repository", "uuid", "role", "usage"} <= shown
        if size[0] < 100:
            assert "groups" not in shown
        else:
            assert shown == {
                "repository",
                "uuid",
                "role",
                "trust",
                "groups",
                "size",
                "maxsize",
                "usage",
            }
        uuids = [row[1] for row in table_rows(table)]
        assert f"{fixed.GW[:8]}…" in uuids

    run(size, scenario)


def test_help_table_readable_at_80x24() -> None:
    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await pilot.press("4", "question_mark")
        await settle(pilot)
        table = app.screen.query_one("#help-keys", DataTable)
        assert table.max_scroll_x == 0  # key, does, where: all on screen
        assert table.region.height >= 8  # rows of keys, not a sliver under the text
        text = "\n".join(screen_lines(app))
        assert "this view" in text
        assert "everywhere" in text

    run((80, 24), scenario)


def test_what_if_panel_usable_at_80x24() -> None:
    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await pilot.press("5")
        await settle(pilot)
        panel = app.screen.query_one("#whatif-panel")
        assert panel.region.width >= 60  # under the table, the screen's width
        assert panel.region.height >= 6
        table = app.screen.query_one("#balance", DataTable)
        assert table.region.width >= 60

    run((80, 24), scenario)


@pytest.mark.parametrize("size", SIZES)
def test_transfers_sparklines(size: tuple[int, int]) -> None:
    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await pilot.press("6")
        screen = await wait_for_screen(pilot, TransfersScreen)
        await wait_for(pilot, lambda: screen.sample is not None)
        await settle(pilot)
        lines = {line.id: line for line in screen.query(ThroughputLine)}
        assert set(lines) == {"tp-all", f"tp-{fixed.GW}", f"tp-{fixed.N1}"}
        sample = screen.sample
        assert sample is not None
        rates: dict[str, float] = {}
        for v in sample.transfers:
            rates[v.where] = rates.get(v.where, 0.0) + (v.rate or 0.0)
        newest = {key: list(line.spark.data or [0.0])[-1] for key, line in lines.items()}
        assert newest["tp-all"] == pytest.approx(sum(rates.values()))
        assert newest[f"tp-{fixed.N1}"] == pytest.approx(rates[fixed.N1])
        assert all(line.spark.region.width >= 20 for line in lines.values())
        assert len(list(screen.query(Sparkline))) == 3
        text = "\n".join(screen_lines(app))
        assert "whole gateway" in text
        assert "Throughput, last 3 minutes" in text

    run(size, scenario)


def test_overview_usage_bars_and_cluster_totals() -> None:
    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        table = app.screen.query_one("#repos", DataTable)
        rows = {r[0]: r for r in table_rows(table)}
        keys = [c.key.value for c in table.columns.values()]
        cluster = dict(zip(keys, rows["demo cluster"], strict=True))
        used = sum(fixed.SIZES[u][1] for u in (fixed.N1, fixed.N2, fixed.N3))
        cap = sum(fixed.MAXSIZE[u] for u in (fixed.N1, fixed.N2, fixed.N3))
        assert cluster["size"] == "46.7 GB"
        assert cluster["maxsize"] == "125 GB"
        assert cluster["usage"].endswith(f"{used / cap:4.0%}")
        assert cluster["usage"].startswith("███")
        node3 = dict(zip(keys, rows["node3"], strict=True))
        assert node3["usage"].endswith(" 93%")

    run((120, 36), scenario)


def test_nodes_trend_since_the_console_opened() -> None:
    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await pilot.press("4")
        assert len(app.usage_history) == 1
        await pilot.press("r")
        await wait_for(pilot, lambda: len(app.usage_history) == 2)
        await settle(pilot)
        table = app.screen.query_one(DataTable)
        keys = [c.key.value for c in table.columns.values()]
        assert "trend" in keys
        for row in table_rows(table):
            assert row[keys.index("trend")] == "▁▁"  # two readings, the same bytes

    run((120, 36), scenario)


def test_theme_persists(private_settings: Path) -> None:
    async def choose(app: AnnexConsole, pilot: Pilot[int]) -> None:
        assert app.theme != "nord"
        app.theme = "nord"
        await settle(pilot)

    run((120, 36), choose)
    assert settings_path() == private_settings / "annextui" / "settings.toml"
    assert load_settings().theme == "nord"
    seen = {}

    async def reopen(app: AnnexConsole, pilot: Pilot[int]) -> None:
        seen["theme"] = app.theme

    run((120, 36), reopen)
    assert seen["theme"] == "nord"


def test_unreadable_settings_are_the_defaults(private_settings: Path) -> None:
    path = private_settings / "annextui" / "settings.toml"
    path.parent.mkdir(parents=True)
    path.write_text('theme = "no-such-theme"\n[[[broken')
    seen = {}

    async def opened(app: AnnexConsole, pilot: Pilot[int]) -> None:
        seen["theme"] = app.theme

    run((120, 36), opened)
    assert seen["theme"] == "textual-dark"


@pytest.mark.parametrize("size", SIZES)
def test_clicking_a_tab_switches_views(size: tuple[int, int]) -> None:
    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        for key, name in (("4", "nodes"), ("6", "transfers"), ("1", "overview")):
            top = screen_lines(app)[0]
            x = top.index(f" {key} ") + 1
            await pilot.click(offset=(x, 0))
            await settle(pilot)
            assert app.current_mode == name, (key, top)

    run(size, scenario)


def test_clicking_a_column_header_sorts_and_reverses() -> None:
    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        table = app.screen.query_one("#repos", DataTable)
        header = screen_lines(app)[table.region.y]

        async def click(label: str) -> list[str]:
            x = header.index(f" {label} ") + 1
            await pilot.click(offset=(x, table.region.y))
            await settle(pilot)
            return [r[0] for r in table_rows(table)]

        by_name = await click("repository")
        assert by_name == sorted(by_name)
        assert await click("repository") == sorted(by_name, reverse=True)
        by_size = await click("size")
        sizes = {fixed.NAMES[u]: s for u, (_k, s) in fixed.SIZES.items() if u in fixed.NAMES}
        known = [n for n in by_size if n in sizes]
        assert [sizes[n] for n in known] == sorted(sizes[n] for n in known)

    run((120, 36), scenario)

    async def nodes(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await pilot.press("4")
        await settle(pilot)
        screen: Any = app.screen
        table = screen.query_one(DataTable)
        header = screen_lines(app)[table.region.y]
        x = header.index(" keys ") + 1
        await pilot.click(offset=(x, table.region.y))
        await settle(pilot)
        assert (screen.sort_by, screen.reverse) == ("keys", True)
        await pilot.click(offset=(x, table.region.y))
        await settle(pilot)
        assert (screen.sort_by, screen.reverse) == ("keys", False)
        keys = [int(r[3]) for r in table_rows(table)]
        assert keys == sorted(keys)

    run((120, 36), nodes)


@pytest.mark.parametrize("size", SIZES)
def test_overview_counts_all_on_screen(size: tuple[int, int]) -> None:
    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await settle(pilot)
        text = "\n".join(screen_lines(app))
        for count in ("repositories 5", "clusters 1", "nodes 3", "keys 300", "staged edits 0"):
            assert count in text, count
        assert "demo cluster" in text  # and the table below still shows the cluster row

    run(size, scenario)
