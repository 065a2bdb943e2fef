"""`SessionBranchReads`: a served repository's look-ups of its own git-annex branch, for one
session, through one `git cat-file --batch` that the session owns (or borrows).

A `LocalPeer` reads its own location log when a REMOVE finds no content or a PUT finds content
already here (local.py: is a phantom or an unlogged copy to be corrected?). A drain through a
local node asks that for thousands of keys in one session, a one-shot client for one or two:
one batch process started by the first look serves both, where a `git` process per look costs
a fork each and dulwich an import (~100 ms) and a Python walk of three objects per look.

The process belongs to the session, not to the repository: `close()` ends it, and the peer
calls that when its session ends or it is parked in a long-running server's pool
(`annextui p2phttp`), where a repository outlives every request and a reader kept with it would
hold a process and two pipes for good. A reader handed over by whoever opened the session (the
one-shot gateway session's own, catfile.py) is used but never closed here: its owner closes it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from annextui.backend.catfile import CatFile
    from annextui.backend.repo import Repository
    from annextui.proxycore.localrepo import LocalRepo


class SessionBranchReads:
    """`BranchView.staged` of one repository (its journal's file, else the branch's blob as
    the branch is at the look, no unmerged refs), the blobs read through the session's
    `git cat-file --batch`, or dulwich once that fails (`read_through`)."""

    def __init__(self, repo: LocalRepo, shared: CatFile | None = None) -> None:
        self._repo = repo
        self._shared = shared  # its owner's: never closed here
        self._own: CatFile | None = None  # started by the first look, ended by close()
        self._full: Repository | None = None  # the view's repository (thread-tied in a server)
        self._opening = threading.Lock()

    def staged(self, path: str) -> bytes:
        """What a change to `path` starts from (empty when neither journal nor branch has it)."""
        from annextui.backend.branch import BranchView
        from annextui.backend.catfile import read_through

        full, catfile = self._reader()
        # A view per look, as before: the branch ref is read now (a commit made since the
        # last look is seen), and the journal first, exactly as `staged` reads it.
        view = BranchView(full, include_unmerged=False)
        read_through(view, catfile)
        return view.staged(path)

    def _reader(self) -> tuple[Repository, CatFile]:
        with self._opening:
            full = self._full
            if full is None:
                full = self._full = self._repo.full()
            catfile = self._shared or self._own
            if catfile is None:
                from annextui.backend.catfile import CatFile

                catfile = self._own = CatFile(full)  # no process until its first lookup
            return full, catfile

    def close(self) -> None:
        """End the session's own reader (a later look starts another): no process, no pipe
        and no thread's repository stays with a parked peer."""
        with self._opening:
            own, self._own = self._own, None
            self._full = None
        if own is not None:
            own.close()
