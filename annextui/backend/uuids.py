"""Repository and cluster UUIDs."""

from __future__ import annotations


def is_cluster_uuid(u: str) -> bool:
    """``isClusterUUID`` (Types/Cluster.hs): the UUID starts with ``ac`` and its byte 14 is ``8``.

    Any length qualifies, and the offset counts UTF-8 bytes (git-annex's UUIDs are bytes).
    git-annex never logs such a UUID as holding content nor counts it as a copy
    (``numCopiesCount``), and only such a UUID is read as a cluster from cluster.log.
    """
    if u.isascii():  # the usual case, without encoding
        return u.startswith("ac") and len(u) > 14 and u[14] == "8"
    b = u.encode("utf-8", "surrogateescape")
    return b.startswith(b"ac") and len(b) > 14 and b[14] == 0x38


def new_repo_uuid() -> str:
    # imported here: `uuid` imports `platform` (~4 ms), and annextui-shell reads UUIDs at every
    # connection but makes one only when it initialises a repository
    import uuid

    return str(uuid.uuid4())


def new_cluster_uuid() -> str:
    u = new_repo_uuid()
    return "ac" + u[2:14] + "8" + u[15:]
