"""When a one-shot cluster session starts its ssh pre-warm: at the client's second request for
a key (gateway.PrewarmLater), told of each message by the real serving loop.

A session whose one request a node in the gateway's process serves never needs the ssh node,
and the pre-warm at the start cost it a fifth of its time (bench/README.md, issue 17's fixed
costs); a session's first request that needs the ssh node opens it itself. The pre-warm itself
is recorded here (what it would connect is tests/proxycore/test_ssh.py's business); the
session-level effect on a real `git annex get` is tests/gateway/test_session_imports_interop.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from annextui.backend.keys import Key, key_for_content
from annextui.backend.repo import Remote
from annextui.proxycore import gateway
from annextui.proxycore.peer import AlreadyHave, ContentLock, Incoming, Outcome, Outgoing, Peer
from annextui.proxycore.server import serve

U = "ac000000-0000-8000-8000-0000000000cc"
N3 = "40de0000-0000-4000-8000-000000000003"
KEY = key_for_content(b"payload\n", "SHA256E", ".txt")
SSH_NODE = Remote("node3", "ssh://n3host/srv/node3.git", N3)
LOCAL_NODE = Remote("node1", "/srv/node1.git", "40de0000-0000-4000-8000-000000000001")


class Holder(Peer):
    """Every key is here; nothing to serve from."""

    @property
    def uuid(self) -> str:
        return U

    def check_present(self, key: Key) -> bool:
        return True

    def lock_content(self, key: Key) -> ContentLock | None:
        return None

    def get(self, key: Key, offset: int, associated_file: str | None) -> Outgoing | None:
        return None

    def put(self, key: Key, associated_file: str | None) -> Incoming | AlreadyHave:
        return AlreadyHave()

    def remove(self, key: Key, *, before: int | None = None) -> Outcome:
        return Outcome(True)

    def timestamp(self) -> int:
        return 1


class Client:
    """Fixed client bytes in, the server's bytes out."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.out = bytearray()

    def read(self, n: int) -> bytes:
        chunk, self.data = self.data[:n], self.data[n:]
        return chunk

    def readinto(self, buf: memoryview) -> int:
        chunk = self.read(len(buf))
        buf[: len(chunk)] = chunk
        return len(chunk)

    def write(self, data: bytes | memoryview) -> None:
        self.out += data

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        return 0


@pytest.fixture
def warmed(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The remotes of each pre-warm started (by name)."""
    calls: list[list[str]] = []

    def record(remotes: Sequence[Remote]) -> None:
        calls.append([r.name for r in remotes])

    monkeypatch.setattr(gateway, "prewarm_ssh", record)
    return calls


def _session(later: gateway.PrewarmLater, requests: str) -> list[str]:
    client = Client(f"VERSION 4\n{requests}".encode())
    res = serve(Holder(), client, on_request=later.on_request)
    assert res.error is None
    return bytes(client.out).decode().splitlines()


def test_a_one_request_session_starts_no_prewarm(warmed: list[list[str]]) -> None:
    later = gateway.PrewarmLater()
    later.remember([LOCAL_NODE, SSH_NODE])
    assert later.pending
    assert _session(later, f"CHECKPRESENT {KEY}\n")[2:] == ["SUCCESS"]
    assert warmed == []


def test_the_second_request_for_a_key_starts_it_once(warmed: list[list[str]]) -> None:
    later = gateway.PrewarmLater()
    later.remember([LOCAL_NODE, SSH_NODE])
    replies = _session(later, f"CHECKPRESENT {KEY}\nGETTIMESTAMP\nREMOVE {KEY}\nPUT f {KEY}\n")
    assert replies[2:] == ["SUCCESS", "TIMESTAMP 1", "SUCCESS", "ALREADY-HAVE"]
    assert warmed == [["node3"]]  # only the ssh node; at REMOVE, not again at PUT


def test_nothing_to_prewarm_without_an_ssh_node(warmed: list[list[str]]) -> None:
    later = gateway.PrewarmLater()
    later.remember([LOCAL_NODE])
    assert not later.pending
    _session(later, f"CHECKPRESENT {KEY}\nREMOVE {KEY}\n")
    assert warmed == []
