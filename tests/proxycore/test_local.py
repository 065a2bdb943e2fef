"""LocalPeer, the object store, content locks and transfer records, against real git-annex.

Repositories are made by git-annex itself; whatever our code stores, locks or logs is then
checked by git-annex (`fsck`, `whereis`, `drop`), never by our own readers alone.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from annextui.backend.keys import Key, hashdir_lower, key_for_content, parse_key
from annextui.proxycore.local import LocalIncoming, LocalPeer, disk_reserve
from annextui.proxycore.localrepo import LocalRepo, expand_repo_path
from annextui.proxycore.locks import POOL, ContentLocked, lock_for_removal, read_retention
from annextui.proxycore.objectstore import ObjectStore, SharedMode, Sharing, UnsafePath
from annextui.proxycore.peer import AlreadyHave, Outcome, PeerFatal, RequestRefused
from annextui.proxycore.transfers import (
    Direction,
    Transfer,
    TransferInfo,
    TransferRecorder,
    failed_transfers,
    format_transfer_info,
    list_transfers,
    parse_transfer_info,
    transfer_paths,
)
from tests.support.annex import AnnexEnv
from tests.support.data import SPEC_EXAMPLES

U = "7e570000-0000-4000-8000-000000000001"
CLIENT = "c1ie0000-0000-4000-8000-000000000002"
EXAMPLES = SPEC_EXAMPLES


def _peer(repo: Path, warnings: list[str] | None = None) -> LocalPeer:
    sink = warnings if warnings is not None else []
    return LocalPeer(LocalRepo.open(str(repo)), client_uuid=CLIENT, warn=sink.append)


def _store(peer: LocalPeer, data: bytes, *, variety: str = "SHA256E", ext: str = ".bin") -> Key:
    key = key_for_content(data, variety, ext)
    inc = peer.put(key, "f.bin")
    assert not isinstance(inc, AlreadyHave)
    inc.begin(len(data) - inc.offset)
    inc.write(data[inc.offset :])
    assert inc.finish(True) == Outcome(True)
    return key


@pytest.fixture
def bare(annex_env: AnnexEnv) -> Path:
    return annex_env.make_annex_repo("srv.git", U, "served", bare=True)


@pytest.fixture
def nonbare(annex_env: AnnexEnv) -> Path:
    return annex_env.make_annex_repo("work", U, "work")


# -- the object store ------------------------------------------------------------------------------


def test_finds_objects_git_annex_stored(annex_env: AnnexEnv, nonbare: Path) -> None:
    keys = annex_env.add_files(nonbare, {"a.txt": "alpha\n", "b.bin": b"\0" * 1000})
    store = LocalRepo.open(str(nonbare)).store
    for f, k in keys.items():
        kp = store.present(parse_key(k))
        assert kp is not None
        assert os.path.samefile(kp.object, nonbare / f)  # the symlink's target
        assert store.content_size(parse_key(k)) == (nonbare / f).stat().st_size


@pytest.mark.parametrize("kind", ["bare", "nonbare"])
def test_store_where_git_annex_looks(
    annex_env: AnnexEnv, kind: str, request: pytest.FixtureRequest
) -> None:
    repo: Path = request.getfixturevalue(kind)
    peer = _peer(repo)
    data = os.urandom(100_000)
    key = _store(peer, data)
    peer.close()
    loc = annex_env.run(["git", "annex", "contentlocation", str(key)], repo).stdout.strip()
    obj = (repo / loc) if not os.path.isabs(loc) else Path(loc)
    assert obj.read_bytes() == data
    assert (obj.stat().st_mode & 0o777, obj.parent.stat().st_mode & 0o777) == (0o444, 0o555)
    recs = annex_env.annex_json(repo, "fsck", "--key", str(key))
    assert recs[0]["success"], recs
    where = annex_env.annex_json(repo, "whereis", "--key", str(key))
    assert [w["uuid"] for w in where[0]["whereis"]] == [U]
    # the journal was committed when the session ended, as git-annex's shell does
    assert not any((repo / ("" if kind == "bare" else ".git") / "annex" / "journal").iterdir())


def test_tuned_repository_layout(annex_env: AnnexEnv) -> None:
    """A repository initialised with annex.tune.objecthash1, objecthashlower and branchhash1:
    objects and location logs land where git-annex looks for them in such a repository."""
    repo = annex_env.root / "tuned.git"
    annex_env.run(["git", "init", "-q", "--bare", str(repo)], annex_env.root)
    annex_env.run(["git", "config", "annex.uuid", U], repo)
    annex_env.run(
        [
            "git", "-c", "annex.tune.objecthash1=true", "-c", "annex.tune.objecthashlower=true",
            "-c", "annex.tune.branchhash1=true", "annex", "init", "-q", "tuned",
        ],
        repo,
    )  # fmt: skip
    peer = _peer(repo)
    data = os.urandom(10_000)
    key = _store(peer, data)
    peer.close()
    log = annex_env.run(["git", "ls-tree", "-r", "--name-only", "git-annex"], repo).stdout
    assert f"{hashdir_lower(key, 1)}{key}.log" in log.split(), log
    where = annex_env.annex_json(repo, "whereis", "--key", str(key))
    assert [w["uuid"] for w in where[0]["whereis"]] == [U]
    recs = annex_env.annex_json(repo, "fsck", "--key", str(key))
    assert recs[0]["success"], recs


def test_one_key_object_found_in_stores_of_either_hash_layout(annex_env: AnnexEnv) -> None:
    """The same Key object looked up by turns in a default repository and in one initialised
    with annex.tune.objecthash1 (one hash level): each store finds the object git-annex put in
    it (a store remembers the names of the key it met last: never another layout's)."""
    default = annex_env.make_annex_repo("default", U, "default")
    tuned = annex_env.root / "tuned"
    annex_env.run(["git", "init", "-q", str(tuned)], annex_env.root)
    annex_env.run(["git", "config", "annex.uuid", CLIENT], tuned)
    annex_env.run(
        ["git", "-c", "annex.tune.objecthash1=true", "annex", "init", "-q", "tuned"], tuned
    )
    content = {"same.bin": b"one content, two layouts\n"}
    (k,) = annex_env.add_files(default, content).values()
    assert annex_env.add_files(tuned, content) == {"same.bin": k}
    key = parse_key(k)
    stores = {repo: LocalRepo.open(str(repo)).store for repo in (default, tuned)}
    for repo in (default, tuned, default, tuned):
        loc = annex_env.run(["git", "annex", "contentlocation", k], repo).stdout.strip()
        found = stores[repo].present(key)
        assert found is not None, repo
        assert os.path.samefile(found.object, repo / loc)
        assert stores[repo].has_object(key)
    one_level = stores[tuned].present(key)
    assert one_level is not None
    assert len(one_level.dir.relative_to(tuned / ".git" / "annex" / "objects").parts) == 2


def test_unsafe_layouts_are_refused(tmp_path: Path) -> None:
    gitdir = tmp_path / "r.git"
    (gitdir / "annex" / "objects").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    store = ObjectStore(gitdir, bare=True)
    key = key_for_content(b"x", "SHA256E", ".txt")
    kp = store.candidates(key)[0]
    kp.dir.parent.parent.mkdir(parents=True)
    os.symlink(outside, kp.dir.parent)  # H2 is a symlink out of the store
    with pytest.raises(UnsafePath):
        store.locate(key)
    with pytest.raises(UnsafePath):
        store.install(key, tmp_path / "nothing")
    os.unlink(kp.dir.parent)
    kp.dir.parent.mkdir()
    os.symlink(outside, kp.dir)  # the key directory itself
    with pytest.raises(UnsafePath):
        store.present(key)
    (store.tmpdir).mkdir()
    os.symlink(outside / "t", store.tmp_path(key))  # a planted temp file
    with pytest.raises(UnsafePath):
        store.open_tmp(key)
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("level", [1, 2])
def test_present_refuses_an_object_behind_a_symlinked_hash_directory(
    tmp_path: Path, level: int
) -> None:
    """A regular object file reached through a hash directory that is a symlink out of the
    store is not content here (the served GET's path check, objectstore._check_hashdir)."""
    gitdir = tmp_path / "r.git"
    (gitdir / "annex" / "objects").mkdir(parents=True)
    store = ObjectStore(gitdir, bare=True, hash_lower_only=True)
    key = key_for_content(b"x", "SHA256E", ".txt")
    kp = store.candidates(key)[0]
    linked = kp.dir.parent if level == 2 else kp.dir.parent.parent  # H2, or H1
    outside = tmp_path / "outside"
    (outside / kp.dir.relative_to(linked) / kp.keyfile).parent.mkdir(parents=True)
    (outside / kp.dir.relative_to(linked) / kp.keyfile).write_bytes(b"x")
    linked.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(outside, linked)
    assert kp.object.is_file()  # the object is there, through the link
    with pytest.raises(UnsafePath, match="is not a directory"):
        store.present(key)


def test_symlinked_objects_root_is_fine(tmp_path: Path) -> None:
    gitdir = tmp_path / "r.git"
    (gitdir / "annex").mkdir(parents=True)
    disk = tmp_path / "bigdisk"
    disk.mkdir()
    os.symlink(disk, gitdir / "annex" / "objects")
    store = ObjectStore(gitdir, bare=True)
    data = b"on another disk\n"
    key = key_for_content(data, "SHA256E", ".txt")
    fd, tmp = store.open_tmp(key)
    os.write(fd, data)
    os.close(fd)
    kp = store.install(key, tmp)
    assert kp.object.read_bytes() == data
    assert list(disk.rglob("*.txt"))


def test_sharing_modes() -> None:
    assert Sharing.from_config(None).mode is SharedMode.UNSHARED
    assert Sharing.from_config("group").mode is SharedMode.GROUP
    assert Sharing.from_config("true").mode is SharedMode.GROUP
    assert Sharing.from_config("all").mode is SharedMode.ALL
    s = Sharing.from_config("0640")
    assert (s.mode, s.umask_mode) == (SharedMode.UMASK, 0o640)


def test_expand_repo_path() -> None:
    assert expand_repo_path("/~/x", "/home/u") == "/home/u/x"
    assert expand_repo_path("~/x", "/home/u") == "/home/u/x"
    assert expand_repo_path("rel/x", "/home/u") == "/home/u/rel/x"
    assert expand_repo_path("/abs", "/home/u") == "/abs"
    assert expand_repo_path("/~root/x", "/home/u") == os.path.join(os.path.expanduser("~root"), "x")


# -- receiving -------------------------------------------------------------------------------------


def test_put_resumes_and_hashes_the_partial_first(annex_env: AnnexEnv, bare: Path) -> None:
    data = os.urandom(300_000)
    key = key_for_content(data, "SHA256E", ".bin")
    peer = _peer(bare)
    tmp = bare / "annex" / "tmp" / str(key)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(data[:100_000])
    inc = peer.put(key, "big.bin")
    assert isinstance(inc, LocalIncoming)
    assert inc.offset == 100_000
    inc.begin(200_000)
    for i in range(100_000, 300_000, 32752):
        inc.write(data[i : min(i + 32752, 300_000)])
    assert inc.finish(True) == Outcome(True)
    assert not tmp.exists()
    peer.close()
    assert annex_env.annex_json(bare, "fsck", "--key", str(key))[0]["success"]


def test_bad_partial_fails_verification_and_is_discarded(bare: Path) -> None:
    data = os.urandom(50_000)
    key = key_for_content(data, "SHA256E", ".bin")
    warnings: list[str] = []
    peer = _peer(bare, warnings)
    tmp = bare / "annex" / "tmp" / str(key)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(b"X" * 10_000)  # not the start of the content
    inc = peer.put(key, None)
    assert not isinstance(inc, AlreadyHave)
    inc.begin(40_000)
    inc.write(data[10_000:])
    assert inc.finish(True) == Outcome(False)
    assert warnings == ["Verification of content failed"]
    assert not tmp.exists()
    assert peer.store.present(key) is None


@pytest.mark.parametrize("valid", [True, False, None])
def test_wrong_content_never_stored(bare: Path, valid: bool | None) -> None:
    data = b"the real content\n"
    key = key_for_content(data, "SHA256E", ".txt")
    peer = _peer(bare)
    inc = peer.put(key, None)
    assert not isinstance(inc, AlreadyHave)
    inc.begin(len(data))
    inc.write(b"the fake content\n")
    assert inc.finish(valid) == Outcome(False)
    assert peer.store.present(key) is None
    assert not list((bare / "annex" / "tmp").iterdir())
    tr = bare / "annex" / "transfer"
    assert not [p for p in tr.rglob("*") if p.is_file() and "failed" not in p.parts]


def test_too_much_data_is_not_written(bare: Path) -> None:
    data = b"twelve bytes"
    key = key_for_content(data, "SHA256E", ".txt")
    peer = _peer(bare)
    inc = peer.put(key, None)
    assert not isinstance(inc, AlreadyHave)
    inc.begin(1_000_000)
    inc.write(b"\0" * 1_000_000)
    assert inc.finish(True) == Outcome(False)
    assert not (bare / "annex" / "tmp" / str(key)).exists()


def test_abort_keeps_partial_and_records_failure(bare: Path) -> None:
    data = os.urandom(64_000)
    key = key_for_content(data, "SHA256E", ".bin")
    peer = _peer(bare)
    inc = peer.put(key, "dir/f.bin")
    assert not isinstance(inc, AlreadyHave)
    inc.begin(len(data))
    inc.write(data[:20_000])
    live = list_transfers(bare / "annex")
    assert [(t.transfer.direction, t.transfer.uuid, t.info.associated_file) for t in live] == [
        (Direction.DOWNLOAD, CLIENT, "dir/f.bin")
    ]
    inc.abort()
    assert (bare / "annex" / "tmp" / str(key)).stat().st_size == 20_000
    assert list_transfers(bare / "annex") == []
    failed = failed_transfers(bare / "annex")
    assert [(t.direction, t.key) for t, _ in failed] == [(Direction.DOWNLOAD, str(key))]
    # the next attempt resumes there, and success clears the failure record
    inc2 = peer.put(key, "dir/f.bin")
    assert not isinstance(inc2, AlreadyHave)
    assert inc2.offset == 20_000
    inc2.begin(len(data) - 20_000)
    inc2.write(data[20_000:])
    assert inc2.finish(True).ok
    assert failed_transfers(bare / "annex") == []


def test_refused_keys(annex_env: AnnexEnv, bare: Path) -> None:
    peer = _peer(bare)
    for text in (
        "SKEIN256E-s1--" + "a" * 64 + ".x",  # git-annex has it, we cannot verify it
        "BLAKE2SP224-s1--" + "a" * 56,  # nor this one (keys.Blake2Parallel says why)
        "SHA256E-s4-S2-C1--" + hashlib.sha256(b"ab").hexdigest(),  # a chunk
    ):
        with pytest.raises(RequestRefused):
            peer.put(parse_key(text), None)
    annex_env.git(bare, "config", "annex.securehashesonly", "true")
    with pytest.raises(RequestRefused, match="securehashesonly"):
        _peer(bare).put(key_for_content(b"m", "MD5E", ".txt"), None)
    with pytest.raises(RequestRefused, match="securehashesonly"):  # not cryptographic
        _peer(bare).put(key_for_content(b"x", "XXH3E", ".txt"), None)
    with pytest.raises(RequestRefused, match="securehashesonly"):  # no program says it is
        _peer(bare).put(parse_key("XFOO-s1--abc"), None)
    assert not isinstance(_peer(bare).put(key_for_content(b"b", "BLAKE3_256E"), None), AlreadyHave)
    annex_env.git(bare, "config", "--unset", "annex.securehashesonly")
    # WORM cannot be verified, but git-annex accepts it (size checked)
    worm = parse_key("WORM-s5-m1700000000--a,32b.txt")
    p2 = _peer(bare)
    inc = p2.put(worm, None)
    assert not isinstance(inc, AlreadyHave)
    inc.begin(5)
    inc.write(b"hello")
    assert inc.finish(None).ok
    # an external backend's key without its program: kept on its size, as git-annex keeps it
    inc = _peer(bare).put(parse_key("XFOO-s3--abc"), None)
    assert not isinstance(inc, AlreadyHave)
    inc.begin(3)
    inc.write(b"abc")
    assert inc.finish(None).ok


def test_transfer_in_progress_elsewhere_is_fatal(bare: Path, tmp_path: Path) -> None:
    data = b"contended\n"
    key = key_for_content(data, "SHA256E", ".txt")
    peer = _peer(bare)
    lock = transfer_paths(bare / "annex", Transfer(Direction.DOWNLOAD, "x", str(key))).lock
    with _held_by_other_process(lock, exclusive=True):
        inc = peer.put(key, None)
        assert not isinstance(inc, AlreadyHave)
        with pytest.raises(PeerFatal, match="transfer already in progress"):
            inc.begin(len(data))


def test_hook_runs_after_content_changes(annex_env: AnnexEnv, bare: Path) -> None:
    log = bare / "hook.log"
    hook = bare / "hooks" / "annex-content"
    hook.write_text(f"#!/bin/sh\necho ran >> {log}\necho noise\n")
    hook.chmod(0o755)
    peer = _peer(bare)
    key = _store(peer, b"hooked\n")
    assert peer.remove(key) == Outcome(True)
    assert log.read_text() == "ran\nran\n"


# -- sending ---------------------------------------------------------------------------------------


def test_get_streams_from_offset_and_records_upload(bare: Path) -> None:
    data = os.urandom(200_000)
    peer = _peer(bare)
    key = _store(peer, data)
    out = peer.get(key, 1000, "f.bin")
    assert out is not None
    assert out.length == 199_000
    buf = bytearray(65536)
    got = bytearray()
    while len(got) < out.length:
        n = out.readinto(memoryview(buf))
        got += buf[:n]
        if len(got) < out.length:  # the record is there from the first block on
            live = list_transfers(bare / "annex")
            assert [(t.transfer.direction, t.transfer.uuid) for t in live] == [
                (Direction.UPLOAD, CLIENT)
            ]
    assert bytes(got) == data[1000:]
    assert out.valid()
    out.close(Outcome(True))
    assert list_transfers(bare / "annex") == []
    assert peer.get(key_for_content(b"absent", "SHA256E", ""), 0, None) is None
    past = peer.get(key, 10**9, None)
    assert past is not None
    assert past.length == 0


def test_small_get_is_recorded_while_the_client_answers(bare: Path) -> None:
    """A body sent in one block gets its upload record once it has left (off the GET->DATA
    path), keeps it until the client's answer, and a failure still lands in failed/."""
    peer = _peer(bare)
    key = _store(peer, b"small\n")
    for ack, failed in ((Outcome(True), False), (Outcome(False), True), (None, True)):
        out = peer.get(key, 0, "s.txt")
        assert out is not None
        buf = bytearray(64)
        assert out.readinto(memoryview(buf)) == 6
        assert list_transfers(bare / "annex") == []
        out.body_sent()
        live = list_transfers(bare / "annex")
        assert [(t.transfer.direction, t.info.associated_file) for t in live] == [
            (Direction.UPLOAD, "s.txt")
        ]
        out.close(ack)
        assert list_transfers(bare / "annex") == []
        failed_file = bare / "annex" / "transfer" / "failed" / "upload" / CLIENT / str(key)
        assert failed_file.exists() == failed
    out = peer.get(key, 0, None)
    assert out is not None
    out.close(None)  # broken before a byte left: still a failed upload on record
    assert (bare / "annex" / "transfer" / "failed" / "upload" / CLIENT / str(key)).exists()


def test_get_notices_replaced_content(bare: Path) -> None:
    peer = _peer(bare)
    key = _store(peer, b"original\n")
    out = peer.get(key, 0, None)
    assert out is not None
    kp = peer.store.present(key)
    assert kp is not None
    kp.dir.chmod(0o755)
    os.unlink(kp.object)
    kp.object.write_bytes(b"original\n")  # same bytes, but a different file: INVALID
    assert not out.valid()
    out.close(None)


# -- locks -----------------------------------------------------------------------------------------


class _held_by_other_process:
    """fcntl lock on `path` held by a child process (POSIX locks never block their own process)."""

    def __init__(self, path: Path, *, exclusive: bool = False) -> None:
        self.path = path
        self.exclusive = exclusive

    def __enter__(self) -> subprocess.Popen[bytes]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        code = textwrap.dedent(
            f"""
            import fcntl, os, sys
            fd = os.open({str(self.path)!r}, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.lockf(fd, fcntl.{"LOCK_EX" if self.exclusive else "LOCK_SH"})
            sys.stdout.write("locked\\n"); sys.stdout.flush()
            sys.stdin.read()
            """
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline() == b"locked\n"
        return self.proc

    def __exit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def test_lockcontent_blocks_git_annex_drop(annex_env: AnnexEnv, nonbare: Path) -> None:
    keys = annex_env.add_files(nonbare, {"l.txt": "keep me\n"})
    key = parse_key(keys["l.txt"])
    peer = _peer(nonbare)
    lock = peer.lock_content(key)
    assert lock is not None
    kp = peer.store.present(key)
    assert kp is not None
    ts = read_retention(kp.rtm)
    assert ts is not None
    assert 590 < ts.seconds - time.time() <= 600
    res = annex_env.annex(nonbare, "drop", "--force", "l.txt", check=False)
    assert res.returncode != 0
    assert "content is locked" in res.stderr + res.stdout
    lock.release()
    assert not kp.rtm.exists()
    assert not kp.rtl.exists()
    assert not kp.lck.exists()
    annex_env.annex(nonbare, "drop", "--force", "l.txt")
    assert peer.store.present(key) is None


def test_unlock_leaves_other_holders_alone(nonbare: Path, annex_env: AnnexEnv) -> None:
    keys = annex_env.add_files(nonbare, {"s.txt": "shared\n"})
    key = parse_key(keys["s.txt"])
    peer = _peer(nonbare)
    kp = peer.store.present(key)
    assert kp is not None
    kp.dir.chmod(0o755)
    with _held_by_other_process(kp.lck):
        lock = peer.lock_content(key)
        assert lock is not None
        lock.release()
        # another process still holds a shared lock: the lock file and our marker stay
        assert kp.lck.exists()
        assert kp.rtm.exists()
    with pytest.raises(ContentLocked):
        lock_for_removal(peer.store, kp)  # the marker is still in the future


def test_remove_refused_while_git_annex_style_lock_held(annex_env: AnnexEnv, nonbare: Path) -> None:
    keys = annex_env.add_files(nonbare, {"r.txt": "locked elsewhere\n"})
    key = parse_key(keys["r.txt"])
    peer = _peer(nonbare)
    kp = peer.store.present(key)
    assert kp is not None
    kp.dir.chmod(0o755)
    with _held_by_other_process(kp.lck), pytest.raises(PeerFatal, match="content is locked"):
        peer.remove(key)
    assert peer.store.present(key) is not None
    # an expired marker does not block, and is cleaned up
    kp.rtm.write_text("1000000000s")
    assert peer.remove(key, before=0) == Outcome(False)  # REMOVE-BEFORE in the past
    assert peer.remove(key) == Outcome(True)
    assert peer.store.present(key) is None
    assert not kp.dir.exists()
    peer.close()
    assert annex_env.annex_json(nonbare, "whereis", "r.txt", check=False)[0]["whereis"] == []


def test_lock_pool_arbitrates_inside_the_process(tmp_path: Path) -> None:
    f = tmp_path / "x.lck"
    a = POOL.try_shared(f)
    b = POOL.try_shared(f)
    assert a is not None
    assert b is not None
    assert POOL.try_exclusive(f) is None  # fcntl alone would allow it in one process
    a.release()
    assert POOL.try_exclusive(f) is None
    b.release()
    c = POOL.try_exclusive(f)
    assert c is not None
    assert POOL.try_shared(f) is None
    c.release()


# -- transfer records ------------------------------------------------------------------------------


def test_transfer_info_format_round_trips_captured_files() -> None:
    text = (EXAMPLES / "transfer-info-files.txt").read_text()
    assert "1795547039.662082129s 458528$" in text
    for raw in (
        b"1795547039.662082129s 458528\nmid.bin\n",
        b"1795547010.323939302s\nbig2.bin\n",
        b"1795546936.436880907s\n\n",
    ):
        info = parse_transfer_info(raw)
        assert info is not None
        assert format_transfer_info(info) == raw


def test_progress_is_written_per_one_percent(tmp_path: Path) -> None:
    annexdir = tmp_path / "annex"
    key = "SHA256E-s10000--" + "0" * 64
    rec = TransferRecorder.start(
        annexdir, Transfer(Direction.UPLOAD, CLIENT, key), associated_file="a b.txt"
    )
    assert rec is not None
    info = annexdir / "transfer" / "upload" / CLIENT / key
    first = parse_transfer_info(info.read_bytes())
    assert first is not None
    assert first.bytes_done is None
    assert first.associated_file == "a b.txt"
    rec.progress(50)  # < 1 % since the last report: not written
    assert parse_transfer_info(info.read_bytes()) == first
    rec.progress(200)
    again = parse_transfer_info(info.read_bytes())
    assert again == TransferInfo(first.started, 200, "a b.txt")
    # progress is rewritten in place (no truncate-to-zero: ext4 flushes such a file on close),
    # and a longer file found there is cut to the new record
    inode = info.stat().st_ino
    info.write_bytes(info.read_bytes() + b"x" * 100)
    rec.progress(400)
    assert info.stat().st_ino == inode
    assert info.read_bytes() == format_transfer_info(TransferInfo(first.started, 400, "a b.txt"))
    assert (annexdir / "transfer" / "upload" / CLIENT / f"lck.{key}").exists()
    # a second writer of the same upload is "already in progress" -- unless it ignores locks
    assert TransferRecorder.start(annexdir, Transfer(Direction.UPLOAD, CLIENT, key)) is None
    rec.finish(True)
    assert not info.exists()
    assert list((annexdir / "transfer" / "upload" / CLIENT).iterdir()) == []


@pytest.fixture(autouse=True)
def _no_lock_leaks() -> Iterator[None]:
    yield
    assert POOL._held == {}, "a test leaked pooled locks"


# -- annex.diskreserve ---------------------------------------------------------------------------


def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_put_refused_when_it_would_eat_into_the_disk_reserve(bare: Path) -> None:
    """checkDiskSpace: size + annex.diskreserve must fit in the free space; the refusal comes
    before any data, and nothing is left in annex/tmp. (Margins of 1 GB: other tests write to
    the same disk meanwhile.)"""
    data = os.urandom(50_000)
    key = key_for_content(data, "SHA256E", ".bin")
    free = _free(bare)
    if free < 4 * GB:
        pytest.skip("needs a few GB free to leave margins")
    _set_reserve(bare, free + GB)
    with pytest.raises(RequestRefused, match=r"not enough free space, need \d[\d.]* [kMG]B more"):
        _peer(bare).put(key, "f.bin")
    assert not any((bare / "annex").rglob("*.bin"))
    _set_reserve(bare, free - GB)  # leaves room: accepted
    _store(_peer(bare), data)


def test_disk_reserve_counts_other_downloads_and_resumed_bytes(bare: Path) -> None:
    """Bytes other live downloads still have to write count as used (sizeOfDownloadsInProgress),
    so a second upload is refused while a big one runs, and accepted once it ended."""
    free = _free(bare)
    if free < 4 * GB:
        pytest.skip("needs a few GB free to leave margins")
    big = parse_key(f"SHA256E-s{2 * GB}--" + "a" * 64 + ".bin")
    data = os.urandom(40_000)
    key = key_for_content(data, "SHA256E", ".bin")
    peer = _peer(bare)
    other = peer.put(big, "other.bin")  # a 2 GB download of another key, just started
    assert not isinstance(other, AlreadyHave)
    other.begin(2 * GB)
    other.write(b"x" * 10_000)
    _set_reserve(bare, free - GB)  # room for our 40 kB, not for the other's ~2 GB as well
    with pytest.raises(RequestRefused, match="not enough free space"):
        _peer(bare).put(key, "f.bin")
    other.abort()
    inc = _peer(bare).put(key, "f.bin")  # the other download ended: enough room now
    assert not isinstance(inc, AlreadyHave)
    inc.abort()


GB = 1_000_000_000


def _set_reserve(repo: Path, n: int) -> None:
    subprocess.run(["git", "-C", str(repo), "config", "annex.diskreserve", str(n)], check=True)


def test_disk_reserve_parsing() -> None:
    assert disk_reserve(None) == 100_000_000
    assert disk_reserve("1 GB") == 1_000_000_000
    assert disk_reserve("0") == 0
    assert disk_reserve("lots") == 100_000_000  # unparsable: git-annex's default
