"""Run by test_unwritable.py in a process that may not write the repository (see
tests/support/unwritable.py): stage edits in the console, ask for the preview (ctrl+s), and print
as JSON what the user is shown, then what applying reports. Usage: python -m THIS REPO"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from textual.pilot import Pilot

from annextui.app import AnnexConsole
from annextui.console.edits import AddNode, Edit, SetMaxsize
from annextui.console.source import RepositoryBackend
from annextui.screens.dialogs import ErrorScreen
from tests.console.support import plain, run_app, wait_for, wait_for_screen

EDITS: tuple[Edit, ...] = (AddNode("archive", "demo"), SetMaxsize("node1", "1G"))


def main(repo: Path) -> None:
    shown: dict[str, object] = {}

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        for edit in EDITS:
            assert app.stage(edit)
        await pilot.press("ctrl+s")
        await wait_for_screen(pilot, ErrorScreen, what="error dialog")
        shown["title"] = plain(app.screen.query_one("#dialog-title"))
        shown["text"] = plain(app.screen.query_one("#dialog-text"))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ErrorScreen))
        shown["staged"] = len(app.staged)

    backend = RepositoryBackend(repo)
    run_app(backend, scenario, check_nodes=False)
    shown["applied"] = [o.error for o in backend.apply(EDITS)]
    print(json.dumps(shown))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
