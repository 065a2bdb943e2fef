"""The journal committed when a client's session ends, as git-annex's shell commits at exit.

A served repository (`LocalPeer`) and a gateway's own records (`GatewayRecords`) both end a
session this way. Most sessions write nothing (a `CHECKPRESENT`, a `GET`): one `scandir` of
`annex/journal` tells them apart before the journal module (and dulwich with it) is imported,
which keeps the shell's per-connection cost at a few system calls.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the Protocol class costs start-up time that only the type checker needs
    from typing import Protocol

    from annextui.backend.journal import Journal

    class JournalledRepository(Protocol):
        """What of a repository (`LocalRepo`, `Repository`) the session end reads."""

        @property
        def annexdir(self) -> Path: ...

        def config_bool(self, name: str, default: bool = False) -> bool: ...


def journal_dirty(annexdir: Path) -> bool:
    """Whether `annex/journal` holds any file (an unreadable journal counts as clean)."""
    try:
        with os.scandir(annexdir / "journal") as entries:
            return any(True for _ in entries)
    except OSError:
        return False


def commit_session_journal(
    repo: JournalledRepository,
    journal: Callable[[], Journal],
    warn: Callable[[str], None],
    *,
    apart: Callable[[], object],
) -> None:
    """Commit the journal into the git-annex branch unless `annex.alwayscommit` is false or
    nothing is journalled; `journal` is called only then. In a long-running server
    (proxycore/commits.py) the commit is handed to its idle-time committer instead: `apart`
    commits through repository objects of its own, on that committer's thread. A failed commit
    is a warning, never the session's failure: the journal stays, and the next session (or
    git-annex) commits it.
    """
    if not repo.config_bool("annex.alwayscommit", default=True):
        return
    if not journal_dirty(repo.annexdir):
        return
    from annextui.proxycore.commits import defer

    if defer(repo.annexdir, apart):
        return  # a long-running server commits it once the repository is idle
    try:
        journal().commit()  # retries a branch moving under it by itself
    except Exception as exc:  # never lose the session's result over the commit
        warn(f"unable to commit the git-annex branch: {exc}")
