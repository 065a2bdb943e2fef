"""annextui-relay beside annextui-shell: same command lines and environment, same answers.

A real `annextui p2phttp --relay-socket` serves a repository made by git-annex; the relay
(tests/support/relay.py: client.py run as `python -I -S`) and annextui-shell get the same argv,
`GIT_ANNEX_SHELL_*` variables and protocol input, and must answer with the same stdout, stderr
and exit status, whether the server serves the command itself (p2pstdio) or tells the relay to
become annextui-shell (everything else). The header's strict parsing and the socket's creation
rules are tested here too.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from annextui.proxycore.relay.client import MAGIC, MAX_HEADER, encode_header
from annextui.proxycore.relay.header import HeaderError, header_size, parse_header
from tests.proxycore.test_shell import CLIENT, OURS, U
from tests.support import p2phttp
from tests.support.annex import AnnexEnv
from tests.support.relay import relay_options, write_relay_program

KEY = "SHA256E-s3--ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

# -- the header ------------------------------------------------------------------------------------


def test_header_round_trip() -> None:
    args = ["p2pstdio", "/srv/gw", CLIENT, "--uuid", U, "with\nnewline", ""]
    env = [("GIT_ANNEX_SHELL_READONLY", "1"), ("HOME", "/home/x"), ("SSH_CONNECTION", "a b")]
    data = encode_header(args, env)
    assert header_size(data) == len(data)
    parsed = parse_header(data)
    assert list(parsed.args) == args
    assert parsed.environ == dict(env)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", "not an annextui-relay connection"),
        (b"annextui-relay 2\n3\nAx\0", "not an annextui-relay connection"),
        (MAGIC + b"x\n", "bad header length"),
        (MAGIC + b"99999999\n", "bad header length"),
        (MAGIC + str(MAX_HEADER + 1).encode() + b"\n", "more than"),
        (MAGIC + b"2\nAx", "unterminated"),
        (MAGIC + b"3\nQx\0", "unknown header item"),
        (MAGIC + b"7\nEPATH=\0", "PATH is not relayed"),
        (MAGIC + b"6\nEHOME\0", "without NAME="),
        (MAGIC + b"15\nEHOME=a\0EHOME=\0", "given twice"),
        (MAGIC + b"11\nEHOME=a\0Ax\0", "arguments after the environment"),
        (MAGIC + b"5\nAx\0", "incomplete header"),
    ],
)
def test_header_refused(data: bytes, message: str) -> None:
    with pytest.raises(HeaderError, match=message):
        parse_header(data)


def test_header_item_bound() -> None:
    with pytest.raises(HeaderError, match="header items"):
        parse_header(encode_header(["x"] * 300, []))


# -- the relay next to annextui-shell ------------------------------------------------------------


@dataclass
class Served:
    env: AnnexEnv
    repo: Path
    relay: Path
    server: p2phttp.P2PHttpServer
    socket: Path

    def run(self, argv: list[str], extra: dict[str, str], stdin: bytes) -> tuple[int, str, str]:
        done = subprocess.run(
            argv, input=stdin, env={**self.env.env, **extra}, capture_output=True, timeout=60
        )
        return done.returncode, done.stdout.decode(), done.stderr.decode()

    def served(self) -> int:
        return self.server.stderr().count("relay SSH ")


@pytest.fixture
def served(annex_env: AnnexEnv) -> Iterator[Served]:
    repo = annex_env.make_annex_repo("served.git", U, "served", bare=True)
    tmp = Path(tempfile.mkdtemp(prefix="arl-", dir="/tmp"))
    sock = tmp / "relay.sock"
    relay = write_relay_program(tmp / "annextui-relay", sock)
    server = p2phttp.P2PHttpServer("annextui", repo, dict(annex_env.env), relay_options(sock))
    try:
        server.start()
        yield Served(annex_env, repo, relay, server, sock)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


PUT = f"VERSION 1\nPUT file {KEY}\n".encode()
REMOVE = f"VERSION 1\nREMOVE {KEY}\n".encode()


def _cases(repo: Path) -> list[tuple[str, list[str], dict[str, str], bytes, bool]]:
    """(name, argv, environment, stdin, served by the server itself)."""
    d = str(repo)
    p2p = ["p2pstdio", d, CLIENT]
    return [
        ("plain", p2p, {}, b"VERSION 1\n", True),
        ("readonly put", p2p, {"GIT_ANNEX_SHELL_READONLY": "1"}, PUT, True),
        ("appendonly remove", p2p, {"GIT_ANNEX_SHELL_APPENDONLY": "1"}, REMOVE, True),
        ("directory elsewhere", p2p, {"GIT_ANNEX_SHELL_DIRECTORY": "/elsewhere"}, b"", True),
        ("directory same", p2p, {"GIT_ANNEX_SHELL_DIRECTORY": d + "/"}, b"VERSION 1\n", True),
        ("limited p2p", p2p, {"GIT_ANNEX_SHELL_LIMITED": "1"}, b"VERSION 1\n", True),
        ("wrong uuid", [*p2p, "--uuid", CLIENT], {}, b"", True),
        ("no such repo", ["p2pstdio", d + "-nope", CLIENT], {}, b"", True),
        (
            "limited git",
            ["-c", f"git-upload-pack '{d}'"],
            {"GIT_ANNEX_SHELL_LIMITED": "1"},
            b"",
            False,
        ),
        ("bad parameters", ["p2pstdio"], {}, b"", False),
        ("configlist", ["configlist", d], {}, b"", False),
        (
            "forced command",
            [],
            {"SSH_ORIGINAL_COMMAND": f"git-annex-shell 'p2pstdio' '{d}' '{CLIENT}'"},
            b"VERSION 1\n",
            True,
        ),
    ]


CASE_NAMES = [c[0] for c in _cases(Path("/x"))]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_relay_answers_as_the_shell(served: Served, name: str) -> None:
    (_, argv, extra, stdin, in_server) = next(c for c in _cases(served.repo) if c[0] == name)
    shell_argv = argv if argv else ["-c", extra["SSH_ORIGINAL_COMMAND"]]
    ours = served.run([*OURS, *shell_argv], extra, stdin)
    before = served.served()
    relayed = served.run([str(served.relay), *argv], extra, stdin)
    assert relayed == ours
    log = served.server.stderr()
    assert served.served() == before + 1, log
    last = [ln for ln in log.splitlines() if ln.startswith("relay SSH ")][-1]
    assert ("fallback" not in last) == in_server, last


def test_bad_header_refused_and_server_goes_on(served: Served) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(str(served.socket))
        s.sendall(MAGIC + b"7\nEPATH=\0")
        assert s.recv(4096).startswith(b"error environment variable PATH is not relayed")
    code, out, _ = served.run(
        [str(served.relay), "p2pstdio", str(served.repo), CLIENT], {}, b"VERSION 1\n"
    )
    assert code == 0
    assert out == f"AUTH-SUCCESS {U}\nVERSION 1\n"


def test_header_without_descriptors_refused(served: Served) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(str(served.socket))
        s.sendall(encode_header(["p2pstdio", str(served.repo), CLIENT], []))
        assert s.recv(4096) == b"error expected the session's stdin, stdout and stderr\n"


def test_socket_is_private(served: Served) -> None:
    st = os.lstat(served.socket)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600


def _p2phttp(env: AnnexEnv, repo: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["annextui", "p2phttp", *options],
        cwd=repo,
        env=env.env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_refuses_a_path_that_is_not_a_socket(annex_env: AnnexEnv, tmp_path: Path) -> None:
    repo = annex_env.make_annex_repo("r.git", U, "r", bare=True)
    victim = tmp_path / "important"
    victim.write_text("keep me\n")
    done = _p2phttp(annex_env, repo, "--relay-socket", str(victim))
    assert done.returncode == 1
    assert "exists and is not a socket" in done.stderr
    assert victim.read_text() == "keep me\n"


def test_refuses_a_socket_in_use(served: Served) -> None:
    done = _p2phttp(served.env, served.repo, "--relay-socket", str(served.socket))
    assert done.returncode == 1
    assert "in use by a running server" in done.stderr
    # the running server still relays
    code, _, _ = served.run(
        [str(served.relay), "p2pstdio", str(served.repo), CLIENT], {}, b"VERSION 1\n"
    )
    assert code == 0


def _stopped_under_session(served: Served, requests: bytes, replies: list[bytes]) -> str:
    """A relayed p2pstdio session: `requests` sent, AUTH-SUCCESS and `replies` read, then nothing
    more (the client keeps its end open) while the server is stopped (SIGTERM). The relay must
    exit 0 (a stopped session, as when a client hangs up) with nothing on stderr, the server
    stop cleanly. The server's log."""
    relay = subprocess.Popen(
        [str(served.relay), "p2pstdio", str(served.repo), CLIENT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=served.env.env,
    )
    assert relay.stdin is not None
    assert relay.stdout is not None
    try:
        relay.stdin.write(requests)
        relay.stdin.flush()
        for line in [f"AUTH-SUCCESS {U}\n".encode(), *replies]:
            assert relay.stdout.readline() == line
        served.server.stop()
        status = relay.wait(timeout=60)
        err = relay.stderr.read().decode() if relay.stderr is not None else ""
        assert (status, err) == (0, "")
    finally:
        relay.kill()
        relay.wait()
        relay.stdin.close()
        relay.stdout.close()
    log = served.server.stderr()
    assert "p2phttp: stopped" in log
    return log


def test_sigterm_ends_relayed_sessions(served: Served) -> None:
    """A session waiting for its client's next request ends when the server is stopped: it
    sees its input end and answers its own exit status."""
    log = _stopped_under_session(served, b"", [])
    assert "still running at shutdown" not in log  # it ended by itself


def _store_object(repo: Path, data: bytes) -> str:
    """Content of a new key put straight into a bare repository's annex/objects (the layout
    git-annex reads); the key."""
    from annextui.backend.keys import hashdir_lower, key_file, key_for_content

    key = key_for_content(data, "SHA256E", ".bin")
    name = key_file(key)
    folder = repo / "annex" / "objects" / hashdir_lower(key) / name
    folder.mkdir(parents=True)
    (folder / name).write_bytes(data)
    return str(key)


def test_sigterm_answers_a_session_blocked_on_its_client(served: Served) -> None:
    """A session the stop pipe cannot reach (blocked writing a GET body to a client that reads
    no more of it) is answered by the stopping server before its process ends: exit 0 as for
    any stopped session, never a socket closed without a status (exit 1)."""
    size = 8 << 20  # far more than a pipe holds
    key = _store_object(served.repo, os.urandom(size))
    requests = f"VERSION 1\nGET 0 file {key}\n".encode()
    log = _stopped_under_session(served, requests, [b"VERSION 1\n", b"DATA %d\n" % size])
    assert "session still running at shutdown: answered exit 0" in log


# -- another user ----------------------------------------------------------------------------------


def _interpreter_for(uid: int, gid: int) -> str | None:
    """A python3 that user `uid` may run (ours may live under root's private home)."""
    for candidate in (sys.executable, shutil.which("python3"), "/usr/bin/python3"):
        if not candidate:
            continue
        try:
            done = subprocess.run(
                [candidate, "-I", "-S", "-c", "pass"],
                user=uid,
                group=gid,
                extra_groups=[],
                cwd="/",
                capture_output=True,
                timeout=60,
            )
        except OSError:
            continue
        if done.returncode == 0:
            return candidate
    return None


def test_relay_from_another_user_refused(served: Served) -> None:
    """The server refuses a relay connection from another uid (SO_PEERCRED), and goes on
    serving its own user's. The relay runs as `nobody` against the server's socket.

    The socket is made 0600, so another user's connect() fails (EACCES) and its relay falls
    back to the shell before the server sees anything: to reach the uid check at all, this
    test loosens the socket's mode to 0666 (and lets `nobody` through its directory) after
    the server made it."""
    if os.geteuid() != 0:
        pytest.skip("running the relay as another user (nobody) needs root")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user `nobody` to run the relay as")
    python = _interpreter_for(nobody.pw_uid, nobody.pw_gid)
    if python is None:
        pytest.skip("no python3 that `nobody` may run")
    os.chmod(served.socket.parent, 0o711)
    os.chmod(served.socket, 0o666)  # what the server never does: see the docstring
    public = Path(tempfile.mkdtemp(prefix="arl-nobody-", dir="/tmp"))
    try:
        public.chmod(0o755)
        relay = write_relay_program(public / "annextui-relay", served.socket)
        relay.chmod(0o755)
        # had the relay fallen back (it does when the server hangs up before the header is
        # sent), this stand-in shell would say so
        fallback = public / "fallback-shell"
        fallback.write_text("#!/bin/sh\necho fallback\nexit 97\n")
        fallback.chmod(0o755)
        done = subprocess.run(
            [python, "-I", "-S", str(relay), "p2pstdio", str(served.repo), CLIENT],
            input=b"VERSION 1\n",
            env={"PATH": "/usr/bin:/bin", "ANNEXTUI_RELAY_SHELL": str(fallback)},
            user=nobody.pw_uid,
            group=nobody.pw_gid,
            extra_groups=[],
            cwd="/",
            capture_output=True,
            timeout=60,
        )
    finally:
        shutil.rmtree(public, ignore_errors=True)
    log = served.server.stderr()
    # nothing served: no AUTH-SUCCESS; the server logs the refusal as the session's outcome
    assert b"AUTH-SUCCESS" not in done.stdout, (done, log)
    refused = [ln for ln in log.splitlines() if "error relay from another user refused" in ln]
    assert len(refused) == 1, log
    assert refused[0].startswith("relay SSH "), refused
    # what the relay sees: the server's refusal (exit 1), or, had the server hung up before
    # the relay sent its header, a fallback to its own shell, run as `nobody`
    if done.returncode == 97:
        assert done.stdout == b"fallback\n", done
    else:
        assert (done.returncode, done.stdout, done.stderr) == (
            1,
            b"",
            b"annextui-relay: relay from another user refused\n",
        ), done
    # and the server's own user is still served
    code, out, _ = served.run(
        [str(served.relay), "p2pstdio", str(served.repo), CLIENT], {}, b"VERSION 1\n"
    )
    assert (code, out) == (0, f"AUTH-SUCCESS {U}\nVERSION 1\n")
