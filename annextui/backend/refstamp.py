"""Whether refs changed since they were listed: what a BranchView kept between a server's
requests checks instead of listing `refs/` again for each.

Every writer (git, git-annex, dulwich) creates or moves a ref by renaming a new file into its
directory, a new namespace (`refs/remotes/NEW/`) is a new directory in its parent, and
packed-refs and git-annex's merged-refs lists are rewritten by rename too: each changes the
modification and change times of a directory or file the last listing saw. A stamp is only
trusted when every time in it is older than the listing's start, less a margin: the kernel
stamps files from a coarse clock (a jiffy, 1-10 ms), so a change just after the listing could
carry the same time as one just before it (git's "racy" index entries, the same rule).
"""

from __future__ import annotations

import os
import time

# Margin for the kernel's coarse file clock: far above a jiffy, and far below the time between
# two changes anyone would expect a server to tell apart.
RACY_NS = 100_000_000

Stamp = tuple[tuple[int, int, int, int] | None, ...]


def listing_started() -> int:
    """The time to pass to `stamp` for a listing that starts now."""
    return time.time_ns() - RACY_NS


def stamp(paths: list[str], listed_at: int | None = None) -> Stamp | None:
    """Inode, size, mtime and ctime of each path (None for a missing one). With `listed_at`
    (`listing_started()` before the listing): None unless every time is older than that, so
    nothing changed after the listing began, and a stamp taken again later that equals this one
    means nothing changed since."""
    out: list[tuple[int, int, int, int] | None] = []
    for path in paths:
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            out.append(None)
            continue
        if listed_at is not None and max(st.st_mtime_ns, st.st_ctime_ns) >= listed_at:
            return None
        out.append((st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(out)
