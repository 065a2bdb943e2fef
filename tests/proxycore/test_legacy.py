"""The legacy commands (inannex, dropkey, sendkey, recvkey, gcryptsetup) next to git-annex-shell.

Each case runs git-annex-shell on one repository and annextui-shell on a twin (same UUID, same
content) and compares exit status, stdout, the error text and what each left in its repository.
`recvkey`/`sendkey` are driven the way git-annex drives them: a real rsync client whose remote
shell (`-e`) runs the shell command, with rsync's own server words appended after the fields.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from annextui.backend.keys import key_for_content
from annextui.proxycore.legacy import gcrypt_uuid, safe_rsync_options
from tests.proxycore.test_shell import OURS, U, _error, _run
from tests.support.annex import AnnexEnv

REMOTE = "c0ffee00-0000-4000-8000-0000000000aa"
DATA = b"hello world\n"
KEY = str(key_for_content(DATA, "SHA256E", ".txt"))
NEW = b"new content for recvkey\n" * 1000
NEW_KEY = str(key_for_content(NEW, "SHA256E", ".bin"))
ABSENT = str(key_for_content(b"nobody has this\n", "SHA256E", ".txt"))
GCRYPT_ID = ":id:annextuiTestId0001"


def _shell(annex_env: AnnexEnv, which: str) -> list[str]:
    return [annex_env.git_annex_shell] if which == "theirs" else list(OURS)


@pytest.fixture
def twins(annex_env: AnnexEnv) -> dict[str, Path]:
    out = {}
    for which in ("theirs", "ours"):
        repo = annex_env.make_annex_repo(f"{which}-repo", U, "twin")
        annex_env.add_files(repo, {"small.txt": DATA})
        out[which] = repo
    return out


def _command(name: str, *rest: str) -> Callable[[Path], list[str]]:
    """`name REPO REST...` for either side's repository (the words fixed now: a lambda in a
    loop would see the loop's last values)."""
    return lambda repo: [name, str(repo), *rest]


def _side_by_side(
    annex_env: AnnexEnv,
    repos: dict[str, Path],
    argv: Callable[[Path], list[str]],
    extra_env: dict[str, str] | None = None,
    stdin: bytes = b"",
) -> dict[str, tuple[int, str, str]]:
    env = dict(annex_env.env, **(extra_env or {}))
    return {
        w: _run([*_shell(annex_env, w), *argv(repos[w])], env, stdin) for w in ("theirs", "ours")
    }


def _assert_same(res: dict[str, tuple[int, str, str]]) -> None:
    (trc, tout, terr), (orc, oout, oerr) = res["theirs"], res["ours"]
    assert orc == trc, (terr, oerr)
    assert oout == tout
    if trc != 0 and _error(terr):
        assert _error(oerr).split("\n")[0] == _error(terr).split("\n")[0], (terr, oerr)


def _whereis(annex_env: AnnexEnv, repo: Path, key: str) -> list[str]:
    recs = annex_env.annex_json(repo, "whereis", "--key", key, check=False)
    return sorted(w["uuid"] for r in recs for w in r.get("whereis", []))


def _objects(repo: Path) -> dict[str, bytes]:
    root = repo / ".git" / "annex" / "objects"
    if not root.is_dir():
        root = repo / "annex" / "objects"
    return {p.name: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _tmp_files(repo: Path) -> list[str]:
    tmp = repo / ".git" / "annex" / "tmp"
    return sorted(p.name for p in tmp.glob("*")) if tmp.is_dir() else []


INANNEX = [
    ("present", [KEY], 0),
    ("absent", [ABSENT], 1),
    ("present then absent", [KEY, ABSENT], 1),
    ("bad key", ["not-a-key"], 1),
    ("path in key", ["SHA256E-s1--../../etc/passwd"], None),
    ("key too long for a file name", ["SHA256E-s1--" + "a" * 300], 1),
]


@pytest.mark.parametrize(("name", "keys", "rc"), INANNEX, ids=[c[0] for c in INANNEX])
def test_inannex(
    annex_env: AnnexEnv, twins: dict[str, Path], name: str, keys: list[str], rc: int | None
) -> None:
    res = _side_by_side(annex_env, twins, lambda r: ["inannex", str(r), *keys])
    _assert_same(res)
    if rc is not None:
        assert res["ours"][0] == rc


def test_dropkey_needs_force_then_drops_and_logs(
    annex_env: AnnexEnv, twins: dict[str, Path]
) -> None:
    _assert_same(_side_by_side(annex_env, twins, lambda r: ["dropkey", str(r), KEY]))
    assert all(KEY in _objects(r) for r in twins.values())  # nothing dropped without --force
    res = _side_by_side(
        annex_env, twins, lambda r: ["dropkey", str(r), "--quiet", "--force", KEY, ABSENT]
    )
    _assert_same(res)
    assert res["ours"][0] == 0
    for repo in twins.values():
        assert KEY not in _objects(repo)
        assert _whereis(annex_env, repo, KEY) == []  # the repository logged itself missing
        fsck = annex_env.annex(repo, "fsck", "--key", KEY, check=False)
        assert "fixing" not in fsck.stdout + fsck.stderr


def test_dropkey_refused_when_appendonly(annex_env: AnnexEnv, twins: dict[str, Path]) -> None:
    res = _side_by_side(
        annex_env,
        twins,
        lambda r: ["dropkey", str(r), "--quiet", "--force", KEY],
        {"GIT_ANNEX_SHELL_APPENDONLY": "1"},
    )
    _assert_same(res)
    assert res["ours"][0] == 1
    assert all(KEY in _objects(r) for r in twins.values())


# -- recvkey / sendkey through a real rsync client -------------------------------------------------


def _rsync(
    annex_env: AnnexEnv, tmp: Path, shell: list[str], cmd: list[str], src: str, dst: str
) -> subprocess.CompletedProcess[bytes]:
    """rsync as Remote/Helper/Ssh.hs runs it: `-e` is the shell command; rsync appends its
    host ("dummy") and its own server command, which the shell must ignore."""
    wrapper = tmp / f"rsh-{len(list(tmp.glob('rsh-*')))}"
    words = " ".join(f"'{w}'" for w in [*shell, *cmd, "--", f"remoteuuid={REMOTE}", "--"])
    wrapper.write_text(f'#!/bin/sh\nexec {words} "$@"\n')
    wrapper.chmod(0o755)
    return subprocess.run(
        ["rsync", "--inplace", "--perms", "-e", str(wrapper), "--", src, dst],
        env=annex_env.env,
        capture_output=True,
        timeout=60,
    )


def _recvkey(
    annex_env: AnnexEnv, tmp: Path, which: str, repo: Path, key: str, src: Path
) -> subprocess.CompletedProcess[bytes]:
    cmd = ["recvkey", str(repo), key]
    return _rsync(annex_env, tmp, _shell(annex_env, which), cmd, str(src), "dummy:")


def _sendkey(
    annex_env: AnnexEnv, tmp: Path, which: str, repo: Path, key: str, dst: Path
) -> subprocess.CompletedProcess[bytes]:
    cmd = ["sendkey", str(repo), key]
    return _rsync(annex_env, tmp, _shell(annex_env, which), cmd, "dummy:", str(dst))


@pytest.fixture
def rsync_ok() -> None:
    if shutil.which("rsync") is None:
        if os.environ.get("CI"):
            pytest.fail("rsync is required in CI but missing", pytrace=False)
        pytest.skip("rsync not available")


@pytest.mark.usefixtures("rsync_ok")
def test_recvkey_stores_verifies_and_logs(
    annex_env: AnnexEnv, twins: dict[str, Path], tmp_path: Path
) -> None:
    src = tmp_path / "new.bin"
    src.write_bytes(NEW)
    for which, repo in twins.items():
        res = _recvkey(annex_env, tmp_path, which, repo, NEW_KEY, src)
        assert res.returncode == 0, (which, res.stderr)
    for repo in twins.values():
        assert _objects(repo)[NEW_KEY] == NEW
        obj = next((repo / ".git" / "annex" / "objects").rglob(NEW_KEY + "/" + NEW_KEY))
        assert not obj.stat().st_mode & stat.S_IWUSR  # frozen like every object
        assert _whereis(annex_env, repo, NEW_KEY) == [U]
        assert _tmp_files(repo) == []
        fsck = annex_env.annex(repo, "fsck", "--key", NEW_KEY)
        assert "ok" in fsck.stdout
        assert "fixing" not in fsck.stdout


@pytest.mark.usefixtures("rsync_ok")
def test_recvkey_rejects_content_that_does_not_match(
    annex_env: AnnexEnv, twins: dict[str, Path], tmp_path: Path
) -> None:
    src = tmp_path / "bad.bin"
    src.write_bytes(NEW[:-1] + b"X")  # right size, wrong hash
    rcs = {}
    for which, repo in twins.items():
        rcs[which] = _recvkey(annex_env, tmp_path, which, repo, NEW_KEY, src).returncode
    assert rcs["ours"] != 0
    assert rcs["theirs"] != 0
    for repo in twins.values():
        assert NEW_KEY not in _objects(repo)
        assert _whereis(annex_env, repo, NEW_KEY) == []
        assert _tmp_files(repo) == []  # unverifiable content is not kept for a resume


@pytest.mark.usefixtures("rsync_ok")
def test_sendkey_sends_the_object_or_fails(
    annex_env: AnnexEnv, twins: dict[str, Path], tmp_path: Path
) -> None:
    for which, repo in twins.items():
        dst = tmp_path / f"got-{which}"
        res = _sendkey(annex_env, tmp_path, which, repo, KEY, dst)
        assert res.returncode == 0, (which, res.stderr)
        assert dst.read_bytes() == DATA
        miss = _sendkey(annex_env, tmp_path, which, repo, ABSENT, tmp_path / "none")
        assert miss.returncode != 0
        assert b"requested key is not present" in miss.stderr
        assert not (tmp_path / "none").exists()


# -- gcryptsetup and gcrypt repositories -----------------------------------------------------------


@pytest.fixture
def bare_twins(annex_env: AnnexEnv) -> dict[str, Path]:
    out = {}
    for which in ("theirs", "ours"):
        repo = annex_env.root / f"{which}-gcrypt.git"
        annex_env.run(["git", "init", "-q", "--bare", str(repo)])
        out[which] = repo
    return out


def _config(annex_env: AnnexEnv, repo: Path, name: str) -> str:
    return annex_env.run(
        ["git", "config", "--file", str(repo / "config"), name], check=False
    ).stdout


def test_gcryptsetup(
    annex_env: AnnexEnv, bare_twins: dict[str, Path], twins: dict[str, Path]
) -> None:
    # a git-annex repository, and a repository that is not bare, are refused
    _assert_same(_side_by_side(annex_env, twins, lambda r: ["gcryptsetup", str(r), GCRYPT_ID]))
    nonbare = {}
    for which in ("theirs", "ours"):
        nonbare[which] = annex_env.root / f"{which}-work"
        annex_env.run(["git", "init", "-q", str(nonbare[which])])
    res = _side_by_side(annex_env, nonbare, lambda r: ["gcryptsetup", str(r), GCRYPT_ID])
    _assert_same(res)
    assert res["ours"][0] == 1
    # a bare repository becomes the gcrypt repository, once and for one id only
    for gid, rc in ((GCRYPT_ID, 0), (GCRYPT_ID, 0), (":id:another", 1)):
        res = _side_by_side(annex_env, bare_twins, _command("gcryptsetup", gid))
        _assert_same(res)
        assert res["ours"][0] == rc
    for name in ("core.gcrypt-id", "receive.denyNonFastForwards"):
        values = {_config(annex_env, r, name) for r in bare_twins.values()}
        assert len(values) == 1, name
    assert _config(annex_env, bare_twins["ours"], "core.gcrypt-id").strip() == GCRYPT_ID
    # configlist now reports the gcrypt id, with no annex UUID
    _assert_same(_side_by_side(annex_env, bare_twins, lambda r: ["configlist", str(r)]))


def test_gcrypt_repository_uuid_check(annex_env: AnnexEnv, bare_twins: dict[str, Path]) -> None:
    for which, repo in bare_twins.items():
        rc = _run([*_shell(annex_env, which), "gcryptsetup", str(repo), GCRYPT_ID], annex_env.env)
        assert rc[0] == 0, rc
    right = gcrypt_uuid(GCRYPT_ID)
    res = _side_by_side(annex_env, bare_twins, lambda r: ["inannex", str(r), KEY, "--uuid", right])
    _assert_same(res)
    assert res["ours"][0] == 1  # accepted as this repository, and the key is not there
    wrong = _side_by_side(annex_env, bare_twins, lambda r: ["inannex", str(r), KEY, "--uuid", U])
    _assert_same(wrong)  # "expected repository UUID … but found UUID <derived from the id>"
    assert right in wrong["ours"][2]


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["dummy", "rsync", "--server", "-vlogDtpre.iLsfxCIvu", "--inplace", ".", "dummy"], []),
        (["--bwlimit=100"], ["--bwlimit=100"]),
        (["--bwlimit", "5", "--delete"], ["--bwlimit=5"]),
        (["--bw=7"], ["--bwlimit=7"]),  # getopt takes a unique prefix
        (["--", "--bwlimit=1"], []),
        (["--rsh=evil", "--bwlimit"], []),
    ],
)
def test_only_bwlimit_reaches_rsync(words: list[str], expected: list[str]) -> None:
    assert safe_rsync_options(words) == expected


def test_p2pstdio_leaves_a_gcrypt_repository_alone(
    annex_env: AnnexEnv, bare_twins: dict[str, Path]
) -> None:
    repo = bare_twins["ours"]
    assert _run([*OURS, "gcryptsetup", str(repo), GCRYPT_ID], annex_env.env)[0] == 0
    rc, out, err = _run([*OURS, "p2pstdio", str(repo), REMOTE], annex_env.env)
    assert rc == 1
    assert "gcrypt repository" in err
    assert out == ""
    assert _config(annex_env, repo, "annex.uuid") == ""  # not initialised behind gcrypt's back


def test_proxied_uuid_same_as_git_annex_shell(annex_env: AnnexEnv, tmp_path: Path) -> None:
    """`--uuid` naming a remote the gateway proxies: the legacy commands are refused ("Cannot
    proxy … command."), notifychanges watches the gateway's own refs, as git-annex-shell does."""
    gw = annex_env.make_annex_repo("gw.git", U, "gateway", bare=True)
    node = "11111111-2222-4333-8444-555555555555"
    for name, value in (
        ("remote.node.url", "ssh://nowhere.invalid/srv/node"),
        ("remote.node.fetch", "+refs/heads/*:refs/remotes/node/*"),
        ("remote.node.annex-uuid", node),
        ("remote.node.annex-proxy", "true"),
    ):
        annex_env.git(gw, "config", name, value)
    annex_env.annex(gw, "updateproxy")
    repos = {"theirs": gw, "ours": gw}
    for argv in (
        ["inannex", KEY],
        ["dropkey", "--force", KEY],
        ["recvkey", KEY],
        ["sendkey", KEY],
        ["gcryptsetup", GCRYPT_ID],
        ["configlist"],
    ):
        res = _side_by_side(annex_env, repos, _command(argv[0], *argv[1:], "--uuid", node))
        _assert_same(res)
        assert res["ours"][0] == 1
        assert f"Cannot proxy {argv[0]} command." in res["ours"][2]
    watch = {
        w: _run([*_shell(annex_env, w), "notifychanges", str(gw), "--uuid", node], annex_env.env)
        for w in ("theirs", "ours")
    }
    assert watch["theirs"][1].startswith("READY\n")
    assert watch["ours"][1].startswith("READY\n")
    assert watch["ours"][0] == 0  # stdin closed: the end, not an error (git-annex-shell says 1)


def test_dropkey_batch_and_json(annex_env: AnnexEnv) -> None:
    """dropkey's --batch and --json, step by step on twin repositories: same output, same
    exit status, same objects left after every step."""
    files = {f"{n}.txt": f"content {n}\n".encode() for n in "abcdefg"}
    repos, keys = {}, {}
    for which in ("theirs", "ours"):
        repos[which] = annex_env.make_annex_repo(f"{which}-batch", U, "twin")
        keys = annex_env.add_files(repos[which], files)
    k = {f[0]: key for f, key in keys.items()}
    steps: list[tuple[list[str], bytes]] = [
        (["--batch", "--force"], f"{k['a']}\nbogus\n{k['b']}\n".encode()),  # stops at bogus
        (["--batch", "--json", "--force"], f"{k['c']}\n\n{k['d']}\n".encode()),
        (["--json", "--force", k["d"]], b""),
        (["--json", "--force", k["a"]], b""),  # not there any more: still a success
        (["--json", "--json-error-messages", "--force", k["e"]], b""),
        (["--batch"], f"{k['f']}\n".encode()),  # no --force
        (["--batch", "--force", k["f"]], f"{k['f']}\n".encode()),  # keys and --batch
        (["--json", "--force"], b""),  # nothing to do
        (["--force", k["f"], "bogus", k["g"]], b""),  # "bad key" fails alone: f, g dropped
    ]
    for extra, stdin in steps:
        res = _side_by_side(annex_env, repos, _command("dropkey", *extra), stdin=stdin)
        _assert_same(res)
        left = {w: sorted(_objects(r)) for w, r in repos.items()}
        assert left["ours"] == left["theirs"], extra
    assert sorted(_objects(repos["ours"])) == [k["b"]]
    assert _whereis(annex_env, repos["ours"], k["c"]) == []
    # --json is dropkey's only: inannex refuses it as git-annex-shell does
    _assert_same(_side_by_side(annex_env, repos, lambda r: ["inannex", str(r), "--json", k["b"]]))
