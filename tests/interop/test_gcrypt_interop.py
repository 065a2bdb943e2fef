"""Encrypted gcrypt remotes over ssh, served by annextui-shell: the legacy commands.

A `type=gcrypt` remote on an ssh server is the one place where current git-annex clients still
use git-annex-shell's legacy commands: `gcryptsetup` when the remote is created, then
`recvkey`/`sendkey` (rsync in server mode), `inannex` and `dropkey` for its encrypted content.
The server's key has an sshd forced command (`SHELL -c "$SSH_ORIGINAL_COMMAND"`), as a gateway
admin would set it up, so nothing but the shell runs there: had the shell refused
`gcryptsetup`, the client's fallback (plain rsync over ssh) would be refused too.

Each scenario runs twice, with git-annex's own shell and with ours, and the server-side
outcomes (the encrypted objects stored, the repository's gcrypt config) must agree.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import annex as annex_support
from tests.support.annex import AnnexEnv
from tests.support.sshd import Sshd

pytestmark = [pytest.mark.ssh, pytest.mark.slow]

SHELLS = ("git-annex-shell", "annextui-shell")


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is required in CI but missing", pytrace=False)
        pytest.skip(f"{tool} not available")


@dataclass
class GcryptWorld:
    env: AnnexEnv
    root: Path
    keyid: str


def _gpg_key(env: AnnexEnv, home: Path) -> str:
    """A passphrase-less ed25519/cv25519 key in a private GNUPGHOME (fast to generate)."""
    home.mkdir(mode=0o700)
    env.env["GNUPGHOME"] = str(home)
    env.run(
        [
            "gpg",
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-generate-key",
            "annextui test <test@annextui.invalid>",
            "future-default",
            "default",
            "never",
        ]
    )
    out = env.run(["gpg", "--batch", "--with-colons", "--list-secret-keys"]).stdout
    return next(line.split(":")[4] for line in out.splitlines() if line.startswith("sec:"))


@pytest.fixture(scope="module")
def gworld(
    tmp_path_factory: pytest.TempPathFactory, git_annex_bin: Path, sshd: Sshd
) -> Iterator[GcryptWorld]:
    for tool in ("git-remote-gcrypt", "rsync", "gpg"):
        _need(tool)
    with annex_support.ssh_world(tmp_path_factory, "gcrypt", git_annex_bin, sshd) as (root, env):
        keyid = _gpg_key(env, root / "gnupg")
        for shell in SHELLS:
            sshd.add_host(f"gcrypt-{shell}", command=f'{shell} -c "$SSH_ORIGINAL_COMMAND"')
        try:
            yield GcryptWorld(env, root, keyid)
        finally:  # gpg left an agent running for this GNUPGHOME
            env.run(["gpgconf", "--kill", "all"], check=False)


def objects(repo: Path) -> dict[str, Path]:
    return {p.name: p for p in (repo / "annex" / "objects").rglob("*") if p.is_file()}


def leftovers(repo: Path) -> list[Path]:
    annex = repo / "annex"
    found = [p for p in (annex / "tmp").glob("*")] if (annex / "tmp").is_dir() else []
    for d in ("upload", "download"):
        found += [p for p in (annex / "transfer" / d).rglob("*") if p.is_file()]
    return found


def remote_uuid(env: AnnexEnv, cl: Path, name: str) -> str:
    return env.git(cl, "config", f"remote.{name}.annex-uuid").strip()


def client_whereis(env: AnnexEnv, cl: Path) -> dict[str, set[str]]:
    recs = env.annex_json(cl, "whereis", ".", check=False)
    return {r["file"]: {w["uuid"] for w in r.get("whereis", [])} for r in recs}


@pytest.mark.parametrize("shell", SHELLS)
def test_gcrypt_remote_round_trip(gworld: GcryptWorld, shell: str) -> None:
    env, root = gworld.env, gworld.root
    server = root / f"srv-{shell}.git"
    env.run(["git", "init", "-q", "--bare", str(server)])
    cl = env.make_annex_repo(root / f"cl-{shell}")
    files = {"a.bin": os.urandom(3 << 20), "sub/b.txt": b"small file\n"}
    env.add_files(cl, files)
    # initremote: git-remote-gcrypt pushes through the shell's git passthrough, then git-annex
    # asks the shell to `gcryptsetup` the repository (no fallback: plain rsync is refused)
    env.annex(
        cl,
        "initremote",
        "enc",
        "type=gcrypt",
        f"gitrepo=ssh://gcrypt-{shell}{server}",
        f"keyid={gworld.keyid}",
    )
    gid = env.git(server, "config", "core.gcrypt-id").strip()
    assert gid.startswith(":id:")
    assert env.git(server, "config", "--bool", "receive.denyNonFastForwards").strip() == "false"
    assert env.git(server, "config", "--get", "annex.uuid", check=False).strip() == ""
    enc = remote_uuid(env, cl, "enc")

    env.annex(cl, "copy", "--to", "enc", ".")  # inannex, then recvkey (rsync) per file
    stored = objects(server)
    assert len(stored) == len(files)
    for name, path in stored.items():
        assert name.startswith("GPGHMACSHA1--")  # encrypted: the server never sees our keys
        rel = path.relative_to(server / "annex" / "objects").parts
        assert len(rel) == 4
        assert rel[2] == rel[3] == name
        assert all(c in "0123456789abcdef" for c in rel[0] + rel[1])
        assert not path.stat().st_mode & 0o222  # frozen
    assert sum(p.stat().st_size for p in stored.values()) > len(files["a.bin"])
    assert leftovers(server) == []
    assert all(enc in w for w in client_whereis(env, cl).values())
    recs = env.annex_json(cl, "fsck", "--from", "enc", ".")  # inannex + sendkey, decrypt, hash
    assert len(recs) == len(files)
    assert all(r["success"] for r in recs), recs

    env.annex(cl, "drop", ".")  # numcopies 1: only allowed because inannex finds them on enc
    env.annex(cl, "get", "--from", "enc", ".")  # sendkey (rsync) and decryption
    for f, data in files.items():
        assert (cl / f).read_bytes() == data

    env.annex(cl, "drop", "--from", "enc", "a.bin")  # dropkey
    left = objects(server)
    assert len(left) == 1
    assert enc not in client_whereis(env, cl)["a.bin"]
    assert enc in client_whereis(env, cl)["sub/b.txt"]
    gone = next(iter(set(stored) - set(left)))
    assert not (stored[gone].parent).exists()  # key directory tidied away
    assert leftovers(server) == []
