"""The Transfers view's throughput lines survive a repository dropped and wanted back before
Textual prunes its line (forced here by two redraws in one turn of the event loop; on a loaded
machine the poller's sample can follow the snapshot's redraw before the prune).

The view used to find its lines by a DOM query: the second redraw found the removed line still
there, wrote its figures into it, and the line vanished with it when Textual pruned it."""

from __future__ import annotations

from textual.pilot import Pilot

from annextui.app import AnnexConsole
from annextui.screens.transfers import ThroughputLine, TransfersScreen
from tests.console import fixed
from tests.console.support import run_app, screen_lines, settle, wait_for, wait_for_screen


def _throughput_panel(app: AnnexConsole) -> list[str]:
    """The screen's rows from the Throughput panel's top border to its bottom one."""
    lines = screen_lines(app)
    top = next(i for i, line in enumerate(lines) if "Throughput, last 3 minutes" in line)
    bottom = next(i for i in range(top + 1, len(lines)) if "╰" in lines[i] or "└" in lines[i])
    return lines[top : bottom + 1]


def _lines_shown(screen: TransfersScreen) -> set[str]:
    return {line.id or "" for line in screen.query(ThroughputLine) if line.display}


def test_throughput_line_dropped_and_wanted_back_in_one_turn() -> None:
    seen: dict[str, tuple[set[str], list[str]]] = {}

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await pilot.press("6")
        screen = await wait_for_screen(pilot, TransfersScreen)
        await wait_for(pilot, lambda: screen.sample is not None, what="a first sample")
        await pilot.press("p")  # paused: no sample redraws the lines behind the test's back
        await settle(pilot)
        seen["before"] = (_lines_shown(screen), _throughput_panel(app))
        tracker = screen.tracker
        assert isinstance(tracker, fixed.FixedTracker)
        watched = dict(tracker.annexdirs)
        tracker.annexdirs = {fixed.GW: watched[fixed.GW]}  # node1 no longer watched...
        screen._redraw()
        tracker.annexdirs = watched  # ...and watched again, in the same turn
        screen._redraw()
        await settle(pilot)
        seen["after"] = (_lines_shown(screen), _throughput_panel(app))

    run_app(fixed.FixedBackend(), scenario)
    ids, panel = seen["before"]
    assert ids == {"tp-all", f"tp-{fixed.GW}", f"tp-{fixed.N1}"}
    assert any("node1" in row for row in panel), panel
    assert seen["after"] == seen["before"]
