"""`q` with staged edits asks (stay / review / discard) instead of throwing them away."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from textual.pilot import Pilot

from annextui.app import AnnexConsole
from annextui.console.edits import RemoveNode
from annextui.screens.dialogs import ConfirmScreen, PickScreen
from tests.console.fixed import FixedBackend
from tests.console.support import wait_for, wait_for_screen

EDIT = RemoveNode("node1", "demo")
Answer = Callable[[AnnexConsole, Pilot[int]], Awaitable[None]]


def quit_with_staged(answer: Answer, size: tuple[int, int] = (80, 24)) -> AnnexConsole:
    async def main() -> AnnexConsole:
        app = AnnexConsole(FixedBackend())
        async with app.run_test(size=size) as pilot:
            await wait_for(pilot, lambda: app.balance is not None)
            assert app.stage(EDIT)
            await pilot.press("q")
            await wait_for_screen(pilot, PickScreen)
            await pilot.press("q")  # again: still asking, not an answer
            await pilot.pause(0.1)
            assert app.is_running
            assert isinstance(app.screen, PickScreen)
            await answer(app, pilot)
        return app

    return asyncio.run(asyncio.wait_for(main(), 60))


async def stay(app: AnnexConsole, pilot: Pilot[int]) -> None:
    await pilot.press("escape")
    await pilot.pause(0.1)
    assert app.is_running
    assert not isinstance(app.screen, PickScreen)
    assert app.staged == (EDIT,)


async def review(app: AnnexConsole, pilot: Pilot[int]) -> None:
    await pilot.press("down", "enter")
    await wait_for_screen(pilot, ConfirmScreen)
    assert app.staged == (EDIT,)
    await pilot.press("n")


async def discard(app: AnnexConsole, pilot: Pilot[int]) -> None:
    await pilot.press("down", "down", "enter")
    await wait_for(pilot, lambda: not app.is_running)


@pytest.mark.parametrize("answer", [stay, review])
def test_q_with_staged_edits_asks_and_keeps_them(answer: Answer) -> None:
    app = quit_with_staged(answer)
    assert app.staged == (EDIT,)


def test_q_with_staged_edits_discards_only_when_told() -> None:
    app = quit_with_staged(discard, size=(120, 36))
    assert app.return_code == 0
