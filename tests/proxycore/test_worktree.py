"""Work-tree pieces checked against git-annex's own output: pointer files, inode cache text, and
the keys database rows a PUT records itself (tests/interop/test_unlocked_interop.py compares the
whole behaviour with git-annex-shell's)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from annextui.backend.keys import parse_key
from annextui.proxycore.keysdb import inode_cache, same_inode_cache
from annextui.proxycore.local import LocalPeer
from annextui.proxycore.localrepo import LocalRepo
from annextui.proxycore.pointer import format_pointer, parse_pointer
from tests.support.annex import AnnexEnv

CLIENT = "c1ie0000-0000-4000-8000-0000000000w1"
KEY = "SHA256E-s3--" + "ab" * 32 + ".txt"


def _rows(repo: Path, sql: str) -> list[tuple[Any, ...]]:  # sqlite's rows are untyped
    with sqlite3.connect(f"file:{repo}/.git/annex/keysdb/db?mode=ro", uri=True) as c:
        return c.execute(sql).fetchall()


def test_pointer_round_trip_and_what_is_not_a_pointer() -> None:
    key = parse_key(KEY)
    assert format_pointer(key) == f"/annex/objects/{KEY}\n".encode()
    assert parse_pointer(format_pointer(key)) == key
    link = f"../../.git/annex/objects/xx/yy/{KEY}/{KEY}".encode()
    assert parse_pointer(link) == key  # a locked file's symlink target
    assert parse_pointer(format_pointer(key) + b"/annex/objects/ more\n") == key
    assert parse_pointer(format_pointer(key) + b"other data\n") is None
    assert parse_pointer(format_pointer(key) + b"x" * 40000) is None
    assert parse_pointer(b"/annex/objects/not a key\n") is None
    assert parse_pointer(b"plain text\n") is None


def test_inode_cache_text_is_git_annexs(annex_env: AnnexEnv) -> None:
    """git-annex records the inode caches of files it adds unlocked; ours must be the same
    strings, fractions with trailing zeros chopped and a whole second with none."""
    repo = annex_env.make_annex_repo(annex_env.root / "r", config={"annex.addunlocked": "true"})
    files = {"frac.txt": 1_700_000_000_120_000_000, "whole.txt": 1_700_000_001_000_000_000}
    for name, ns in files.items():
        (repo / name).write_text(name)
        os.utime(repo / name, ns=(ns, ns))
    annex_env.annex(repo, "add", "-q", *files)
    recorded = {str(r[0]) for r in _rows(repo, "SELECT inodecache FROM content")}
    for name in files:
        ours = inode_cache(repo / name)
        assert ours in recorded, (ours, recorded)
    assert inode_cache(repo / "whole.txt").endswith(" 1700000001 ")  # type: ignore[union-attr]
    assert inode_cache(repo / "frac.txt").endswith(" 1700000000 12")  # type: ignore[union-attr]
    assert same_inode_cache("1 2 3 ", "1 2 3 456")  # low resolution: seconds compared
    assert not same_inode_cache("1 2 3 4", "1 2 3 5")


def test_put_records_the_inode_caches_itself(
    annex_env: AnnexEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The object's and the populated file's inode caches are in the keys database because the
    PUT wrote them, not because git-annex's clean filter (run by the restage) hashed the file:
    with the filters disabled nothing but our code can have recorded them."""
    repo = annex_env.make_annex_repo(annex_env.root / "r", config={"annex.addunlocked": "true"})
    keys = annex_env.add_files(repo, {"d/f.txt": "content of f\n"})
    key = parse_key(keys["d/f.txt"])
    obj = next((repo / ".git/annex/objects").rglob(keys["d/f.txt"] + "/*"))
    saved = annex_env.root / "saved"
    shutil.copy(obj, saved)
    annex_env.annex(repo, "drop", "-q", "--force", "d/f.txt")
    assert parse_pointer((repo / "d/f.txt").read_bytes()) == key
    assert _rows(repo, "SELECT * FROM content") == []

    for i, (k, v) in enumerate((("filter.annex.process", ""), ("filter.annex.clean", "cat"))):
        monkeypatch.setenv(f"GIT_CONFIG_KEY_{i}", k)
        monkeypatch.setenv(f"GIT_CONFIG_VALUE_{i}", v)
    monkeypatch.setenv("GIT_CONFIG_COUNT", "2")
    warnings: list[str] = []
    peer = LocalPeer(LocalRepo.open(str(repo)), client_uuid=CLIENT, warn=warnings.append)
    tmp = repo / ".git/annex/tmp/in"
    tmp.parent.mkdir(exist_ok=True)
    shutil.copy(saved, tmp)
    peer.store_verified(key, tmp)
    peer.close()

    assert (repo / "d/f.txt").read_bytes() == b"content of f\n"
    obj = next((repo / ".git/annex/objects").rglob(keys["d/f.txt"] + "/*"))
    want = {inode_cache(obj), inode_cache(repo / "d/f.txt")}
    assert {str(r[0]) for r in _rows(repo, "SELECT inodecache FROM content")} == want
    rows = _rows(repo, "SELECT key, filesize, mtime FROM content")
    st = obj.stat()
    assert {(bytes(k), s, m) for k, s, m in rows} == {
        (keys["d/f.txt"].encode(), str(st.st_size), int(st.st_mtime))
    }


def test_bare_repository_loads_no_work_tree_code(annex_env: AnnexEnv) -> None:
    """A PUT and a REMOVE in a bare repository import neither worktree.py nor sqlite3 (the
    shell's start-up and per-transfer cost stay as they were)."""
    repo = annex_env.make_annex_repo(annex_env.root / "b.git", bare=True)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from annextui.backend.keys import key_for_content\n"
        "from annextui.proxycore.local import LocalPeer\n"
        "from annextui.proxycore.localrepo import LocalRepo\n"
        f"peer = LocalPeer(LocalRepo.open({str(repo)!r}), client_uuid={CLIENT!r})\n"
        "data = b'bare content'\n"
        "key = key_for_content(data, 'SHA256E', '.txt')\n"
        "tmp = peer.store.tmpdir / 'in'\n"
        "tmp.parent.mkdir(parents=True, exist_ok=True)\n"
        "tmp.write_bytes(data)\n"
        "peer.store_verified(key, tmp)\n"
        "assert peer.remove(key).ok\n"
        "peer.close()\n"
        "loaded = {'sqlite3', 'annextui.proxycore.worktree', 'annextui.proxycore.keysdb'}\n"
        "print(sorted(loaded & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=annex_env.env | {"PYTHONPATH": os.environ.get("PYTHONPATH", "")},
    )
    assert out.stdout.strip() == "[]", out.stderr
