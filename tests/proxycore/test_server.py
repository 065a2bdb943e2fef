"""The serving loop as an adapter: any Peer, any Transport.

A scripted Peer stands in for the gateway's future peers (clusters answer with extra UUIDs);
the wire is read back with the protocol's own client Connection.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from annextui.backend.keys import Key, key_for_content
from annextui.proxycore import protocol as p
from annextui.proxycore.local import LocalPeer
from annextui.proxycore.localrepo import LocalRepo
from annextui.proxycore.peer import (
    AlreadyHave,
    ContentLock,
    Incoming,
    Outcome,
    Outgoing,
    Peer,
    PeerFatal,
    RequestRefused,
)
from annextui.proxycore.server import FdTransport, ServerMode, serve
from tests.support.annex import AnnexEnv

U = "5e7e0000-0000-4000-8000-000000000001"
N1, N2 = "0de10000-0000-4000-8000-000000000001", "0de20000-0000-4000-8000-000000000002"
KEY = key_for_content(b"payload\n", "SHA256E", ".txt")


class ScriptedPeer(Peer):
    """Answers like a cluster: every result names the nodes it concerns."""

    def __init__(self) -> None:
        self.closed = False
        self.bypassed: tuple[str, ...] = ()

    @property
    def uuid(self) -> str:
        return U

    def check_present(self, key: Key) -> bool:
        if key.variety == "WORM":
            raise RequestRefused("no WORM here")
        return True

    def lock_content(self, key: Key) -> ContentLock | None:
        return None

    def get(self, key: Key, offset: int, associated_file: str | None) -> Outgoing | None:
        return None

    def put(self, key: Key, associated_file: str | None) -> Incoming | AlreadyHave:
        return AlreadyHave(plus=(N1, N2))

    def remove(self, key: Key, *, before: int | None = None) -> Outcome:
        if before == 1:
            raise PeerFatal("content is locked")
        return Outcome(True, (N1, N2))

    def timestamp(self) -> int:
        return 42

    def bypass(self, uuids: tuple[str, ...]) -> None:
        self.bypassed = uuids

    def close(self) -> None:
        self.closed = True


class Script:
    """A transport that plays fixed client bytes and records the server's."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.out = bytearray()

    def read(self, n: int) -> bytes:
        chunk, self.data = self.data[:n], self.data[n:]
        return chunk

    def write(self, data: bytes | memoryview) -> None:
        self.out += data

    def readinto(self, buf: memoryview) -> int:
        chunk = self.read(len(buf))
        buf[: len(chunk)] = chunk
        return len(chunk)

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        return 0


def _lines(out: bytes) -> list[str]:
    return out.decode().splitlines()


@pytest.mark.parametrize(
    ("version", "remove", "put"),
    [
        (4, f"SUCCESS-PLUS {N1} {N2}", f"ALREADY-HAVE-PLUS {N1} {N2}"),
        (1, "SUCCESS", "ALREADY-HAVE"),  # PLUS forms only for v2+ clients
    ],
)
def test_plus_replies_follow_the_version(version: int, remove: str, put: str) -> None:
    peer = ScriptedPeer()
    t = Script(f"VERSION {version}\nREMOVE {KEY}\nPUT f {KEY}\nBYPASS {N1}\n".encode())
    res = serve(peer, t)
    assert res.error is None
    assert _lines(bytes(t.out)) == [f"AUTH-SUCCESS {U}", f"VERSION {version}", remove, put]
    assert peer.closed
    assert peer.bypassed == (N1,)  # git-annex's server takes BYPASS at any version


def test_refusals_and_fatal_errors() -> None:
    peer = ScriptedPeer()
    worm = "WORM-s1-m1--x"
    t = Script(f"VERSION 4\nCHECKPRESENT {worm}\nGETTIMESTAMP\nREMOVE-BEFORE 1 {KEY}\n".encode())
    res = serve(peer, t)
    assert _lines(bytes(t.out))[2:] == ["ERROR no WORM here", "TIMESTAMP 42"]
    assert res.error == "content is locked"
    assert peer.closed


@pytest.mark.parametrize("mode", list(ServerMode))
def test_modes(mode: ServerMode) -> None:
    t = Script(f"VERSION 4\nPUT f {KEY}\nREMOVE {KEY}\n".encode())
    serve(ScriptedPeer(), t, mode=mode)
    got = _lines(bytes(t.out))[2:]
    ro = "ERROR this repository is read-only; write access denied"
    ao = "ERROR this repository is append-only; removal denied"
    assert (
        got
        == {
            ServerMode.READONLY: [ro, ro],
            ServerMode.APPENDONLY: [f"ALREADY-HAVE-PLUS {N1} {N2}", ao],
            ServerMode.READWRITE: [f"ALREADY-HAVE-PLUS {N1} {N2}", f"SUCCESS-PLUS {N1} {N2}"],
        }[mode]
    )


def test_pipes_and_sendfile(annex_env: AnnexEnv) -> None:
    """FdTransport on real pipes: a GET body goes out by sendfile, a PUT body comes in."""
    repo = annex_env.make_annex_repo("r.git", U, bare=True)
    data = os.urandom(3 * 1024 * 1024 + 5)
    key = key_for_content(data, "SHA256E", ".bin")
    peer = LocalPeer(LocalRepo.open(str(repo)), client_uuid=N1)
    c_to_s_r, c_to_s_w = os.pipe()
    s_to_c_r, s_to_c_w = os.pipe()
    transport = FdTransport(c_to_s_r, s_to_c_w)
    used: list[int] = []
    real = transport.sendfile

    def counting(fd: int, offset: int, count: int) -> int:
        n = real(fd, offset, count)
        used.append(n)
        return n

    transport.sendfile = counting  # type: ignore[method-assign]
    result: list[object] = []
    th = threading.Thread(target=lambda: result.append(serve(peer, transport)))
    th.start()
    client = p.Connection(p.Role.CLIENT, greeting=True)
    bc = p.BlockingConnection(
        client, lambda n: os.read(s_to_c_r, n), lambda b: os.write(c_to_s_w, b)
    )
    assert isinstance(bc.next_message(), p.AuthSuccess)
    bc.send(p.Version(4))
    assert bc.next_message() == p.Version(4)
    bc.send(p.Put("f.bin", str(key)))
    assert bc.next_message() == p.PutFrom(0)
    bc.send_content(len(data), (data[i : i + 65536] for i in range(0, len(data), 65536)))
    assert bc.next_message() == p.Success()
    bc.send(p.Get(1, None, str(key)))
    assert bc.next_message() == p.DataHeader(len(data) - 1)
    assert bc.read_body() == data[1:]
    assert bc.next_message() == p.Valid()
    bc.send(p.Success())
    os.close(c_to_s_w)
    th.join(timeout=30)
    assert result
    assert getattr(result[0], "error", "x") is None
    assert sum(used) == len(data) - 1
    for fd in (c_to_s_r, s_to_c_r, s_to_c_w):
        os.close(fd)
    obj = next(Path(repo, "annex", "objects").rglob(str(key) + "/" + str(key)))
    assert obj.read_bytes() == data
