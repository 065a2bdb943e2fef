"""A repository that vanishes while LocalPeer receives into it (renamed, or its disk unmounted,
leaving an empty directory at its path): the upload fails as `Unreachable`, nothing is created
at the old path, the partial body stays in the moved repository, and once the repository is
back the upload resumes from it (checked by a real `git annex fsck`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from annextui.backend.keys import key_for_content
from annextui.proxycore.local import LocalIncoming, LocalPeer
from annextui.proxycore.localrepo import LocalRepo
from annextui.proxycore.peer import Outcome, Unreachable
from tests.support.annex import AnnexEnv

U = "7e570000-0000-4000-8000-0000000000e1"
CLIENT = "c11e0000-0000-4000-8000-0000000000e2"


def _tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


@pytest.mark.parametrize("replace", [False, True], ids=["renamed", "unmounted"])
def test_receive_into_a_vanished_repository_creates_nothing(
    annex_env: AnnexEnv, replace: bool
) -> None:
    repo = annex_env.make_annex_repo("srv.git", U, "served", bare=True)
    away = repo.with_name("srv.away.git")
    data = os.urandom(300_000)
    key = key_for_content(data, "SHA256E", ".bin")
    warnings: list[str] = []
    peer = LocalPeer(LocalRepo.open(str(repo)), client_uuid=CLIENT, warn=warnings.append)
    inc = peer.put(key, "f.bin")
    assert isinstance(inc, LocalIncoming)
    inc.begin(len(data))
    inc.write(data[:100_000])
    repo.rename(away)
    if replace:
        repo.mkdir()  # the empty mount point
    inc.write(data[100_000:])
    with pytest.raises(Unreachable, match="moved or unmounted"):
        inc.finish(True)
    with pytest.raises(Unreachable):  # a new upload in the same session is refused at once
        peer.put(key_for_content(b"other", "SHA256E", ".bin"), None)
    peer.close()
    assert _tree(repo) == []
    assert repo.exists() == replace
    # The body went into the moved repository's temp file; back in place, it is resumed.
    if replace:
        repo.rmdir()
    away.rename(repo)
    peer = LocalPeer(LocalRepo.open(str(repo)), client_uuid=CLIENT)
    inc = peer.put(key, "f.bin")
    assert isinstance(inc, LocalIncoming)
    assert inc.offset == len(data)
    inc.begin(0)
    assert inc.finish(True) == Outcome(True)
    peer.close()
    assert annex_env.annex_json(repo, "fsck", "--key", str(key))[0]["success"]
