"""The real git-annex client against annextui-shell, over a real OpenSSH sshd on 127.0.0.1.

The client's remote `gw` has `remote.gw.annex-shell=annextui-shell`, so every content request
runs our shell on the "server" side of the session's sshd. Every operation is checked on both
sides: the object (present, verified by a real `git annex fsck` in the served repository), the
location logs (the client's view of the remote and the server's own branch), and the shell's
leftovers (no temp files, no transfer records of finished transfers).

`git annex sync` goes through an alias whose key has an sshd forced command
(`annextui-shell -c "$SSH_ORIGINAL_COMMAND"`), so git's own traffic passes through the shell too.
"""

from __future__ import annotations

import inspect
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import MethodType
from typing import Any

import pytest

from annextui.proxycore.transfers import Direction, LiveTransfer, list_transfers
from tests.support import annex as annex_support
from tests.support import procs
from tests.support.annex import AnnexEnv
from tests.support.lostcopy import lose_copy_mid_remove, unlog_copy_mid_store
from tests.support.sshd import Sshd

pytestmark = [pytest.mark.ssh, pytest.mark.slow]

SRV_UUID = "5e4d0000-0000-4000-8000-00000000a001"
CL_UUID = "c1c10000-0000-4000-8000-00000000c001"
SHELL = "annextui-shell"
FORCED = 'annextui-shell -c "$SSH_ORIGINAL_COMMAND"'


# -- an sshd key with a forced command -------------------------------------------------------------


def add_forced_host(sshd: Sshd, alias: str, command: str) -> None:
    """Host alias whose key runs `command` (sshd forced command) instead of what was asked.

    tests/support/sshd.py has no `command=` key option (yet); this wraps the instance's
    authorized_keys writer to add it for our keys only.
    """
    if "command" in inspect.signature(sshd.add_host).parameters:  # pragma: no cover - future
        sshd.add_host(alias, command=command)  # type: ignore[call-arg]
        return
    forced: dict[str, str] = sshd.__dict__.setdefault("_annextui_forced", {})
    if "_annextui_orig_writer" not in sshd.__dict__:
        orig = sshd._write_authorized_keys
        sshd.__dict__["_annextui_orig_writer"] = orig

        def writer(self: Sshd) -> None:
            orig()
            lines = self.authorized_keys.read_text().splitlines()
            out = []
            for line in lines:
                for pub, cmd in self.__dict__["_annextui_forced"].items():
                    if line.endswith(pub):
                        esc = cmd.replace("\\", "\\\\").replace('"', '\\"')
                        line = f'command="{esc}",{line}'
                out.append(line)
            self.authorized_keys.write_text("\n".join(out) + "\n")

        sshd._write_authorized_keys = MethodType(writer, sshd)  # type: ignore[method-assign]
    host = sshd.add_host(alias, {"ANNEXTUI_FORCED_ALIAS": alias})
    pub = host.identity.with_name(host.identity.name + ".pub").read_text().strip()
    forced[pub] = command
    sshd._write_authorized_keys()


# -- the world: one served repository, one client --------------------------------------------------


@dataclass
class World:
    env: AnnexEnv
    sshd: Sshd
    srv: Path
    cl: Path
    keys: dict[str, str] = field(default_factory=dict)

    def annex(self, repo: Path, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.env.annex(repo, *args, **kw)

    def cl_json(self, *args: str, **kw: Any) -> list[dict[str, Any]]:
        return self.env.annex_json(self.cl, *args, **kw)

    def srv_json(self, *args: str, **kw: Any) -> list[dict[str, Any]]:
        return self.env.annex_json(self.srv, *args, **kw)

    def object_path(self, key: str) -> Path | None:
        hits = list((self.srv / "annex" / "objects").glob(f"*/*/{key}/{key}"))
        return hits[0] if hits else None

    def add(self, files: dict[str, bytes]) -> dict[str, str]:
        keys = self.env.add_files(self.cl, files)
        self.keys.update(keys)
        return keys

    def srv_whereis(self, key: str) -> set[str]:
        recs = self.srv_json("whereis", "--key", key, check=False)
        return {w["uuid"] for r in recs for w in r.get("whereis", [])}

    def cl_whereis(self, file: str) -> set[str]:
        recs = self.cl_json("whereis", file, check=False)
        return {w["uuid"] for r in recs for w in r.get("whereis", [])}

    def srv_fsck_clean(self, key: str) -> None:
        """A real `git annex fsck` of the key in the served repository: verified, nothing fixed."""
        res = self.annex(self.srv, "fsck", "--key", key)
        out = res.stdout + res.stderr
        assert re.search(r"\(checksum\.\.\.\) ok", out), out
        assert "fixing" not in out, out
        assert "**" not in out, out  # git-annex's warnings (location log disagrees, ...)

    def leftovers(self) -> list[str]:
        """Files our shell must not leave behind once transfers are over."""
        annex = self.srv / "annex"
        out = [str(p) for p in (annex / "tmp").glob("*") if p.is_file()]
        for d in ("upload", "download"):
            out += [str(p) for p in (annex / "transfer" / d).rglob("*") if p.is_file()]
        return out


def _shell_processes(root: Path) -> list[procs.ProcInfo]:
    return procs.serving(str(root))


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, git_annex_bin: Path, sshd: Sshd
) -> Iterator[World]:
    with annex_support.ssh_world(tmp_path_factory, "shellworld", git_annex_bin, sshd) as (
        root,
        env,
    ):
        sshd.add_host("gw")
        forced_log = root / "forced.log"
        add_forced_host(sshd, "gwforced", f'echo "$SSH_ORIGINAL_COMMAND" >> {forced_log}; {FORCED}')
        srv = env.make_annex_repo("srv.git", SRV_UUID, "served", bare=True)
        cl = env.clone(
            f"ssh://gw{srv}",
            "cl",
            uuid=CL_UUID,
            description="client",
            origin="gw",
            annex_init=False,
        )
        env.git(cl, "config", "remote.gw.annex-shell", SHELL)
        env.annex(cl, "init", "-q", "client")
        yield World(env, sshd, srv, cl)


# -- the operations --------------------------------------------------------------------------------


def test_configlist_learns_uuid_through_our_shell(world: World) -> None:
    assert world.env.git(world.cl, "config", "remote.gw.annex-uuid") == SRV_UUID


def test_copy_to(world: World) -> None:
    keys = world.add({f"copy/{i}.txt": f"copy {i}\n".encode() for i in range(5)})
    keys |= world.add({"copy/big.bin": os.urandom(3 * 1024 * 1024 + 17)})
    world.annex(world.cl, "copy", "--to", "gw", "copy")
    for f, k in keys.items():
        obj = world.object_path(k)
        assert obj is not None, f
        assert obj.read_bytes() == (world.cl / f).read_bytes()
        assert oct(obj.stat().st_mode & 0o777) == "0o444"
        assert oct(obj.parent.stat().st_mode & 0o777) == "0o555"
        assert SRV_UUID in world.cl_whereis(f)
        assert world.srv_whereis(k) == {SRV_UUID, CL_UUID} or SRV_UUID in world.srv_whereis(k)
        world.srv_fsck_clean(k)
    # the server's own branch (committed by our shell at exit) records its copy
    log = world.env.git(world.srv, "show", f"git-annex:{_loc(keys['copy/big.bin'])}")
    assert re.search(rf"^\d+(\.\d+)?s 1 {SRV_UUID}$", log, re.M), log
    assert world.leftovers() == []
    assert not (world.srv / "annex" / "journal").exists() or not any(
        (world.srv / "annex" / "journal").iterdir()
    )


@pytest.mark.parametrize(
    "backend", ["BLAKE3_256E", "XXH3", "BLAKE2S256E", "BLAKE2BP512E", "BLAKE2SP256"]
)
def test_copy_keys_of_newer_backends(world: World, backend: str) -> None:
    """Keys of the backends git-annex 10.20261026 offers beyond SHA (BLAKE3, XXH3): verified on
    arrival through annextui-shell, and a real fsck in the served repository agrees."""
    name = f"backends/{backend}.bin"
    path = world.cl / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(os.urandom(300_000))
    world.annex(world.cl, "add", "-q", f"--backend={backend}", name)
    world.env.git(world.cl, "commit", "-q", "-m", backend)
    key = world.annex(world.cl, "lookupkey", name).stdout.strip()
    assert key.startswith(f"{backend}-s300000--"), key
    world.annex(world.cl, "copy", "-q", "--to", "gw", name)
    obj = world.object_path(key)
    assert obj is not None
    assert obj.read_bytes() == path.read_bytes()
    world.srv_fsck_clean(key)
    world.annex(world.cl, "drop", "-q", "--force", name)
    world.annex(world.cl, "get", "-q", "--from", "gw", name)
    world.annex(world.cl, "fsck", "-q", name)


def test_copy_to_a_repository_short_of_its_disk_reserve(world: World) -> None:
    """annex.diskreserve of the served repository: the real client's copy fails with our
    message, before any byte moved; the connection stays usable and, with the reserve lifted,
    the same copy succeeds."""
    keys = world.add({"reserve/a.bin": os.urandom(200_000)})
    (key,) = keys.values()
    world.env.git(world.srv, "config", "annex.diskreserve", "1000 petabytes")
    try:
        res = world.annex(world.cl, "copy", "--to", "gw", "reserve", check=False)
        assert res.returncode != 0
        assert "not enough free space" in res.stdout + res.stderr, res
        assert world.object_path(key) is None
        assert world.leftovers() == []
        assert SRV_UUID not in world.cl_whereis("reserve/a.bin")
    finally:
        world.env.git(world.srv, "config", "--unset", "annex.diskreserve")
    world.annex(world.cl, "copy", "--to", "gw", "reserve")
    assert world.object_path(key) is not None
    world.srv_fsck_clean(key)


def _loc(key: str) -> str:
    from annextui.backend.keys import location_log_path

    return location_log_path(key)


def test_get_from(world: World) -> None:
    keys = world.add({"get/a.txt": b"alpha\n", "get/b.bin": os.urandom(2_000_001)})
    world.annex(world.cl, "copy", "--to", "gw", "get")
    world.annex(world.cl, "drop", "get")
    assert all(not (world.cl / f).exists() for f in keys)  # broken symlinks once dropped
    world.annex(world.cl, "get", "--from", "gw", "get")
    for f, k in keys.items():
        assert (world.cl / f).read_bytes() == world.object_path(k).read_bytes()  # type: ignore[union-attr]
        recs = world.cl_json("fsck", f)
        assert all(r["success"] for r in recs)
        assert CL_UUID in world.cl_whereis(f)
    assert world.leftovers() == []


def test_drop_from_and_whereis(world: World) -> None:
    keys = world.add({"drop/x.txt": b"to be dropped\n"})
    ((f, k),) = keys.items()
    world.annex(world.cl, "copy", "--to", "gw", f)
    recs = world.cl_json("whereis", f)
    assert {w["uuid"] for w in recs[0]["whereis"]} == {CL_UUID, SRV_UUID}
    world.annex(world.cl, "drop", "--from", "gw", f)
    assert world.object_path(k) is None
    assert not list((world.srv / "annex" / "objects").glob(f"*/*/{k}"))  # key dir removed too
    assert world.cl_whereis(f) == {CL_UUID}
    assert SRV_UUID not in world.srv_whereis(k)
    log = world.env.git(world.srv, "show", f"git-annex:{_loc(k)}")
    assert re.search(rf"^\d+(\.\d+)?s 0 {SRV_UUID}$", log, re.M), log


def test_drop_from_a_copy_lost_mid_remove(world: World) -> None:
    """The served repository's object is gone but its own log still says "present" (a removal
    killed between the two): the client's drop succeeds, as with git-annex-shell, and the
    served repository's own log is corrected (git-annex-shell would leave the phantom)."""
    keys = world.add({"lost/l.txt": b"lost in the middle of a removal\n"})
    ((f, k),) = keys.items()
    world.annex(world.cl, "copy", "--to", "gw", f)
    lose_copy_mid_remove(world.srv, k)
    assert SRV_UUID in world.srv_whereis(k)
    world.annex(world.cl, "drop", "--from", "gw", f)
    assert world.cl_whereis(f) == {CL_UUID}
    assert SRV_UUID not in world.srv_whereis(k)
    assert world.leftovers() == []


def test_copy_to_a_copy_stored_but_unlogged(world: World) -> None:
    """The served repository holds the object but its own log says "missing" (a store killed
    between moving the object in and logging it; the client never got SUCCESS, so it did not
    log the copy either): the client's `copy --fast` (trusting its log, so no CHECKPRESENT
    first, as a cluster gateway's PUT to its nodes) is answered ALREADY-HAVE, as by
    git-annex-shell, and the served repository's own log counts the copy again
    (git-annex-shell's would not)."""
    keys = world.add({"unlogged/u.txt": b"stored, then killed before its log line\n"})
    ((f, k),) = keys.items()
    world.annex(world.cl, "copy", "--to", "gw", f)
    unlog_copy_mid_store(world.env, world.srv, k)
    world.annex(world.cl, "setpresentkey", k, SRV_UUID, "0")
    assert SRV_UUID not in world.srv_whereis(k)
    world.annex(world.cl, "copy", "--fast", "--to", "gw", f)
    assert world.cl_whereis(f) == {CL_UUID, SRV_UUID}
    assert SRV_UUID in world.srv_whereis(k)
    assert world.leftovers() == []


def test_move_both_ways(world: World) -> None:
    keys = world.add({"move/m.bin": os.urandom(700_000)})
    ((f, k),) = keys.items()
    data = (world.cl / f).read_bytes()
    world.annex(world.cl, "move", "--to", "gw", f)
    assert world.object_path(k) is not None
    assert world.cl_whereis(f) == {SRV_UUID}
    world.srv_fsck_clean(k)
    world.annex(world.cl, "move", "--from", "gw", f)
    assert (world.cl / f).read_bytes() == data
    assert world.object_path(k) is None
    assert world.cl_whereis(f) == {CL_UUID}


def test_fsck_from(world: World) -> None:
    keys = world.add({"fsck/ok.txt": b"fine\n", "fsck/bad.txt": b"will be corrupted\n"})
    world.annex(world.cl, "copy", "--to", "gw", "fsck")
    recs = world.cl_json("fsck", "--from", "gw", "fsck")
    assert all(r["success"] for r in recs), recs
    # corrupt the served object: fsck --from must notice it through our shell
    bad = world.object_path(keys["fsck/bad.txt"])
    assert bad is not None
    bad.parent.chmod(0o755)
    bad.chmod(0o644)
    bad.write_bytes(b"will be CORRUPTED\n")
    recs = world.cl_json("fsck", "--from", "gw", "fsck/bad.txt", check=False)
    assert recs, recs
    assert not recs[0]["success"], recs
    world.srv_json("fsck", "--key", keys["fsck/bad.txt"], check=False)  # moves it to annex/bad


def test_sync_through_forced_command(world: World) -> None:
    """git traffic (upload-pack, receive-pack) and annex traffic both through annextui-shell."""
    env = world.env
    remote = "forced"
    env.git(world.cl, "remote", "add", remote, f"ssh://gwforced{world.srv}")
    # no annex-shell config: the client asks for git-annex-shell; the forced command runs ours
    world.add({"sync/s.txt": b"synced\n"})
    res = env.annex(world.cl, "sync", "--content", remote)
    assert "failed" not in res.stdout, res.stdout + res.stderr
    # the pushed branch and the content arrived
    assert env.git(world.srv, "rev-parse", "main") == env.git(world.cl, "rev-parse", "main")
    k = world.keys["sync/s.txt"]
    assert world.object_path(k) is not None
    world.srv_fsck_clean(k)
    # the client merged the server's git-annex branch, fetched through our shell too
    assert env.git(world.cl, "config", f"remote.{remote}.annex-uuid") == SRV_UUID
    log = env.git(world.cl, "show", f"{remote}/git-annex:{_loc(k)}")
    assert SRV_UUID in log
    # and every one of those went through the forced command, i.e. annextui-shell
    asked = (world.env.root / "forced.log").read_text().splitlines()
    assert any(a.startswith("git-upload-pack ") for a in asked), asked
    assert any(a.startswith("git-receive-pack ") for a in asked), asked
    assert any(a.startswith("git-annex-shell 'p2pstdio'") for a in asked), asked


def test_forced_command_limited_blocks_git(world: World, tmp_path: Path) -> None:
    sshd = world.sshd
    add_forced_host(
        sshd,
        "gwlimited",
        f"GIT_ANNEX_SHELL_LIMITED=1 GIT_ANNEX_SHELL_DIRECTORY={world.srv} {FORCED}",
    )
    res = world.env.run(["git", "ls-remote", f"ssh://gwlimited{world.srv}"], check=False)
    assert res.returncode != 0
    assert "Action blocked by GIT_ANNEX_SHELL_LIMITED" in res.stderr
    res = world.env.run(
        ["ssh", "gwlimited", f"git-annex-shell 'configlist' '{world.srv}'"], check=False
    )
    assert res.stdout == f"annex.uuid={SRV_UUID}\ncore.gcrypt-id=\n"
    res = world.env.run(["ssh", "gwlimited", "git-annex-shell 'configlist' '/etc'"], check=False)
    assert res.returncode == 1
    assert f"Only allowed to access {world.srv} not /etc" in res.stderr


# -- locking ---------------------------------------------------------------------------------------


class Session:
    """A raw p2pstdio session through ssh, driven line by line."""

    def __init__(self, world: World, *extra: str) -> None:
        cmd = f"{SHELL} 'p2pstdio' '{world.srv}' '{CL_UUID}' --uuid {SRV_UUID}"
        self.proc = subprocess.Popen(
            ["ssh", "-T", "gw", cmd],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=world.env.env,
            start_new_session=True,
        )
        assert self.readline().startswith("AUTH-SUCCESS ")

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def readline(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().decode().rstrip("\n")

    def close(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(timeout=30)


def test_lockcontent_blocks_a_real_drop(world: World) -> None:
    keys = world.add({"lock/l.txt": b"keep me\n"})
    ((f, k),) = keys.items()
    world.annex(world.cl, "copy", "--to", "gw", f)
    # a non-bare view of the same content: a clone of the served repo holding the key
    s = Session(world)
    s.send("VERSION 4")
    assert s.readline() == "VERSION 4"
    s.send(f"LOCKCONTENT {k}")
    assert s.readline() == "SUCCESS"
    obj = world.object_path(k)
    assert obj is not None
    assert (obj.parent / (k + ".lck")).exists()
    rtm = obj.parent / (k + ".rtm")
    assert rtm.exists()
    assert float(rtm.read_text().rstrip("s")) > time.time() + 500
    res = world.annex(world.srv, "drop", "--force", "--key", k, check=False)
    assert res.returncode != 0
    assert "content is locked" in res.stderr + res.stdout
    assert world.object_path(k) is not None
    s.send("UNLOCKCONTENT")
    s.send(f"CHECKPRESENT {k}")  # a reply proves the unlock was processed
    assert s.readline() == "SUCCESS"
    assert not rtm.exists()
    world.annex(world.srv, "drop", "--force", "--key", k)
    assert world.object_path(k) is None
    assert s.close() == 0


def test_lock_survives_hangup_only_as_orderly_unlock(world: World) -> None:
    keys = world.add({"lock/h.txt": b"hang up\n"})
    ((f, k),) = keys.items()
    world.annex(world.cl, "copy", "--to", "gw", f)
    s = Session(world)
    s.send("VERSION 4")
    s.readline()
    s.send(f"LOCKCONTENT {k}")
    assert s.readline() == "SUCCESS"
    assert s.close() == 0  # EOF while locked: an orderly unlock
    world.annex(world.srv, "drop", "--force", "--key", k)


def test_killed_server_keeps_retention(world: World) -> None:
    keys = world.add({"lock/k.txt": b"killed\n"})
    ((f, k),) = keys.items()
    world.annex(world.cl, "copy", "--to", "gw", f)
    s = Session(world)
    s.send("VERSION 4")
    s.readline()
    s.send(f"LOCKCONTENT {k}")
    assert s.readline() == "SUCCESS"
    shells = [p for p in _shell_processes(world.srv) if "python" in p.cmdline or SHELL in p.cmdline]
    assert shells
    # The shell itself first: were its parent (sh, sshd's session) killed first, the shell
    # could see its stdin close and unlock in an orderly way before its own SIGKILL lands.
    inner = [p.pid for p in shells if "python" in p.cmdline] or [p.pid for p in shells]
    procs.kill_pids(inner, sig=signal.SIGKILL)  # no orderly unlock
    procs.kill_pids([p.pid for p in shells], sig=signal.SIGKILL)
    s.proc.wait(timeout=30)
    # the marker outlives the process: a drop within 600 s is refused
    res = world.annex(world.srv, "drop", "--force", "--key", k, check=False)
    assert res.returncode != 0
    assert "content is locked" in res.stderr + res.stdout
    obj = world.object_path(k)
    assert obj is not None
    (obj.parent / (k + ".rtm")).unlink()  # expire it by hand
    world.annex(world.srv, "drop", "--force", "--key", k)


# -- resume ----------------------------------------------------------------------------------------

BIG = 96 * 1024 * 1024


def _kill_when(
    proc: subprocess.Popen[bytes],
    path: Path,
    threshold: int,
    timeout: float,
    watch: dict[Path, list[LiveTransfer]] | None = None,
) -> int:
    """SIGKILL the client's process group once `path` holds `threshold` bytes.

    Meanwhile the live transfers in each annex directory of `watch` are collected (read with
    our reader, whoever wrote them).
    """
    deadline = time.monotonic() + timeout
    size = 0
    while time.monotonic() < deadline and proc.poll() is None:
        for annexdir, seen in (watch or {}).items():
            seen.extend(list_transfers(annexdir))
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size >= threshold:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return size
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    raise AssertionError(f"transfer finished or stalled before {threshold} bytes (at {size})")


def _popen_annex(world: World, *args: str) -> subprocess.Popen[bytes]:
    env = dict(world.env.env)
    env["GIT_ANNEX_BWLIMIT"] = ""  # no-op; keeps env explicit
    return subprocess.Popen(
        ["git", "annex", *args],
        cwd=world.cl,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _wait_shell_gone(world: World, timeout: float = 20) -> None:
    procs.wait_none_serving(str(world.srv), timeout)


def test_upload_resumes_from_partial(world: World) -> None:
    world.env.git(world.cl, "config", "remote.gw.annex-bwlimit", "40MiB")
    try:
        keys = world.add({"resume/up.bin": os.urandom(BIG)})
        ((f, k),) = keys.items()
        tmp = world.srv / "annex" / "tmp" / k
        proc = _popen_annex(world, "copy", "--to", "gw", f)
        watch: dict[Path, list[LiveTransfer]] = {
            world.srv / "annex": [],
            world.cl / ".git" / "annex": [],
        }
        partial = _kill_when(proc, tmp, BIG // 3, timeout=120, watch=watch)
        # while it ran: our shell's record (download from the client) and git-annex's own
        # (upload to the server), both read by our reader
        ours = watch[world.srv / "annex"]
        theirs = watch[world.cl / ".git" / "annex"]
        assert ours
        assert theirs
        assert {(t.transfer.direction, t.transfer.uuid, t.info.associated_file) for t in ours} == {
            (Direction.DOWNLOAD, CL_UUID, f)
        }
        assert all(t.pid and t.total == BIG for t in ours)
        assert {(t.transfer.direction, t.transfer.uuid) for t in theirs} == {
            (Direction.UPLOAD, SRV_UUID)
        }
        assert max(t.bytes_done or 0 for t in ours) > 0
        _wait_shell_gone(world)
        kept = tmp.stat().st_size
        assert partial <= kept < BIG
        res = world.annex(world.cl, "copy", "--to", "gw", "--debug", f)
        m = re.search(r"P2P < PUT-FROM (\d+)", res.stderr)
        assert m, res.stderr[-3000:]
        assert int(m.group(1)) == kept
        assert not tmp.exists()
        world.srv_fsck_clean(k)
        assert world.object_path(k).read_bytes() == (world.cl / f).read_bytes()  # type: ignore[union-attr]
        assert world.leftovers() == []
    finally:
        world.env.git(world.cl, "config", "--unset", "remote.gw.annex-bwlimit", check=False)


def test_download_resumes_from_partial(world: World) -> None:
    world.env.git(world.cl, "config", "remote.gw.annex-bwlimit", "40MiB")
    try:
        keys = world.add({"resume/down.bin": os.urandom(BIG)})
        ((f, k),) = keys.items()
        data = (world.cl / f).read_bytes()
        world.annex(world.cl, "copy", "--to", "gw", f)
        world.annex(world.cl, "drop", f)
        tmp = world.cl / ".git" / "annex" / "tmp" / k
        proc = _popen_annex(world, "get", "--from", "gw", f)
        watch: dict[Path, list[LiveTransfer]] = {
            world.srv / "annex": [],
            world.cl / ".git" / "annex": [],
        }
        _kill_when(proc, tmp, BIG // 3, timeout=120, watch=watch)
        ours = watch[world.srv / "annex"]
        theirs = watch[world.cl / ".git" / "annex"]
        assert {(t.transfer.direction, t.transfer.uuid) for t in ours} == {
            (Direction.UPLOAD, CL_UUID)
        }
        assert {(t.transfer.direction, t.transfer.uuid) for t in theirs} == {
            (Direction.DOWNLOAD, SRV_UUID)
        }
        # git-annex writes no byte count for small steps; the reader falls back to annex/tmp
        assert max(t.bytes_done or 0 for t in theirs) > 0
        _wait_shell_gone(world)
        kept = tmp.stat().st_size
        assert 0 < kept < BIG
        res = world.annex(world.cl, "get", "--from", "gw", "--debug", f)
        m = re.search(r"P2P > GET (\d+) ", res.stderr)
        assert m, res.stderr[-3000:]
        assert int(m.group(1)) == kept
        assert (world.cl / f).read_bytes() == data
        assert all(r["success"] for r in world.cl_json("fsck", f))
        assert world.leftovers() == []
    finally:
        world.env.git(world.cl, "config", "--unset", "remote.gw.annex-bwlimit", check=False)
