"""`ConsoleHost`: what the screens use of the app they run in.

Screens see the app only through this Protocol, so no screen imports `annextui.app` (which
imports every screen): the app is the one place that knows them all. `AnnexConsole` implements
it; app.py checks that statically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from textual.worker import Worker

from annextui.console.backend import ConsoleBackend
from annextui.console.balance_source import BalanceOverview
from annextui.console.edits import Edit
from annextui.console.history import Series
from annextui.console.reachability import Reachability
from annextui.console.sizes_source import SizesReport
from annextui.console.snapshot import Snapshot


class ConsoleHost(Protocol):
    """The console's shared state (read-only here: the app's workers set it) and services."""

    @property
    def backend(self) -> ConsoleBackend | None: ...

    @property
    def readonly(self) -> bool: ...

    @property
    def snapshot(self) -> Snapshot | None: ...

    @property
    def sizes(self) -> SizesReport | None: ...

    @property
    def sizes_progress(self) -> tuple[int, int | None] | None: ...

    @property
    def balance(self) -> BalanceOverview | None: ...

    @property
    def reach(self) -> Mapping[str, Reachability]: ...

    @property
    def staged(self) -> tuple[Edit, ...]: ...

    @property
    def usage_history(self) -> Series:
        """Bytes per repository at every sizes load since the console opened."""
        ...

    def view_keys(self) -> list[tuple[str, str, str]]:
        """(key, mode name, title) of every view, for the top bar."""
        ...

    def stage(self, edit: Edit) -> bool:
        """Add `edit` to the staged edits (False when the console is read-only)."""
        ...

    def check_reachability(self, uuids: Sequence[str]) -> object:
        """Start checking whether these repositories are reachable (results land in reach)."""
        ...

    def open_backend(self, backend: ConsoleBackend) -> None:
        """Show the repository `backend` reads (the welcome screen opens the demo so)."""
        ...

    def remove_on_exit(self, path: Path) -> None:
        """A temporary directory of the console's own (the welcome screen's demo): removed
        when the console closes."""
        ...

    def worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one handler of failed workers (screens forward their workers' events)."""
        ...
