"""annextui-shell next to git-annex-shell: same command lines, same answers.

Most tests run both programs on the same input and compare stdout, exit status and the error
text (git-annex-shell prefixes errors with its program name; ours with its own).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from annextui.proxycore import shellargs
from annextui.proxycore.shellargs import (
    BadParameters,
    Builtin,
    OptionError,
    Passthrough,
    parse_argv,
    shell_escape,
    shell_unescape,
)
from tests.support.annex import AnnexEnv

U = "5e11ab00-0000-4000-8000-000000000001"
CLIENT = "b1f6c7c6-82b0-471b-80b2-10f846e192f2"
_LAUNCHER = Path(sys.executable).parent / "annextui-shell"
OURS = (
    [str(_LAUNCHER)] if _LAUNCHER.exists() else [sys.executable, "-m", "annextui.proxycore.shell"]
)

# -- argv ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["configlist", "/srv/gw"], Builtin("configlist", "/srv/gw")),
        (
            ["configlist", "/srv/srv2.git", "--", "autoinit=1", "--"],
            Builtin("configlist", "/srv/srv2.git", fields={"autoinit": "1"}),
        ),
        (
            ["p2pstdio", "/srv/gw", CLIENT, "--uuid", U],
            Builtin("p2pstdio", "/srv/gw", (CLIENT,), uuid=U),
        ),
        (
            ["p2pstdio", "/srv/gw", "--debug", CLIENT, "--uuid=" + U],
            Builtin(
                "p2pstdio", "/srv/gw", (CLIENT,), uuid=U, debug=True, flags=frozenset({"debug"})
            ),
        ),
        (
            ["-c", f"git-annex-shell 'p2pstdio' '/~/ws/srv' '{CLIENT}' --uuid {U}"],
            Builtin("p2pstdio", "/~/ws/srv", (CLIENT,), uuid=U),
        ),
        (
            ["-c", "/opt/x/annextui-shell 'configlist' '/srv/gw'"],
            Builtin("configlist", "/srv/gw"),
        ),
        (
            ["sendkey", "/d", "KEY", "--", "remoteuuid=ab-1", "bogus=1", "autoinit=2", "--", "-v"],
            Builtin(
                "sendkey", "/d", ("KEY",), fields={"remoteuuid": "ab-1"}, rsync_options=("-v",)
            ),
        ),
        (["-qv", "x"], Passthrough(("-qv", "x"), "x")),
        (["-c", "git-upload-pack '/srv/x'"], Passthrough(("git-upload-pack '/srv/x'",), "/srv/x")),
        (["git-receive-pack", "/srv/x"], Passthrough(("git-receive-pack", "/srv/x"), "/srv/x")),
    ],
)
def test_parse_argv(argv: list[str], expected: shellargs.Command) -> None:
    assert parse_argv(argv) == expected


@pytest.mark.parametrize("argv", [[], ["-c"], ["p2pstdio"], ["-c", "git-annex-shell 'configlist'"]])
def test_bad_parameters(argv: list[str]) -> None:
    with pytest.raises(BadParameters):
        parse_argv(argv)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["configlist", "/d", "--bogus"], "Invalid option `--bogus'"),
        (["configlist", "/d", "-c", "a=b"], "Invalid option `-c'"),
        (["configlist", "/d", "--uuid"], "The option `--uuid` expects an argument."),
    ],
)
def test_option_errors(argv: list[str], message: str) -> None:
    with pytest.raises(OptionError) as info:
        parse_argv(argv)
    assert info.value.message == message


@given(
    st.lists(st.text(alphabet=st.characters(blacklist_characters="\0"), max_size=12), max_size=5)
)
def test_shell_escape_round_trips(words: list[str]) -> None:
    assert shell_unescape(" ".join(shell_escape(w) for w in words)) == words or words == []


# -- side by side with git-annex-shell ------------------------------------------------------------


def _run(cmd: list[str], env: dict[str, str], stdin: bytes = b"") -> tuple[int, str, str]:
    p = subprocess.run(cmd, input=stdin, env=env, capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def _error(stderr: str) -> str:
    """The message without the program-name prefix (ours vs git-annex-shell's)."""
    return re.sub(r"^[\w.-]+: ", "", stderr.strip().split("\n\n")[0])


@pytest.fixture
def repos(annex_env: AnnexEnv) -> dict[str, Path]:
    e = annex_env
    served = e.make_annex_repo("served.git", U, "served", bare=True)
    plain = e.root / "plain.git"
    e.run(["git", "init", "-q", "--bare", plain])
    return {"served": served, "plain": plain}


def _both(
    annex_env: AnnexEnv,
    argv: list[str],
    extra_env: dict[str, str] | None = None,
    stdin: bytes = b"",
) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    env = dict(annex_env.env, **(extra_env or {}))
    theirs = _run([annex_env.git_annex_shell, *argv], env, stdin)
    ours = _run([*OURS, *argv], env, stdin)
    return theirs, ours


CASES = [
    ("no arguments", [], {}),
    ("configlist", ["configlist", "{served}"], {}),
    ("configlist own uuid", ["configlist", "{served}", "--uuid", U], {}),
    ("configlist unknown uuid", ["configlist", "{served}", "--uuid", "0000-bogus"], {}),
    ("configlist not annex", ["configlist", "{plain}"], {}),
    ("configlist extra param", ["configlist", "{served}", "x"], {}),
    ("configlist fields", ["configlist", "{served}", "--", "foo=bar", "--"], {}),
    ("login-shell form", ["-c", "git-annex-shell 'configlist' '{served}'"], {}),
    ("missing dir", ["p2pstdio", "{root}/nonexistent", CLIENT], {}),
    ("p2pstdio not annex", ["p2pstdio", "{plain}", CLIENT], {}),
    ("p2pstdio missing uuid", ["p2pstdio", "{served}"], {}),
    ("p2pstdio two params", ["p2pstdio", "{served}", "a", "b"], {}),
    ("p2pstdio wrong uuid", ["p2pstdio", "{served}", CLIENT, "--uuid", CLIENT], {}),
    ("readonly dropkey", ["dropkey", "{served}", "K"], {"GIT_ANNEX_SHELL_READONLY": "1"}),
    ("appendonly dropkey", ["dropkey", "{served}", "K"], {"GIT_ANNEX_SHELL_APPENDONLY": "1"}),
    ("readonly recvkey", ["recvkey", "{served}", "K"], {"GIT_ANNEX_SHELL_READONLY": "1"}),
    ("empty readonly is unset", ["configlist", "{served}"], {"GIT_ANNEX_SHELL_READONLY": ""}),
    ("limited git", ["git-upload-pack", "{served}"], {"GIT_ANNEX_SHELL_LIMITED": "1"}),
    ("directory mismatch", ["configlist", "{served}"], {"GIT_ANNEX_SHELL_DIRECTORY": "/tmp/y"}),
    ("directory match", ["configlist", "{served}"], {"GIT_ANNEX_SHELL_DIRECTORY": "{served}/"}),
    ("directory of git", ["-c", "git-upload-pack '/etc'"], {"GIT_ANNEX_SHELL_DIRECTORY": "/srv"}),
    ("unknown option", ["configlist", "{served}", "--bogus"], {}),
    ("option needs value", ["configlist", "{served}", "--uuid"], {}),
    ("flags", ["configlist", "{served}", "-qv", "--fast", "--force", "--no-debug"], {}),
]


@pytest.mark.parametrize(("name", "argv", "env"), CASES, ids=[c[0] for c in CASES])
def test_same_as_git_annex_shell(
    annex_env: AnnexEnv, repos: dict[str, Path], name: str, argv: list[str], env: dict[str, str]
) -> None:
    subst = {k: str(v) for k, v in repos.items()} | {"root": str(annex_env.root)}
    argv = [a.format(**subst) for a in argv]
    env = {k: v.format(**subst) for k, v in env.items()}
    (trc, tout, terr), (orc, oout, oerr) = _both(annex_env, argv, env)
    assert orc == trc, (name, terr, oerr)
    assert oout == tout
    if trc != 0:
        assert _error(oerr).split("\n")[0] == _error(terr).split("\n")[0], (terr, oerr)
    if "Usage:" in terr:
        assert "Usage:" in oerr


def test_configlist_autoinit(annex_env: AnnexEnv, tmp_path: Path) -> None:
    for prog in ("theirs", "ours"):
        repo = tmp_path / f"{prog}.git"
        annex_env.run(["git", "init", "-q", "--bare", repo])
        cmd = [annex_env.git_annex_shell] if prog == "theirs" else OURS
        ro = _run(
            [*cmd, "configlist", str(repo), "--", "autoinit=1", "--"],
            dict(annex_env.env, GIT_ANNEX_SHELL_READONLY="1"),
        )
        assert ro[0] == 1
        assert "Action blocked by GIT_ANNEX_SHELL_READONLY" in ro[2]
        rc, out, err = _run(
            [*cmd, "configlist", str(repo), "--", "autoinit=1", "--"], annex_env.env
        )
        assert rc == 0, err
        m = re.fullmatch(r"annex\.uuid=([0-9a-f-]{36})\ncore\.gcrypt-id=\n", out)
        assert m, out
        # git-annex agrees the repository is initialised, with that UUID
        info = annex_env.annex_json(repo, "info", "--fast")
        assert info[0]["success"]
        assert annex_env.git(repo, "config", "annex.uuid") == m.group(1)
        assert annex_env.git(repo, "config", "annex.version") == "10"


def test_git_passthrough(annex_env: AnnexEnv, repos: dict[str, Path]) -> None:
    served = repos["served"]
    argv = ["-c", f"git-upload-pack '{served}'"]
    (trc, tout, _), (orc, oout, _) = _both(annex_env, argv, stdin=b"0000")
    assert (orc, oout) == (trc, tout)
    assert "refs/heads/git-annex" in oout


# -- p2pstdio transcripts --------------------------------------------------------------------------


def _twins(annex_env: AnnexEnv) -> tuple[Path, Path, str]:
    """Two repositories with the same UUID and the same object: one per shell."""
    a = annex_env.make_annex_repo("twin-a", U, "twin")
    key = annex_env.add_files(a, {"small.txt": "hello world\n"})["small.txt"]
    b = annex_env.make_annex_repo("twin-b", U, "twin")
    annex_env.add_files(b, {"small.txt": "hello world\n"})
    return a, b, key


def _transcript(
    annex_env: AnnexEnv, lines: list[bytes], env: dict[str, str] | None = None
) -> tuple[list[tuple[int, str]], str, str]:
    a, b, _ = _twins(annex_env)
    e = dict(annex_env.env, **(env or {}))
    data = b"".join(lines)
    t = _run([annex_env.git_annex_shell, "p2pstdio", str(a), CLIENT], e, data)
    o = _run([*OURS, "p2pstdio", str(b), CLIENT], e, data)
    norm = [(rc, re.sub(r"TIMESTAMP \d+", "TIMESTAMP n", out)) for rc, out, _ in (t, o)]
    return norm, t[2], o[2]


K1 = "SHA256E-s12--a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447.txt"
K2_DATA = b"new content\n"


def _k2() -> str:
    from annextui.backend.keys import key_for_content

    return str(key_for_content(K2_DATA, "SHA256E", ".txt"))


SESSIONS = {
    "errors-8.5": [
        b"VERSION 4\n",
        b"FOO bar\n",
        b"SUCCESS\n",
        b"CHECKPRESENT\n",
        f"GET 0 /etc/passwd {K1}\n".encode(),
        f"GET 6  {K1}\n".encode(),
        b"SUCCESS\n",
        f"LOCKCONTENT {K1}\n".encode(),
        f"UNLOCKCONTENT {K1}\n".encode(),
        f"PUT f.txt {K1}\n".encode(),
        b"ERROR client gives up\n",
        b"CHECKPRESENT x\n",
    ],
    "v0 put and get": [
        b"PUT new.txt {K2}\n",
        b"DATA 12\n",
        K2_DATA,
        b"CHECKPRESENT {K2}\n",
        b"GET 0 new.txt {K2}\n",
        b"SUCCESS\n",
        b"GET 0 x SHA256E-s1--00\n",
    ],
    "v1 validity": [
        b"VERSION 1\n",
        b"PUT new.txt {K2}\n",
        b"DATA 12\n",
        K2_DATA,
        b"VALID\n",
        b"GET 3 new.txt {K2}\n",
        b"FAILURE\n",
        b"GETTIMESTAMP\n",
        b"BYPASS x\n",
    ],
    "v4 put bad content": [
        b"VERSION 4\n",
        b"PUT new.txt {K2}\n",
        b"DATA 12\n",
        b"bad content\n",
        b"VALID\n",
        b"CHECKPRESENT {K2}\n",
        b"PUT new.txt {K2}\n",
        b"DATA 0\n",
        b"INVALID\n",
    ],
    "v4 missing validity": [
        b"VERSION 4\n",
        b"PUT new.txt {K2}\n",
        b"DATA 12\n",
        K2_DATA,
        b"SUCCESS\n",
        b"CHECKPRESENT {K2}\n",
    ],
    "v4 put without data": [
        b"VERSION 4\n",
        b"PUT new.txt {K2}\n",
        b"GETTIMESTAMP\n",
        b"CHECKPRESENT {K2}\n",
        b"PUT new.txt {K2}\n",
        b"DATA-PRESENT\n",
        b"PUT new.txt {K2}\n",
        b"ERROR nope\n",
        b"CHECKPRESENT {K2}\n",
    ],
    "v3 data-present refused": [
        b"VERSION 3\n",
        b"PUT new.txt {K2}\n",
        b"DATA-PRESENT\n",
        b"CHECKPRESENT {K2}\n",
    ],
    "remove": [
        b"VERSION 4\n",
        b"REMOVE-BEFORE 1 {K1}\n",
        b"CHECKPRESENT {K1}\n",
        b"REMOVE {K1}\n",
        b"CHECKPRESENT {K1}\n",
        b"REMOVE {K1}\n",
        b"LOCKCONTENT {K1}\n",
    ],
    "version 99 and auth": [b"VERSION 99\n", b"AUTH x y\n", b"CHECKPRESENT {K1}\n"],
    "lock then hang up": [b"VERSION 4\n", b"LOCKCONTENT {K1}\n"],
    "get ack errors": [b"VERSION 4\n", b"GET 0 f {K1}\n", b"FOO\n", b"CHECKPRESENT {K1}\n"],
}


@pytest.mark.parametrize("name", list(SESSIONS))
def test_p2pstdio_same_transcript(annex_env: AnnexEnv, name: str) -> None:
    lines = [
        ln.replace(b"{K1}", K1.encode()).replace(b"{K2}", _k2().encode()) for ln in SESSIONS[name]
    ]
    (theirs, ours), terr, oerr = _transcript(annex_env, lines)
    assert ours == theirs, (terr, oerr)


@pytest.mark.parametrize(
    ("env", "session"),
    [
        (
            {"GIT_ANNEX_SHELL_READONLY": "1"},
            [
                b"VERSION 4\n",
                b"PUT f {K2}\n",
                b"REMOVE {K1}\n",
                b"REMOVE-BEFORE 99999999 {K1}\n",
                b"LOCKCONTENT {K1}\n",
                b"UNLOCKCONTENT\n",
            ],
        ),
        (
            {"GIT_ANNEX_SHELL_APPENDONLY": "1"},
            [b"VERSION 4\n", b"REMOVE {K1}\n", b"PUT f {K2}\n", b"DATA 12\n", K2_DATA, b"VALID\n"],
        ),
        (
            {"GIT_ANNEX_SHELL_READONLY": "1"},
            [b"VERSION 4\n", b"CONNECT git-receive-pack\n", b"CHECKPRESENT {K1}\n"],
        ),
        ({}, [b"VERSION 4\n", b"NOTIFYCHANGE\n"]),
        ({}, [b"VERSION 4\n", b"CONNECT git-upload-pack\n"]),
    ],
    ids=["readonly", "appendonly", "readonly-connect", "notifychange", "connect"],
)
def test_p2pstdio_modes(annex_env: AnnexEnv, env: dict[str, str], session: list[bytes]) -> None:
    lines = [ln.replace(b"{K1}", K1.encode()).replace(b"{K2}", _k2().encode()) for ln in session]
    (theirs, ours), terr, oerr = _transcript(annex_env, lines, env)
    assert ours == theirs, (terr, oerr)
    assert oerr == terr


def test_oversize_line_is_fatal(annex_env: AnnexEnv) -> None:
    lines = [b"VERSION 4\n", b"CHECKPRESENT " + b"x" * 40000 + b"\n"]
    (theirs, ours), _terr, oerr = _transcript(annex_env, lines)
    assert ours == theirs
    assert ours[0] == 1
    assert "protocol error" in oerr


def test_short_data_keeps_partial_for_resume(annex_env: AnnexEnv) -> None:
    k2 = _k2()
    lines = [b"VERSION 4\n", f"PUT new.txt {k2}\n".encode(), b"DATA 12\n", K2_DATA[:5]]
    (theirs, ours), _terr, oerr = _transcript(annex_env, lines)
    # git-annex answers FAILURE to nobody and then dies reading the closed handle ("hGetChar:
    # illegal operation", exit 1); we end quietly. Either way the partial file is kept.
    assert ours[1] + "FAILURE\n" == theirs[1]
    assert ours[0] == 0
    assert oerr == ""
    for twin in ("twin-a", "twin-b"):
        tmp = annex_env.root / twin / ".git" / "annex" / "tmp" / k2
        assert tmp.read_bytes() == K2_DATA[:5]
    # and the next PUT resumes from there
    _rc, out, _ = _run(
        [*OURS, "p2pstdio", str(annex_env.root / "twin-b"), CLIENT],
        annex_env.env,
        f"VERSION 4\nPUT new.txt {k2}\nDATA 7\n".encode() + K2_DATA[5:] + b"VALID\n",
    )
    assert out.splitlines()[2:] == ["PUT-FROM 5", "SUCCESS"]


# -- notifychanges ---------------------------------------------------------------------------------


def test_notifychanges(annex_env: AnnexEnv, repos: dict[str, Path]) -> None:
    served = repos["served"]
    p = subprocess.Popen(
        [*OURS, "notifychanges", str(served)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=annex_env.env,
    )
    assert p.stdout is not None
    assert p.stdin is not None
    assert p.stdout.readline() == b"READY\n"
    first = p.stdout.readline().decode()  # the initial burst: existing refs
    annex_sha = annex_env.git(served, "rev-parse", "git-annex")
    assert first.startswith("CHANGED ")
    assert annex_sha in first
    time.sleep(0.05)
    annex_env.git(served, "update-ref", "refs/heads/new", annex_sha)
    assert p.stdout.readline().decode() == f"CHANGED {annex_sha}\n"
    p.stdin.close()
    assert p.wait(timeout=10) == 0


# -- start-up cost ---------------------------------------------------------------------------------


def test_startup_imports_stay_light(repos: dict[str, Path], annex_env: AnnexEnv) -> None:
    code = (
        "import sys\n"
        "from annextui.proxycore.shell import main\n"
        "rc = main(sys.argv[1:])\n"
        "names = ('textual', 'rich', 'paramiko', 'dulwich')\n"
        "heavy = sorted(m for m in names if m in sys.modules)\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy) + '\\n')\n"
    )
    served = str(repos["served"])
    for argv, stdin in (
        (["configlist", served], b""),
        (["p2pstdio", served, CLIENT], f"VERSION 4\nCHECKPRESENT {K1}\nGET 0 x {K1}\n".encode()),
    ):
        p = subprocess.run(
            [sys.executable, "-c", code, *argv],
            input=stdin,
            capture_output=True,
            env=annex_env.env,
            timeout=60,
        )
        assert b"HEAVY=\n" in p.stderr, p.stderr


def _python_prints(code: str) -> str:
    """What a fresh interpreter running `code` prints (it must succeed)."""
    p = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def test_a_put_s_preferred_content_imports_no_dataclasses_nor_the_analysis() -> None:
    """A cluster PUT evaluates the nodes' preferred content (gateway.BranchPreferences) at
    every such connection: what that imports costs each one. `dataclasses` alone is ~5 ms
    (it imports inspect), the package's analysis and its dataclasses were ~15 ms more."""
    found = _python_prints(
        "import sys\n"
        "import annextui.proxycore.shell, annextui.proxycore.gateway\n"
        "from annextui.backend.preferred import Evaluator, KeyFacts, World\n"
        "from annextui.backend.world import build_world\n"
        "Evaluator(World.build([]))\n"
        "print(' '.join(m for m in ('dataclasses', 'annextui.backend.preferred.analysis')\n"
        "    if m in sys.modules))\n"
    )
    assert found == ""


def test_no_textual_anywhere_in_the_shell_path() -> None:
    assert (
        _python_prints(
            "import sys, annextui.proxycore.server, annextui.proxycore.local, "
            "annextui.proxycore.shell; print(any(m.split('.')[0] in ('textual', 'rich', 'paramiko')"
            " for m in sys.modules))"
        )
        == "False"
    )


def test_a_cluster_session_defines_no_dataclass() -> None:
    """The modules a cluster session imports declare values.Value classes, not dataclasses
    (each dataclass costs ~0.8 ms of exec at every connection; a Value ~0.1 ms)."""
    found = _python_prints(
        "import sys, dataclasses\n"
        "import annextui.proxycore.shell, annextui.proxycore.server, annextui.proxycore.local\n"
        "import annextui.proxycore.gateway, annextui.proxycore.cluster.peer\n"
        # what open_gateway and build_peer import when the session starts
        "import annextui.proxycore.targets, annextui.backend.state, annextui.backend.branch\n"
        # what a PUT's placement imports (gateway.BranchPreferences)
        "import annextui.backend.preferred.evaluate, annextui.backend.world\n"
        "found = sorted(f'{n}.{k}' for n, m in list(sys.modules.items())\n"
        "    if n.startswith('annextui.') and m is not None\n"
        "    for k, v in vars(m).items()\n"
        "    if isinstance(v, type) and v.__module__ == n and dataclasses.is_dataclass(v))\n"
        "print(' '.join(found))\n"
    )
    assert found == ""
