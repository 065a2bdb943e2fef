"""Repository and cluster UUIDs."""

from __future__ import annotations

import re
import uuid as _uuid

_SAFE_UUID = re.compile(r"^[0-9A-Za-z-]+$")


def is_cluster_uuid(u: str) -> bool:
    """Only UUIDs of this form are ever treated as clusters (`Types/Cluster.hs`)."""
    return len(u) == 36 and u.startswith("ac") and u[14] == "8"


def new_repo_uuid() -> str:
    return str(_uuid.uuid4())


def new_cluster_uuid() -> str:
    u = str(_uuid.uuid4())
    return "ac" + u[2:14] + "8" + u[15:]


def safe_uuid(u: str) -> bool:
    """A UUID that can be used in a path (transfer files) or on a protocol line."""
    return bool(_SAFE_UUID.match(u))
