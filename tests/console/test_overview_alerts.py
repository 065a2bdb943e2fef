"""The Overview's alerts follow the data however fast it changes.

Under CI load the sizes and the balance reached the Overview in one turn of the event loop: the
first refresh removed an alert label, the second wrote its alert into that label before Textual
had pruned it, and the alert vanished with it (the snapshot tests saw an Alerts panel short of
"nodes is not balanced"). Here both changes are made in one turn on purpose.
"""

from __future__ import annotations

from textual.pilot import Pilot

from annextui.app import AnnexConsole
from tests.console import fixed
from tests.console.support import run_app, screen_lines, settle


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
