"""Location-log paths on the git-annex branch, and the key fields a path carries.

The size of a key is read from its path (the ``-s`` field of the key name), never from the
log's content, so totals need no parsing of the key beyond these few bytes.
"""

from __future__ import annotations

from annextui.backend.keys import file_key
from annextui.backend.repo import Repository

__all__ = ["is_location_path", "key_of_path", "key_size_of_path", "location_depth"]


def location_depth(repo: Repository) -> int:
    """Path components of a location log: 3 (``aaa/bbb/KEY.log``), 2 with branchhash1."""
    return 2 if repo.config_bool("annex.tune.branchhash1") else 3


def is_location_path(path: bytes, slashes: int) -> bool:
    return path.endswith(b".log") and path.count(b"/") == slashes and b"--" in path


def key_size_of_path(path: bytes) -> int:
    """The ``-s`` field of the key a location-log path names (0 when absent)."""
    base = path[path.rfind(b"/") + 1 :]
    d = base.find(b"--")
    i = base.find(b"-s", 0, d) if d > 0 else -1
    if i < 0:
        return 0
    j = base.find(b"-", i + 2)
    digits = base[i + 2 : j]
    return int(digits) if digits.isdigit() else 0


def key_of_path(path: bytes) -> str:
    """The serialized key a location-log path names."""
    base = path[path.rfind(b"/") + 1 : -4]
    return file_key(base.decode("utf-8", "surrogateescape"))
