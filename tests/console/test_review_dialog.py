"""The review dialog (ctrl+s) with many staged edits: its body scrolls, and its buttons and
key hints stay on screen; no toast covers it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from textual.widget import Widget
from textual.widgets._toast import Toast

from annextui.app import AnnexConsole
from annextui.console.edits import BranchChange, Edit, Preview, RemoveNode
from annextui.screens.dialogs import ConfirmScreen
from tests.console.fixed import FixedBackend
from tests.console.support import settle, wait_for, wait_for_screen


class ManyChanges(FixedBackend):
    """Every edit changes two branch lines, as removing a node does (cluster.log, proxy)."""

    def preview(self, edits: Sequence[Edit]) -> Preview:
        changes = [
            BranchChange(log, f"uuid-{i}", "a b c", "a b")
            for i in range(len(edits))
            for log in ("cluster.log", "proxy.log")
        ]
        return Preview(tuple(edits), branch=tuple(changes))


def on_top(widget: Widget) -> bool:
    """The widget is wholly on screen and is what the terminal shows at its corners."""
    screen = widget.screen
    r = widget.region
    if not r or not screen.region.contains_region(r):
        return False
    corners = [(r.x, r.y), (r.right - 1, r.bottom - 1)]
    return all(
        screen.get_widget_at(x, y)[0] in (widget, *widget.walk_children()) for x, y in corners
    )


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
def test_review_of_ten_edits_keeps_its_buttons_on_screen(
    size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The toasts must outlive the checks below however slowly a loaded machine runs them (a
    # class setting: a subclass here would look for the app's CSS beside this file).
    monkeypatch.setattr(AnnexConsole, "NOTIFICATION_TIMEOUT", 600)

    async def main() -> None:
        app = AnnexConsole(ManyChanges())
        async with app.run_test(size=size, notifications=True) as pilot:
            await wait_for(pilot, lambda: app.balance is not None)
            for i in range(10):
                assert app.stage(RemoveNode(f"node{i}", "demo"))
            await pilot.press("ctrl+s")
            await wait_for_screen(pilot, ConfirmScreen)
            dialog = app.screen
            parts = ("#dialog-title", "#dialog-keys", "#no", "#yes")
            # the dialog's layout settles over a few refreshes on a loaded machine
            await wait_for(pilot, lambda: all(on_top(dialog.query_one(p)) for p in parts), 10)
            for selector in parts:
                assert on_top(dialog.query_one(selector)), selector
            body = dialog.query_one("#dialog-body")
            assert body.max_scroll_y > 0  # the diff scrolls inside the dialog
            body.scroll_end(animate=False)
            await settle(pilot)
            assert on_top(dialog.query_one("#yes"))
            assert app._notifications  # the "Staged: …" toasts are still pending
            w, h = size
            shown = {type(dialog.get_widget_at(x, y)[0]) for x in range(w) for y in range(h)}
            assert Toast not in shown
            await pilot.press("n")
            await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
            assert len(app.staged) == 10

    asyncio.run(asyncio.wait_for(main(), 60))
