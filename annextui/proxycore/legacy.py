"""git-annex-shell's legacy commands, which current clients use for gcrypt remotes.

A `type=gcrypt` remote reached over ssh keeps its encrypted objects in a bare repository that
has no annex UUID, only a `core.gcrypt-id`, and git-annex talks to it with these commands
rather than the P2P protocol (`Remote/GCrypt.hs`, `Remote/Helper/Ssh.hs`):

- `gcryptsetup DIR ID`: mark a bare repository as the gcrypt remote ID;
- `inannex DIR KEY…`: exit 0 when all are present, 1 when one is not, 100 when it cannot tell;
- `recvkey DIR KEY -- remoteuuid=U -- …` / `sendkey …`: rsync in server mode into `annex/tmp`
  (then verified and moved into the object store) or from the object;
- `dropkey DIR --quiet --force KEY…`: remove objects.

Old clients without p2pstdio used the same commands for plain git-annex repositories, so they
work there too (with location log updates; a gcrypt repository has no UUID and logs nothing).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid as uuidlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

from annextui.backend.keys import Key, KeyError_, parse_key
from annextui.proxycore.local import LocalPeer
from annextui.proxycore.localrepo import LocalRepo
from annextui.proxycore.locks import lock_holder
from annextui.proxycore.objectstore import UnsafePath, UnstorableKey
from annextui.proxycore.peer import PeerFatal, RequestRefused
from annextui.proxycore.transfers import Direction, TransferRecorder
from annextui.values import Value

# Annex/UUID.hs: gCryptNameSpace = generateNamed namespaceURL "http://git-annex.branchable.com/design/gcrypt/"
GCRYPT_NAMESPACE = uuidlib.uuid5(
    uuidlib.NAMESPACE_URL, "http://git-annex.branchable.com/design/gcrypt/"
)

# Utility/Rsync.hs rsyncServerParams: what git-annex-shell runs, whatever the client asked for.
RSYNC_SERVER = ("rsync", "--server", "-t", "--inplace", "-e.Lsf", ".")

INANNEX_UNSURE = 100


class LegacyError(Exception):
    """The command fails with this message (the shell prints it and exits 1)."""


def gcrypt_uuid(gcrypt_id: str) -> str:
    """The UUID git-annex gives the gcrypt remote whose repository has this `core.gcrypt-id`."""
    return str(uuidlib.uuid5(GCRYPT_NAMESPACE, gcrypt_id))


def parse_keys(words: Iterable[str]) -> list[Key]:
    keys = []
    for w in words:
        try:
            keys.append(parse_key(w))
        except KeyError_:
            raise LegacyError("bad key") from None
    return keys


def safe_rsync_options(words: Sequence[str]) -> list[str]:
    """filterRsyncSafeOptions: of what follows the fields, only `--bwlimit` reaches rsync.

    getopt rules: `--bwlimit=N` or `--bwlimit N`, any unique prefix of the name, and nothing
    after a `--`.
    """
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        i += 1
        if w == "--":
            break
        if not w.startswith("--") or len(w) < 3:
            continue
        name, eq, value = w[2:].partition("=")
        if not "bwlimit".startswith(name):
            continue
        if not eq:
            if i >= len(words):
                continue
            value = words[i]
            i += 1
        out.append(f"--bwlimit={value}")
    return out


# -- gcryptsetup ----------------------------------------------------------------------------------


def gcryptsetup(repo: LocalRepo, params: Sequence[str]) -> int:
    """Command/GCryptSetup.hs: set `core.gcrypt-id` (and allow the forced pushes gcrypt makes)."""
    for gcrypt_id in params:
        if repo.uuid:
            raise LegacyError(
                "gcryptsetup refusing to run; this repository already has a git-annex uuid!"
            )
        current = repo.gcrypt_id
        if current and gcrypt_uuid(current) != gcrypt_uuid(gcrypt_id):
            raise LegacyError("gcryptsetup uuid mismatch")
        if not repo.bare:
            raise LegacyError("cannot use gcrypt in a non-bare repository")
        for name, value in (
            ("core.gcrypt-id", gcrypt_id),
            ("receive.denyNonFastForwards", "false"),
        ):
            rc = subprocess.call(
                ["git", f"--git-dir={repo.gitdir}", "config", name, value],
                stdin=subprocess.DEVNULL,
                stdout=sys.stderr.fileno(),
            )
            if rc != 0:
                raise LegacyError(f"git config {name} failed")
        repo.reload()
    return 0


# -- inannex, dropkey -----------------------------------------------------------------------------


def _peer(repo: LocalRepo, remote_uuid: str | None = None) -> LocalPeer:
    try:
        return LocalPeer(repo, client_uuid=remote_uuid or "", gcrypt=True)
    except PeerFatal as exc:
        raise LegacyError(str(exc)) from None


def inannex(repo: LocalRepo, params: Sequence[str]) -> int:
    """Command/InAnnex.hs with inAnnexSafe: an object being dropped right now is "can't tell"."""
    keys = parse_keys(params)
    store = _peer(repo).store
    for key in keys:
        try:
            kp = store.present(key)
        except UnstorableKey:
            return 1  # no file can have its name: it is not here
        except UnsafePath:
            return INANNEX_UNSURE
        if kp is None:
            return 1
        if lock_holder(kp.lck) is not None:
            return INANNEX_UNSURE  # a drop holds the exclusive content lock
    return 0


class DropkeyOptions(Value):
    force: bool = False
    batch: bool = False  # keys from stdin, one per line
    json: bool = False  # a JSON record per key on stdout
    json_errors: bool = False  # error messages in the record instead of on stderr


def dropkey(
    repo: LocalRepo,
    params: Sequence[str],
    options: DropkeyOptions,
    stdin: TextIO | None = None,
) -> int:
    """Command/DropKey.hs: no numcopies check here, the client made it (hence `--force`).

    Keys are dropped in order. A bad key on the command line fails on its own (`bad key`, the
    others are still dropped); in batch mode it ends the batch (`Batch input parse failure`).
    Failures are reported as git-annex reports a command's: `git-annex: MESSAGE` per key and
    `dropkey: N failed` at the end.
    """
    if not options.force:
        raise LegacyError(
            "dropkey can cause data loss; use --force if you're sure you want to do this"
        )
    if options.batch and params:
        raise LegacyError("Cannot combine batch option with file or key options")
    peer = _peer(repo)
    failed = 0
    for word in _dropkey_words(params, options, stdin):
        try:
            key = parse_key(word)
        except KeyError_:
            if options.batch:
                _report_failed(failed)
                raise LegacyError("Batch input parse failure: bad key") from None
            sys.stderr.write("git-annex: bad key\n")
            failed += 1
            continue
        errors: list[str] = []
        try:
            ok = peer.remove(key).ok
        except PeerFatal as exc:
            errors.append(str(exc))
            ok = False
        failed += not ok
        if errors and not (options.json and options.json_errors):
            sys.stderr.write(f"git-annex: {errors[0]}\n")
        if options.json:
            _json_record(word, key, ok, errors if options.json_errors else [])
    _report_failed(failed)
    return 1 if failed else 0


def _report_failed(failed: int) -> None:
    if failed:
        sys.stderr.write(f"dropkey: {failed} failed\n")
        sys.stderr.flush()


def _dropkey_words(
    params: Sequence[str], options: DropkeyOptions, stdin: TextIO | None
) -> Iterator[str]:
    if not options.batch:
        yield from params
        return
    for line in stdin if stdin is not None else sys.stdin:
        yield line.rstrip("\n")


def _json_record(word: str, key: Key, ok: bool, errors: list[str]) -> None:
    """git-annex's `--json` record (aeson: compact, fields in this order)."""
    import json

    record = {
        "command": "dropkey",
        "error-messages": errors,
        "input": [word],
        "key": str(key),
        "success": ok,
    }
    sys.stdout.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stdout.flush()


# -- recvkey, sendkey -----------------------------------------------------------------------------


def _run_rsync(args: Sequence[str]) -> bool:
    sys.stdout.flush()
    try:
        return subprocess.call(list(args)) == 0
    except OSError as exc:
        sys.stderr.write(f"rsync: {exc}\n")
        return False


def _record(
    peer: LocalPeer, key: Key, direction: Direction, remote_uuid: str | None
) -> TransferRecorder | None:
    """fieldTransfer: a transfer record only when the client said who it is."""
    if not remote_uuid:
        return None
    rec = peer.start_transfer(direction, remote_uuid, key, None)
    if rec is None:
        raise LegacyError("transfer already in progress, or unable to take transfer lock")
    return rec


def sendkey(
    repo: LocalRepo, params: Sequence[str], remote_uuid: str | None, rsync_words: Sequence[str]
) -> int:
    """Command/SendKey.hs: rsync --server --sender of the object file."""
    (key,) = _one_key(params)
    peer = _peer(repo, remote_uuid)
    try:
        kp = peer.store.present(key)
    except UnsafePath as exc:
        raise LegacyError(f"refusing unsafe path: {exc}") from None
    if kp is None:
        raise LegacyError("requested key is not present")
    rec = _record(peer, key, Direction.UPLOAD, remote_uuid)
    ok = False
    try:
        argv = [*RSYNC_SERVER, "--sender", *safe_rsync_options(rsync_words), str(kp.object)]
        ok = _run_rsync(argv)
    finally:
        if rec is not None:
            rec.finish(ok)
    return 0 if ok else 1


def recvkey(
    repo: LocalRepo, params: Sequence[str], remote_uuid: str | None, rsync_words: Sequence[str]
) -> int:
    """Command/RecvKey.hs: rsync --server into `annex/tmp/KEY` (resumable: --inplace), verify
    size and hash, move into the object store, log the key present."""
    (key,) = _one_key(params)
    peer = _peer(repo, remote_uuid)
    store = peer.store
    try:
        peer.admit(key)
        peer.resume_offset(key)  # the disk reserve check; rsync itself resumes the tmp file
    except (RequestRefused, UnsafePath) as exc:
        raise LegacyError(str(exc)) from None
    rec = _record(peer, key, Direction.DOWNLOAD, remote_uuid)
    ok = False
    try:
        try:
            fd, tmp = store.open_tmp(key)
        except UnsafePath as exc:
            raise LegacyError(f"refusing unsafe path: {exc}") from None
        os.close(fd)
        argv = [*RSYNC_SERVER, *safe_rsync_options(rsync_words), str(tmp)]
        if not _run_rsync(argv):
            store.discard_tmp_if_empty(key)
            return 1  # the partial file stays for the client's next try
        if not _verified(peer, key, tmp):
            store.discard_tmp(key)
            sys.stderr.write("Verification of content failed\n")
            return 1
        peer.store_verified(key, tmp)
        ok = True
        return 0
    finally:
        if rec is not None:
            rec.finish(ok)


def _one_key(params: Sequence[str]) -> list[Key]:
    keys = parse_keys(params)
    if len(keys) != 1:
        raise LegacyError("expected one key")
    return keys


def _verified(peer: LocalPeer, key: Key, tmp: Path) -> bool:
    """verifyKeyContent after rsync: the size always, the content when annex.verify."""
    try:
        size = os.stat(tmp).st_size
    except OSError:
        return False
    if key.size is not None and size != key.size:
        return False
    return not peer.verify_enabled or peer.verify_file(key, tmp)
