"""Names and descriptions are other people's data: every view, toast and dialog shows them
literally (never as markup) and never writes their control characters to the terminal."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from textual.app import App
from textual.widget import Widget
from textual.widgets import DataTable, OptionList, Static, Tree

from annextui.app import AnnexConsole
from annextui.console.edits import RemoveNode
from annextui.screens.dialogs import ConfirmScreen
from annextui.screens.help import HelpScreen
from tests.console import fixed
from tests.console.fixed import FixedBackend
from tests.console.support import settle, wait_for, wait_for_screen

HOSTILE = {
    fixed.GW: "gate [bold red]x",
    fixed.N1: "rack [B] node3",
    fixed.N2: "[link=http://x]y[/] [/] a]b[ \\",
    fixed.N3: "\x1b[31mred\x07 שלום 🐙 [$text-error]e",
    fixed.AR: "[@click=app.quit]q[/] " + "long" * 124,
    fixed.CL: "[b unbalanced",
}
# ESC is made visible; BEL is made visible or dropped (Rich drops it); the rest appears exactly.
SHOWN = {u: v.replace("\x1b", "␛").replace("\x07", "") for u, v in HOSTILE.items()}


def text_of(widget: Widget) -> str:
    """What a widget holds for display, as plain text."""
    if isinstance(widget, DataTable):
        rows = (widget.get_row_at(i) for i in range(widget.row_count))
        return "\n".join(" ".join(str(getattr(c, "plain", c)) for c in r) for r in rows)
    if isinstance(widget, Tree):
        out, todo = [], [widget.root]
        while todo:
            node = todo.pop()
            out.append(str(getattr(node.label, "plain", node.label)))
            todo.extend(node.children)
        return "\n".join(out)
    if isinstance(widget, OptionList):
        return "\n".join(str(o.prompt) for o in widget.options)
    if isinstance(widget, Static):
        return str(widget.render())
    return ""


def screen_text(app: App[Any]) -> str:
    text = "\n".join(text_of(w) for w in app.screen.walk_children(Widget, with_self=False))
    return text.replace("␇", "")


def toasts(app: App[Any]) -> str:
    return "\n".join(f"{n.title} {n.message}" for n in app._notifications).replace("␇", "")


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
def test_hostile_names_show_literally_everywhere(size: tuple[int, int]) -> None:
    async def main() -> None:
        app = AnnexConsole(FixedBackend(names=HOSTILE))
        async with app.run_test(size=size) as pilot:
            await wait_for(pilot, lambda: app.balance is not None and len(app.reach) == 3)
            seen = {}
            for key in "123456":
                await pilot.press(key)
                await settle(pilot)
                seen[key] = screen_text(app)
            for key, uuids in {
                "1": [fixed.GW],
                "2": [fixed.N1, fixed.N2, fixed.N3, fixed.AR],
                "3": [fixed.N1, fixed.N2, fixed.N3, fixed.GW],
                "4": [fixed.N1, fixed.N2, fixed.N3],
                "5": [fixed.N1, fixed.N2, fixed.N3],
            }.items():
                for u in uuids:
                    assert SHOWN[u][:60] in seen[key], (key, SHOWN[u])  # long ones are cut
            everything = "\n".join(seen.values())
            assert "\x1b" not in everything
            assert "\x07" not in everything
            assert "rack  node3" not in everything

            await pilot.press("question_mark")
            await wait_for_screen(pilot, HelpScreen)
            await pilot.press("escape")

            app.stage(RemoveNode(HOSTILE[fixed.N1], HOSTILE[fixed.CL]))
            staged = f"remove node {SHOWN[fixed.N1]} from cluster {SHOWN[fixed.CL]}"
            # not after a settle: the toast expires in seconds, and a settle can take longer
            await wait_for(pilot, lambda: staged in toasts(app), what="the staged toast")
            await pilot.press("3")
            await settle(pilot)
            assert staged in screen_text(app)  # the staged panel
            await pilot.press("ctrl+s")
            await wait_for_screen(pilot, ConfirmScreen)
            assert staged in screen_text(app)
            await pilot.press("n")

    asyncio.run(asyncio.wait_for(main(), 120))
