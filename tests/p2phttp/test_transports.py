"""HTTPS (`--certfile`/`--privatekeyfile`, with `--authenv` users only over it) and a unix
socket (`--socket`), driven by a Python client (the real client's HTTPS would need the test
certificate in the system's store; the nginx/TLS harness covers that path)."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.gateway.topology import CLIENT, GW
from tests.p2phttp.support import ROOT
from tests.support.annex import AnnexEnv
from tests.support.sshd import free_port

pytestmark = pytest.mark.slow


def _certificate(d: Path) -> tuple[Path, Path]:
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _start(
    env: AnnexEnv, repo: Path, args: list[str], extra: dict[str, str]
) -> subprocess.Popen[bytes]:
    e = {**env.env, "PYTHONPATH": str(ROOT), **extra}
    return subprocess.Popen(
        [sys.executable, "-m", "annextui", "p2phttp", *args],
        cwd=repo,
        env=e,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait(connect) -> None:  # type: ignore[no-untyped-def]
    for _ in range(600):
        try:
            connect()
            return
        except OSError:
            threading.Event().wait(0.05)
    raise RuntimeError("server did not come up")


def test_https_with_authenv(annex_env: AnnexEnv) -> None:
    repo = annex_env.make_annex_repo(annex_env.root / "r.git", GW, "r", bare=True)
    cert, key = _certificate(annex_env.root)
    port = free_port()
    proc = _start(
        annex_env,
        repo,
        [
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--certfile",
            str(cert),
            "--privatekeyfile",
            str(key),
            "--chainfile",
            str(cert),
            "--authenv",
            "-J",
            "2",
        ],
        {"GIT_ANNEX_P2PHTTP_PASSWORD_alice": "s3cret"},
    )
    try:
        ctx = ssl.create_default_context(cafile=str(cert))
        _wait(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close())
        path = f"/git-annex/{GW}/v4/gettimestamp?clientuuid={CLIENT}"
        auth = "Basic " + base64.b64encode(b"alice:s3cret").decode()
        c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
        c.request("POST", path, body=b"")
        r = c.getresponse()
        r.read()
        assert r.status == 401  # anonymous: credentials wanted
        c.request("POST", path, body=b"", headers={"Authorization": auth})
        r = c.getresponse()
        assert r.status == 200
        assert "timestamp" in json.loads(r.read())
        c.close()
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self.unix_path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.unix_path)
        self.sock = s


def test_unix_socket(annex_env: AnnexEnv) -> None:
    repo = annex_env.make_annex_repo(annex_env.root / "r.git", GW, "r", bare=True)
    sock_path = str(annex_env.root / "p2phttp.sock")
    proc = _start(annex_env, repo, ["--socket", sock_path, "--wideopen", "-J", "2"], {})
    try:
        _wait(lambda: _UnixConnection(sock_path).connect())
        c = _UnixConnection(sock_path)
        key = "SHA256E-s3--" + "0" * 64
        c.request("POST", f"/git-annex/{GW}/v4/checkpresent?key={key}&clientuuid={CLIENT}", b"")
        r = c.getresponse()
        assert (r.status, json.loads(r.read())) == (200, {"present": False})
        c.close()
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
    assert not Path(sock_path).exists()  # removed at shutdown


def test_unix_socket_slow_reader(annex_env: AnnexEnv) -> None:
    """A GET body bigger than the socket's buffer reaches a reader that starts reading only
    once the server has had every chance to write (nginx relaying into a slower TLS client
    is such a reader): the whole body, over `--socket`."""
    from tests.support import p2phttp as H

    env = annex_env
    repo = env.make_annex_repo(env.root / "r.git", GW, "r", bare=True)
    client = env.clone(repo, env.root / "client", uuid=CLIENT, origin="origin", annex_init=False)
    env.annex(client, "init", "-q", "client")
    data = bytes(range(256)) * 4096 * 3  # 3 MiB: many times a unix socket's buffer
    env.add_files(client, {"big.bin": data})
    env.annex(client, "copy", "--to", "origin", "big.bin")
    key = env.annex(client, "lookupkey", "big.bin").stdout.strip()
    with H.running("annextui", repo, env.env, unix_socket=env.root / "p2phttp.sock") as s:
        assert s.unix_socket is not None
        reader = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        reader.settimeout(60)
        reader.connect(str(s.unix_socket))
        path = f"/git-annex/{GW}/v4/key/{key}?clientuuid={CLIENT}"
        reader.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        # the server logs a request when it is over: a correct server is still writing (this
        # wait ends at its bound), a broken one has given up on the body
        for _ in range(40):
            if f"GET {path} " in s.stderr():
                break
            threading.Event().wait(0.05)
        got = b""
        while not got.endswith(b"\r\n0\r\n\r\n"):
            piece = reader.recv(1 << 20)
            if not piece:
                break
            got += piece
        reader.close()
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert _unchunk(body) == data


def _unchunk(body: bytes) -> bytes:
    """An HTTP/1.1 chunked body decoded (raises ValueError when it is cut short)."""
    out = bytearray()
    pos = 0
    while True:
        eol = body.index(b"\r\n", pos)
        size = int(body[pos:eol].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        start = eol + 2
        if len(body) < start + size + 2:
            raise ValueError(f"chunk of {size} cut short after {len(out)} bytes")
        out += body[start : start + size]
        pos = start + size + 2
