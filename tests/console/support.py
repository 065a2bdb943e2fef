"""Helpers for console tests: copying a demo, running the app under Pilot, reading widgets."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from textual.app import App
from textual.coordinate import Coordinate
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import DataTable

from annextui.app import AnnexConsole
from annextui.backend.demo import DemoRepo
from annextui.console.backend import ConsoleBackend

SIZE = (120, 36)


def copy_demo(demo: DemoRepo, dest: Path) -> DemoRepo:
    shutil.copytree(demo.root, dest, symlinks=True)

    def moved(p: Path) -> Path:
        return dest / p.relative_to(demo.root)

    return dataclasses.replace(
        demo,
        root=dest,
        gateway=moved(demo.gateway),
        nodes={k: moved(v) for k, v in demo.nodes.items()},
        archive=moved(demo.archive) if demo.archive else None,
    )


Scenario = Callable[[AnnexConsole, Pilot[int]], Awaitable[None]]


def run_app(
    backend: ConsoleBackend | None,
    scenario: Scenario,
    *,
    readonly: bool = False,
    check_nodes: bool = True,
    missing: str | None = None,
    timeout: float = 120,
    size: tuple[int, int] = SIZE,
) -> AnnexConsole:
    """Run the console headless (120x36 unless `size`), wait for the first snapshot and sizes, run
    `scenario`, and return the app (after it exited)."""

    async def main() -> AnnexConsole:
        app = AnnexConsole(backend, readonly=readonly, check_nodes=check_nodes, missing=missing)
        async with app.run_test(size=size) as pilot:
            if backend is not None:
                await wait_for(pilot, lambda: app.snapshot is not None and app.sizes is not None)
                await wait_for(pilot, lambda: app.balance is not None)
            await scenario(app, pilot)
        return app

    return asyncio.run(asyncio.wait_for(main(), timeout))


async def wait_for(
    pilot: Pilot[Any], predicate: Callable[[], object], timeout: float = 30.0, what: str = ""
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await pilot.pause(0.05)


ScreenT = TypeVar("ScreenT", bound=Screen[Any])


async def wait_for_screen(
    pilot: Pilot[Any], kind: type[ScreenT], timeout: float = 30.0, what: str = ""
) -> ScreenT:
    """The app's screen once it is a `kind` and mounted. A pushed screen composes its widgets
    in its own later turns: a query right after the push can find none (`NoMatches`), and keys
    pressed then can reach a widget not focused yet."""

    def shown() -> bool:
        screen = pilot.app.screen
        return isinstance(screen, kind) and screen.is_mounted

    await wait_for(pilot, shown, timeout, what or f"a mounted {kind.__name__}")
    screen = pilot.app.screen
    assert isinstance(screen, kind)
    return screen


async def settle(pilot: Pilot[Any], timeout: float = 60.0) -> str:
    """Wait until the screen is drawn and stays so; its SVG screenshot.

    Settled means: no animation running or scheduled, every message queued for the screen and
    its widgets handled, layout and repaint done, and two screenshots in a row equal. A fixed
    pause is not that on a loaded machine (a widget mounted by the last refresh can still be
    waiting for its layout), and a deadline only bounds the wait: it never decides a result.
    """
    deadline = time.monotonic() + timeout
    previous = None
    while True:
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()
        shot = pilot.app.export_screenshot(title="annextui")
        if shot == previous:
            return shot
        if time.monotonic() > deadline:
            raise AssertionError(f"the screen did not settle in {timeout} s")
        previous = shot


def table_rows(table: DataTable[Any]) -> list[list[str]]:
    """The plain text of every row, in display order."""
    out = []
    for i in range(table.row_count):
        out.append([str(getattr(c, "plain", c)) for c in table.get_row_at(i)])
    return out


def row_keys(table: DataTable[Any]) -> list[str]:
    keys = (table.coordinate_to_cell_key(Coordinate(i, 0)).row_key for i in range(table.row_count))
    return [k.value or "" for k in keys]


def repo_fingerprint(path: Path) -> str:
    """A digest of what an edit could change: git config, refs, journal."""
    gitdir = path / ".git" if (path / ".git").is_dir() else path
    h = hashlib.sha256()
    files = [
        gitdir / "config",
        gitdir / "packed-refs",
        *(gitdir / "refs").rglob("*"),
        *(gitdir / "annex" / "journal").glob("*"),
    ]
    for f in sorted(files):
        if f.is_file():
            h.update(str(f.relative_to(gitdir)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def plain(widget: Any) -> str:
    """The text a Static/Label shows, without markup."""
    return str(widget.render())


def screen_lines(app: App[Any]) -> list[str]:
    """The screen as the terminal shows it, one string per row (what export_screenshot draws)."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        record=True,
        legacy_windows=False,
    )
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    return console.export_text().splitlines()
