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
    from annextui.backend.branch import BranchView
    from annextui.backend.catfile import CatFile
    from annextui.proxycore.localrepo import LocalRepo


class SessionBranchReads:
    """`BranchView.staged` of one repository (its journal's file, else the branch's blob, no
    unmerged refs), the blobs read through the session's `git cat-file --batch`, or dulwich
    once that fails (`read_through`)."""

    def __init__(self, repo: LocalRepo, shared: CatFile | None = None) -> None:
        self._repo = repo
        self._shared = shared  # its owner's: never closed here
        self._own: CatFile | None = None  # started by the first look, ended by close()
        self._view: BranchView | None = None  # the session's (its repository is thread-tied)
        self._opening = threading.Lock()

    def staged(self, path: str) -> bytes:
        """What a change to `path` starts from (empty when neither journal nor branch has it)."""
        return self._current_view().staged(path)

    def _current_view(self) -> BranchView:
        with self._opening:
            view = self._view
            if view is not None:
                # Another process may have committed since the last look (a stat of the ref:
                # a view per look cost ~50 us more). The look only tells whether to go on to
                # the journal lock, where the log is read again before anything is written.
                view.follow_branch()
                return view
            from annextui.backend.branch import BranchView
            from annextui.backend.catfile import CatFile, read_through

            view = BranchView(self._repo.full(), include_unmerged=False)
            catfile = self._shared
            if catfile is None:
                # no process until its first lookup; by subtree: many keys below one commit
                catfile = self._own = CatFile(view.repo, by_subtree=True)
            read_through(view, catfile)
            self._view = view
            return view

    def close(self) -> None:
        """End the session's own reader (a later look starts another): no process, no pipe
        and no thread's repository stays with a parked peer."""
        with self._opening:
            own, self._own = self._own, None
            self._view = None
        if own is not None:
            own.close()
