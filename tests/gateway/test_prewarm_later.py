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

from annextui.backend.repo import Remote
from annextui.proxycore import gateway
from annextui.proxycore.server import serve
from tests.proxycore.test_server import KEY, N1, N2, Script, ScriptedPeer, U

N3 = "40de0000-0000-4000-8000-000000000003"
SSH_NODE = Remote("node3", "ssh://n3host/srv/node3.git", N3)
LOCAL_NODE = Remote("node1", "/srv/node1.git", "40de0000-0000-4000-8000-000000000001")


@pytest.fixture
def warmed(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The remotes of each pre-warm started (by name)."""
    calls: list[list[str]] = []

    def record(remotes: Sequence[Remote]) -> None:
        calls.append([r.name for r in remotes])

    monkeypatch.setattr(gateway, "prewarm_ssh", record)
    return calls


def _session(later: gateway.PrewarmLater, requests: str) -> list[str]:
    client = Script(f"VERSION 4\n{requests}".encode())
    res = serve(ScriptedPeer(), client, on_request=later.on_request)
    assert res.error is None
    lines = bytes(client.out).decode().splitlines()
    assert lines[:2] == [f"AUTH-SUCCESS {U}", "VERSION 4"]
    return lines[2:]


def test_a_one_request_session_starts_no_prewarm(warmed: list[list[str]]) -> None:
    later = gateway.PrewarmLater()
    later.remember([LOCAL_NODE, SSH_NODE])
    assert later.pending
    assert _session(later, f"CHECKPRESENT {KEY}\n") == ["SUCCESS"]
    assert warmed == []


def test_the_second_request_for_a_key_starts_it_once(warmed: list[list[str]]) -> None:
    later = gateway.PrewarmLater()
    later.remember([LOCAL_NODE, SSH_NODE])
    replies = _session(later, f"CHECKPRESENT {KEY}\nGETTIMESTAMP\nREMOVE {KEY}\nPUT f {KEY}\n")
    plus = f"{N1} {N2}"
    assert replies == [
        "SUCCESS",
        "TIMESTAMP 42",
        f"SUCCESS-PLUS {plus}",
        f"ALREADY-HAVE-PLUS {plus}",
    ]
    assert warmed == [["node3"]]  # only the ssh node; at REMOVE, not again at PUT


def test_nothing_to_prewarm_without_an_ssh_node(warmed: list[list[str]]) -> None:
    later = gateway.PrewarmLater()
    later.remember([LOCAL_NODE])
    assert not later.pending
    _session(later, f"CHECKPRESENT {KEY}\nREMOVE {KEY}\n")
    assert warmed == []
