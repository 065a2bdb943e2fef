"""External backend keys (`XTEST-…`, `XTESTE-…`) received through annextui-shell, next to
git-annex-shell: verified by the backend program when it is on the PATH, kept on their size
alone when it is not (as git-annex keeps them). The program is tests/support/backends/."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from annextui.backend.keys import known_variety, parse_key
from annextui.proxycore.external_backend import (
    ExternalName,
    Verdict,
    close_all,
    external_name,
    protocol_key,
    verify_content,
)
from tests.proxycore.test_shell import CLIENT, OURS, U, _run, _transcript
from tests.support import annex as annex_support
from tests.support.annex import AnnexEnv
from tests.support.sshd import Sshd

BACKENDS = Path(__file__).resolve().parents[1] / "support" / "backends"
DATA = b"content kept under an external backend's key\n"
KEY = f"XTEST-s{len(DATA)}--{hashlib.sha256(DATA).hexdigest()}"
KEY_E = f"XTESTE-s{len(DATA)}--{hashlib.sha256(DATA).hexdigest()}.txt"
WRONG = DATA[:-2] + b"!\n"  # same size, other content


def _with_backend(annex_env: AnnexEnv, **extra: str) -> dict[str, str]:
    return {"PATH": f"{BACKENDS}:{annex_env.env['PATH']}", **extra}


def _put(key: str, body: bytes) -> list[bytes]:
    return [
        b"VERSION 4\n",
        f"PUT f.txt {key}\n".encode(),
        f"DATA {len(body)}\n".encode(),
        body,
        b"VALID\n",
        f"CHECKPRESENT {key}\n".encode(),
    ]


CASES = [
    ("right content", KEY, DATA, True, {}),
    ("right content, E variant", KEY_E, DATA, True, {}),
    ("wrong content", KEY, WRONG, True, {}),
    ("wrong content, E variant", KEY_E, WRONG, True, {}),
    ("wrong content, no program", KEY, WRONG, False, {}),
    ("wrong content, program cannot verify", KEY, WRONG, True, {"XTEST_CANVERIFY": "no"}),
]


@pytest.mark.parametrize(
    ("name", "key", "body", "program", "extra"), CASES, ids=[c[0] for c in CASES]
)
def test_put_same_as_git_annex_shell(
    annex_env: AnnexEnv,
    name: str,
    key: str,
    body: bytes,
    program: bool,
    extra: dict[str, str],
) -> None:
    env = _with_backend(annex_env, **extra) if program else dict(extra)
    (theirs, ours), terr, oerr = _transcript(annex_env, _put(key, body), env)
    assert ours == theirs, (terr, oerr)
    last = ours[1].splitlines()[-1]
    kept = body == DATA or not program or extra.get("XTEST_CANVERIFY") == "no"
    assert last == ("SUCCESS" if kept else "FAILURE"), ours


def test_securehashesonly_asks_the_program(annex_env: AnnexEnv) -> None:
    """annex.securehashesonly: an external key is secure when its program says so.

    Refused, git-annex-shell takes the whole body and fails after it; ours refuses the `PUT`
    itself (as for any insecure key), so no data moves in vain. Neither stores it.
    """
    data = b"".join(_put(KEY, DATA))
    for secure in ("yes", "no"):
        e = dict(annex_env.env, **_with_backend(annex_env, XTEST_SECURE=secure))
        out, stored = {}, {}
        for which, cmd in (
            ("theirs", [annex_env.git_annex_shell]),
            ("ours", OURS),
        ):
            repo = annex_env.make_annex_repo(
                f"sec-{secure}-{which}", U, config={"annex.securehashesonly": "true"}
            )
            out[which] = _run([*cmd, "p2pstdio", str(repo), CLIENT], e, data)[1]
            stored[which] = any((repo / ".git" / "annex" / "objects").rglob(KEY))
        if secure == "yes":
            assert out["ours"] == out["theirs"]
            assert out["ours"].splitlines()[-1] == "SUCCESS"
            assert stored == {"theirs": True, "ours": True}
        else:
            assert "PUT-FROM" in out["theirs"]
            assert out["ours"].splitlines()[2] == (
                "ERROR annex.securehashesonly blocked adding XTEST key to annex objects"
            )
            assert stored == {"theirs": False, "ours": False}


def test_external_names_and_protocol_keys() -> None:
    k = parse_key(KEY_E)
    assert known_variety(k)
    ext = external_name(k)
    assert ext == ExternalName("TEST", True)
    assert ext.program == "git-annex-backend-XTEST"
    assert protocol_key(k, ext) == KEY  # the program never sees the extension
    assert external_name(parse_key(KEY)) == ExternalName("TEST", False)
    assert external_name(parse_key("SHA256E-s1--ab.txt")) is None


def test_verify_content_verdicts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_bytes(DATA)
    bad.write_bytes(WRONG)
    monkeypatch.setenv("PATH", f"{BACKENDS}:/usr/bin:/bin")
    assert verify_content(parse_key(KEY), good) is Verdict.VALID
    assert verify_content(parse_key(KEY_E), good) is Verdict.VALID
    assert verify_content(parse_key(KEY), bad) is Verdict.INVALID
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert verify_content(parse_key(KEY), bad) is Verdict.UNVERIFIABLE
    close_all()


def test_one_program_per_session(annex_env: AnnexEnv, tmp_path: Path) -> None:
    """Like git-annex, the shell keeps the backend program running for the whole session."""
    log = tmp_path / "starts.log"
    other = b"another file under the same backend\n"
    other_key = f"XTEST-s{len(other)}--{hashlib.sha256(other).hexdigest()}"
    lines = _put(KEY, DATA) + _put(other_key, other)[1:] + _put(KEY_E, DATA)[1:]
    repo = annex_env.make_annex_repo("one-program", U)
    env = dict(annex_env.env, **_with_backend(annex_env, XTEST_LOG=str(log)))
    rc, out, err = _run([*OURS, "p2pstdio", str(repo), CLIENT], env, b"".join(lines))
    assert rc == 0, err
    # each PUT and the CHECKPRESENT after it
    assert [ln for ln in out.splitlines() if ln in ("SUCCESS", "FAILURE")] == ["SUCCESS"] * 6
    assert len(log.read_text().splitlines()) == 1


@pytest.mark.ssh
@pytest.mark.slow
def test_real_client_over_ssh(
    tmp_path_factory: pytest.TempPathFactory, git_annex_bin: Path, sshd: Sshd
) -> None:
    """A client whose annex.backend is XTESTE copies, checks, gets back and drops through
    annextui-shell over sshd; the gateway's own git-annex fsck (with the program) agrees."""
    with annex_support.ssh_world(tmp_path_factory, "xtest", git_annex_bin, sshd) as (_root, env):
        path = f"{BACKENDS}:{sshd.base_server_env()['PATH']}"
        sshd.add_host("xtesthost", {"PATH": path})
        env.prepend_path(BACKENDS)
        srv = env.make_annex_repo("srv.git", bare=True)
        cl = env.clone(f"ssh://xtesthost{srv}", "cl", origin="srv", annex_init=False)
        env.git(cl, "config", "remote.srv.annex-shell", "annextui-shell")
        env.git(cl, "config", "annex.backend", "XTESTE")
        env.annex(cl, "init", "-q", "client")
        files = {"a.txt": DATA, "big.bin": bytes(range(256)) * 20000}
        keys = env.add_files(cl, files)
        assert all(k.startswith("XTESTE-") for k in keys.values())
        env.annex(cl, "copy", "--to", "srv", ".")
        for k in keys.values():
            objs = list((srv / "annex" / "objects").rglob(f"{k}/{k}"))
            assert len(objs) == 1, k
            fsck = env.annex(srv, "fsck", "--key", k)
            assert "fixing" not in fsck.stdout + fsck.stderr
            assert f"fsck {k} ok" in fsck.stdout
        recs = env.annex_json(cl, "fsck", "--from", "srv", ".")
        assert all(r["success"] for r in recs), recs
        env.annex(cl, "drop", ".")
        env.annex(cl, "get", "--from", "srv", ".")
        for f, data in files.items():
            assert (cl / f).read_bytes() == data
        env.annex(cl, "drop", "--from", "srv", ".")
        assert not any((srv / "annex" / "objects").rglob("XTESTE-*"))
