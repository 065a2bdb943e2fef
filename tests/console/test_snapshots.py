"""SVG snapshots of the views with fixed data (no repository), at 120x36 and 80x24.

Regenerate after an intended change with `UPDATE_SNAPSHOTS=1 pytest tests/console/test_snapshots.py`
and look at the SVGs before committing them.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from annextui.app import AnnexConsole
from tests.console.fixed import FixedBackend
from tests.console.support import SIZE, settle, wait_for

SNAPSHOTS = Path(__file__).parent / "snapshots"
pytestmark = pytest.mark.usefixtures("utc")  # the top bar's data stamp is local time
VIEWS = {"overview": "1", "clusters": "3", "nodes": "4", "transfers": "6", "jobs": "7"}


def render(key: str, *, readonly: bool = False, size: tuple[int, int] = SIZE) -> str:
    async def main() -> str:
        app = AnnexConsole(FixedBackend(readonly=readonly))
        async with app.run_test(size=size) as pilot:
            await wait_for(pilot, lambda: app.balance is not None and len(app.reach) == 3)
            await pilot.press(key)
            screen = app.screen
            if key == "6":
                await wait_for(pilot, lambda: getattr(screen, "sample", None) is not None)
            if key == "7":
                await wait_for(pilot, lambda: getattr(screen, "detail", None) is not None)
            await settle(pilot)
            app.clear_notifications()
            return await settle(pilot)

    return asyncio.run(main())


def check(name: str, svg: str) -> None:
    path = SNAPSHOTS / f"{name}.svg"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        path.write_text(svg)
    assert path.exists(), f"no snapshot {path.name}: run with UPDATE_SNAPSHOTS=1"
    assert svg == path.read_text(), f"{name} differs from {path} (UPDATE_SNAPSHOTS=1 to accept)"


@pytest.mark.parametrize("view", sorted(VIEWS))
def test_view_snapshot(view: str) -> None:
    check(view, render(VIEWS[view]))


@pytest.mark.parametrize("view", sorted(VIEWS))
def test_view_snapshot_80x24(view: str) -> None:
    check(f"{view}-80x24", render(VIEWS[view], size=(80, 24)))


def test_readonly_snapshot_greys_out_edits() -> None:
    check("clusters-readonly", render("3", readonly=True))


def test_snapshots_are_stable() -> None:
    """The same data draws the same screen (two apps, one after the other)."""
    assert render("1") == render("1")
