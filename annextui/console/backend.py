"""`ConsoleBackend`: everything the console asks of a repository, as a Protocol.

The app and its screens hold a backend only as this interface (as Harlequin holds its adapter):
`RepositoryBackend` (console/source.py) reads a real repository, the tests' fixed backend
returns the same data on every run. Every method blocks and is called from a worker thread;
what they return are immutable snapshots, so nothing else is shared between threads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from annextui.console.balance_source import BalanceOverview, WhatIf, WhatIfResult
from annextui.console.edits import Edit, EditOutcome, Preview
from annextui.console.jobs_source import JobControl
from annextui.console.reachability import Reachability
from annextui.console.sizes_source import SizesReport
from annextui.console.snapshot import Snapshot
from annextui.console.transfers_source import TransferSampler


class ReadOnlyError(Exception):
    """The console was opened with --readonly: nothing may change."""


READONLY_MESSAGE = "Read-only console (--readonly): nothing can be changed."


class ConsoleBackend(Protocol):
    """The console's access to one repository. Methods block: call them from workers."""

    path: Path
    readonly: bool

    def snapshot(self) -> Snapshot:
        """The repository's branch and git config, read now."""
        ...

    def signature(self) -> tuple[object, ...]:
        """Cheap to compute, and different whenever the snapshot could be: the console polls
        it to refresh by itself."""
        ...

    def sizes(
        self, snapshot: Snapshot, progress: Callable[[int, int | None], None] | None = None
    ) -> SizesReport: ...

    def balance(
        self, snapshot: Snapshot, sizes: SizesReport, *, rebalance: bool = False
    ) -> BalanceOverview:
        """Every balanced group's report; `rebalance`: decided as git-annex --rebalance."""
        ...

    def what_if(self, snapshot: Snapshot, sizes: SizesReport, change: WhatIf) -> WhatIfResult: ...

    def transfers(self, snapshot: Snapshot) -> TransferSampler:
        """A sampler of live transfers here and in this repository's local-path remotes."""
        ...

    def reachability(self, snapshot: Snapshot, uuids: Sequence[str]) -> list[Reachability]: ...

    def jobs(self) -> JobControl:
        """The drain and rebalance jobs of this repository: sampled, paused, resumed."""
        ...

    def preview(self, edits: Sequence[Edit]) -> Preview:
        """What applying `edits` would change; nothing of the repository is written."""
        ...

    def apply(self, edits: Sequence[Edit]) -> list[EditOutcome]:
        """Apply `edits` in order (ReadOnlyError when the console is read-only)."""
        ...
