"""The console's backend on a real repository (no textual, no rich): `ConsoleBackend` as
implemented by reading the repository. Each call opens the repository afresh, so nothing is
shared between worker threads but the immutable snapshots it returns."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from annextui.backend.repo import NotAnnexRepository, Repository
from annextui.console.backend import ConsoleBackend, ReadOnlyError
from annextui.console.balance_source import (
    BalanceOverview,
    WhatIf,
    WhatIfResult,
    balance_report,
    what_if,
)
from annextui.console.edits import Edit, EditOutcome, Preview, apply_edits, preview_edits
from annextui.console.jobs_source import JobsSampler
from annextui.console.reachability import Reachability, check_reachability
from annextui.console.sizes_source import SizesReport, repo_sizes
from annextui.console.snapshot import Snapshot, load_snapshot
from annextui.console.transfers_source import TransferTracker


class RepositoryBackend(ConsoleBackend):
    """The console's access to the repository at `path`, opened afresh by every call."""

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        repo = Repository.discover(path)
        if not repo.is_annex:
            raise NotAnnexRepository(f"{repo.top}: not a git-annex repository")
        self.path = repo.top
        self.readonly = readonly

    def snapshot(self) -> Snapshot:
        return load_snapshot(self.path)

    def signature(self) -> tuple[object, ...]:
        # What the snapshot is read from: git config, refs, the journal, the branch tip.
        repo = Repository(self.path)
        out: list[object] = []
        for p in (repo.gitdir / "config", repo.gitdir / "packed-refs", repo.annexdir / "journal"):
            try:
                st = p.stat()
                out.append((st.st_mtime_ns, st.st_size))
            except OSError:
                out.append(None)
        try:
            out.append(bytes(repo.git.refs[b"refs/heads/git-annex"]))
        except KeyError:
            out.append(None)
        return tuple(out)

    def sizes(
        self, snapshot: Snapshot, progress: Callable[[int, int | None], None] | None = None
    ) -> SizesReport:
        return repo_sizes(snapshot.path, progress)

    def balance(
        self, snapshot: Snapshot, sizes: SizesReport, *, rebalance: bool = False
    ) -> BalanceOverview:
        return balance_report(snapshot, sizes, rebalance=rebalance)

    def what_if(self, snapshot: Snapshot, sizes: SizesReport, change: WhatIf) -> WhatIfResult:
        return what_if(snapshot, sizes, change)

    def transfers(self, snapshot: Snapshot) -> TransferTracker:
        return TransferTracker(self.local_annexdirs(snapshot))

    def reachability(self, snapshot: Snapshot, uuids: Sequence[str]) -> list[Reachability]:
        return [check_reachability(snapshot, u) for u in uuids]

    def jobs(self) -> JobsSampler:
        return JobsSampler(self.path)

    def preview(self, edits: Sequence[Edit]) -> Preview:
        return preview_edits(self.path, edits)

    def apply(self, edits: Sequence[Edit]) -> list[EditOutcome]:
        if self.readonly:
            raise ReadOnlyError("the console is read-only (--readonly): nothing was changed")
        return apply_edits(self.path, edits)

    def local_annexdirs(self, snapshot: Snapshot) -> dict[str, Path]:
        """This repository's annex directory and those of its local-path remotes, by UUID."""
        out = {snapshot.uuid: Repository(self.path).annexdir}
        for name in snapshot.configured:
            r = snapshot.remotes[name]
            path = r.local_path(self.path)
            if r.uuid and path is not None:
                with contextlib.suppress(NotAnnexRepository):
                    out.setdefault(r.uuid, Repository(path).annexdir)
        return out
