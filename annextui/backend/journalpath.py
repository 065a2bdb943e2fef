"""Journal file names of git-annex branch paths, as git-annex names them (no dulwich here).

Kept apart from branch.py so that reading one journal file (on the shell's path) does not
import dulwich.
"""

from __future__ import annotations


def journal_name(branch_path: str) -> str:
    """Branch path -> journal file name (`_` -> `__`, then `/` -> `_`)."""
    return branch_path.replace("_", "__").replace("/", "_")


def branch_path(journal_file: str) -> str:
    """Journal file name -> branch path (inverse of `journal_name`)."""
    out = []
    i = 0
    while i < len(journal_file):
        c = journal_file[i]
        if c == "_":
            if journal_file[i + 1 : i + 2] == "_":
                out.append("_")
                i += 2
                continue
            out.append("/")
        else:
            out.append(c)
        i += 1
    return "".join(out)
