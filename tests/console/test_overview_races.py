"""The Overview draws the same final screen however its refreshes and repaints fall in time.

Two orders that draw a wrong Overview for good (until the next change), each forced here:
* a repaint between the sizes' cell updates and the table's next idle, where DataTable widens
  columns: the lines it drew stayed cached at the old widths ("5.2" for "5.2 GB"). Seen under
  load: the snapshot stability test's second draw;
* the sizes and the balance applied in one turn of the event loop: the first refresh removed an
  alert label, the second wrote its alert into that label before Textual had pruned it, and
  the alert vanished with it.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable

from annextui import app as app_module
from annextui.app import AnnexConsole
from tests.console import fixed
from tests.console.support import SIZE, run_app, screen_lines, settle, wait_for


def _alerts_shown(app: AnnexConsole) -> list[str]:
    """The alert lines drawn on the screen (the right half of the panel's rows)."""
    return [line for line in screen_lines(app) if "✖" in line or "▲" in line or "✔" in line]


def test_alert_removed_and_added_in_one_turn() -> None:
    shown: dict[str, list[str]] = {}

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await settle(pilot)
        shown["before"] = _alerts_shown(app)
        app.balance = None  # one alert fewer: its label is removed...
        app.balance = fixed.balance()  # ...and wanted again before Textual pruned it
        await settle(pilot)
        shown["after"] = _alerts_shown(app)

    run_app(fixed.FixedBackend(), scenario)
    assert any("nodes is not balanced" in line for line in shown["before"]), shown
    assert shown["after"] == shown["before"]


class _HeldSizes(fixed.FixedBackend):
    """Sizes come only once the test lets them (the table is first drawn without them)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def sizes(self, snapshot: Any, progress: Any = None) -> Any:
        self.release.wait(60)
        return super().sizes(snapshot, progress)


class _DrawnAtOnce(AnnexConsole):
    """The Overview's table drawn right after the sizes updated its cells, before its idle
    (where DataTable widens columns): what a repaint falling in between does under load."""

    CSS_PATH = str(Path(app_module.__file__).with_name("app.tcss"))

    def on_sizes_loaded(self, message: Any) -> None:
        super().on_sizes_loaded(message)
        table = self.screen.query_one("#repos", DataTable)
        for y in range(table.size.height):
            table.render_line(y)


def test_widened_column_drawn_before_idle() -> None:
    """Cells updated wider than their columns, the table drawn before its next idle: the
    columns are drawn at their new width, the cells not cut ("23.2" for "23.2 GB")."""
    backend = _HeldSizes()

    async def main() -> list[str]:
        app = _DrawnAtOnce(backend)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            await settle(pilot)  # drawn with `…` for every size: narrow size and usage columns
            backend.release.set()
            await wait_for(pilot, lambda: app.balance is not None)
            await settle(pilot)
            return screen_lines(app)

    lines = asyncio.run(main())
    rows = [line for line in lines if "node3" in line and "node of demo" in line]
    assert rows, lines
    assert "23.2 GB" in rows[0], rows
    assert "93%" in rows[0], rows
