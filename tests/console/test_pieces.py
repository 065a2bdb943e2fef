"""The console's pure pieces: alerts, table syncing that keeps the cursor, path shortening,
the staged-edit diff, that backend/proxycore never import textual or rich, and the tests' own
wait for a pushed screen."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys

from textual.app import App, ComposeResult
from textual.widgets import DataTable

from annextui.backend.sizes import RepoSize
from annextui.console.alerts import compute_alerts
from annextui.console.edits import AddNode, BranchChange, ConfigChange, Preview, SetMaxsize
from annextui.console.reachability import Reachability
from annextui.screens.dialogs import ErrorScreen
from annextui.screens.preview import render_preview
from annextui.screens.widgets import Row, short_path, sync_table
from tests.console import fixed
from tests.console.support import row_keys, table_rows, wait_for_screen


def test_alerts_full_unreachable_unbalanced() -> None:
    snap = fixed.snapshot()
    reach = {
        fixed.N1: Reachability(fixed.N1, "unreachable", "/srv/annex/node1: not a git repository"),
        fixed.N2: Reachability(fixed.N2, "reachable", ""),
    }
    alerts = compute_alerts(snap, fixed.sizes(), fixed.balance(), reach)
    texts = [(a.severity, a.text) for a in alerts]
    assert ("error", "node3 is 93% full (23.2 GB of 25 GB)") in texts
    assert (
        "error",
        "node1 is unreachable: /srv/annex/node1: not a git repository",
    ) in texts
    assert ("warning", "nodes is not balanced: 1 key to transfer (60 MB)") in texts
    over = dataclasses.replace(
        fixed.sizes(),
        sizes={**fixed.sizes().sizes, fixed.N3: RepoSize(fixed.N3, 1, 26_000_000_000)},
    )
    assert any(
        a.text.startswith("node3 is over its maxsize") for a in compute_alerts(snap, over, None, {})
    )
    quiet = compute_alerts(snap, dataclasses.replace(fixed.sizes(), sizes={}), None, {})
    assert [a.severity for a in quiet] == ["ok"]
    assert [a.severity for a in compute_alerts(snap, None, None, {})] == ["muted", "ok"]


def test_short_path() -> None:
    assert short_path("/srv/gw") == "/srv/gw"
    assert short_path("/tmp/pytest-of-root/pytest-1/popen-gw0/demo0/demo/gateway") == (
        "…/popen-gw0/demo0/demo/gateway"
    )
    assert short_path("/" + "x" * 60, 20).startswith("…")
    assert len(short_path("/" + "x" * 60, 20)) == 20


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield DataTable(cursor_type="row")


def test_sync_table_updates_in_place_and_keeps_the_cursor() -> None:
    out: dict[str, object] = {}

    async def main() -> None:
        app = TableApp()
        async with app.run_test() as pilot:
            table: DataTable[object] = app.query_one(DataTable)
            table.add_columns("name", "value")
            sync_table(table, [Row(k, (k, "1")) for k in "abcd"])
            table.move_cursor(row=2)  # on "c"
            await pilot.pause()
            sync_table(table, [Row(k, (k, "2")) for k in "dcbe"])
            await pilot.pause()
            out["order"] = row_keys(table)
            out["rows"] = table_rows(table)
            out["cursor"] = row_keys(table)[table.cursor_row]

    asyncio.run(main())
    assert out["order"] == ["d", "c", "b", "e"]
    assert out["rows"] == [["d", "2"], ["c", "2"], ["b", "2"], ["e", "2"]]
    assert out["cursor"] == "c"


def test_a_pushed_dialog_is_queried_once_mounted() -> None:
    """A screen pushed outside a key press (as the console does when a worker's answer comes)
    is the app's screen at once but composes its widgets in later turns: what test_jobs_view's
    refusal dialog hit under load (`NoMatches` for `#dialog-text`)."""
    seen: dict[str, object] = {}

    async def main() -> None:
        app = TableApp()
        async with app.run_test() as pilot:
            app.push_screen(ErrorScreen("refused", "nothing was changed"))
            seen["at once"] = (isinstance(app.screen, ErrorScreen), len(app.screen.query("*")))
            dialog = await wait_for_screen(pilot, ErrorScreen)
            seen["mounted"] = str(dialog.query_one("#dialog-text").render())

    asyncio.run(main())
    assert seen["at once"] == (True, 0)
    assert seen["mounted"] == "nothing was changed"


def test_preview_renders_a_diff_with_names() -> None:
    snap = fixed.snapshot()
    preview = Preview(
        (AddNode("archive", "demo"), SetMaxsize("node1", "50GB")),
        (ConfigChange("remote.archive.annex-cluster-node", (), ("demo",)),),
        (
            BranchChange(
                "cluster.log", fixed.CL, f"{fixed.N1} {fixed.N2}", f"{fixed.AR} {fixed.N1}"
            ),
            BranchChange("maxsize.log", fixed.N1, "40000000000", "50000000000"),
        ),
    )
    text = render_preview(preview, snap).plain
    assert "1. add node archive to cluster demo" in text
    assert "+ remote.archive.annex-cluster-node = demo" in text
    assert "- node1 node2" in text
    assert "+ archive node1" in text
    assert "+ 50000000000  (50.0 GB)" in text
    assert f"maxsize.log  node1 ({fixed.N1[:8]})" in text


def test_backend_and_proxycore_never_import_textual_or_rich() -> None:
    code = (
        "import sys, pkgutil, importlib, annextui.backend, annextui.proxycore\n"
        "for pkg in (annextui.backend, annextui.proxycore):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
