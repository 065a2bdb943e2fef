"""Which UUIDs are cluster UUIDs: one answer everywhere, and it is git-annex's.

git-annex never writes a location log line for a cluster UUID (`logChange` in Logs/Location.hs
skips `isClusterUUID`), so `git annex setpresentkey KEY UUID 1` followed by
`git annex readpresentkey KEY UUID` tells which strings git-annex takes for a cluster.
"""

from __future__ import annotations

from pathlib import Path

from annextui.backend import uuids
from annextui.backend.preferred import is_cluster_uuid as preferred_is_cluster_uuid
from annextui.backend.repo import Repository
from annextui.proxycore.records import GatewayRecords
from tests.support.annex import AnnexEnv

KEY = "SHA256E-s3--ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

# isClusterUUID: the bytes start with "ac" and byte 14 is "8" -- whatever the length
CANDIDATES = [
    "ac5877b6-cda8-85ef-89fe-87438044ca0b",  # made by initcluster
    "ac0123456789ab8",  # shortest cluster UUID
    "ac0123456789ab8-1234-1234-1234-123456789abc",  # longer than 36
    "ac0123456789ab",  # one byte short
    "ac01234567",
    "AC0123456789ab8",  # the prefix is case-sensitive
    "7f1b6c3d-1a2b-4c3d-8e4f-5a6b7c8d9e02",  # a version 4 UUID with "8" elsewhere
    "bc5877b6-cda8-85ef-89fe-87438044ca0b",
    "ac\u00e90123456789a8",  # "8" at character 14 but "a" at byte 14
    "ac\u00e901234567898",  # "8" at byte 14, 14 characters
]


def _present(annex_env: AnnexEnv, repo: Path, uuid: str) -> bool:
    res = annex_env.annex(repo, "readpresentkey", KEY, uuid, check=False)
    return res.returncode == 0


def test_cluster_uuids_are_the_ones_git_annex_never_logs(annex_env: AnnexEnv) -> None:
    theirs = annex_env.make_annex_repo("theirs")
    for u in CANDIDATES:
        annex_env.annex(theirs, "setpresentkey", KEY, u, "1")
    logged_by_git_annex = [u for u in CANDIDATES if _present(annex_env, theirs, u)]
    # the judge's answer: every non-cluster candidate is logged, no cluster one
    assert len(logged_by_git_annex) == 6

    # what the branch readers and the gateway ask, and what the preferred-content engine asks
    assert [u for u in CANDIDATES if not uuids.is_cluster_uuid(u)] == logged_by_git_annex
    assert [u for u in CANDIDATES if not preferred_is_cluster_uuid(u)] == logged_by_git_annex

    # and the gateway, which records relayed PUTs, writes exactly what git-annex writes
    ours = annex_env.make_annex_repo("ours")
    records = GatewayRecords(Repository(ours))
    records.record(KEY, CANDIDATES, present=True)
    assert [u for u in CANDIDATES if _present(annex_env, ours, u)] == logged_by_git_annex


def test_one_definition() -> None:
    """The preferred-content engine asks the same function as the rest of annextui."""
    assert preferred_is_cluster_uuid is uuids.is_cluster_uuid
