"""What a one-shot cluster GET session of annextui-shell imports, with a real git-annex client.

A real `git annex get` from the cluster (topology: tests/gateway/topology.py, local nodes
node1 and node2, ssh node node3) reaches the gateway over sshd; the client's `annex-shell` is a
wrapper running annextui-shell's own `main` that, once the session is served, records which
heavy packages the process imported. Reading the gateway's state and the keys' location logs
must not import dulwich (~40 ms of a session's start-up: backend/catfile.py, repo.py
`Repository.from_layout`), nor textual or rich; paramiko is expected (node3 is an ssh node).

A one-file get whose key a node in the gateway's process holds never needs node3: that session
imports neither ssh.py nor paramiko (the ssh pre-warm waits for the client's second request,
gateway.PrewarmLater), nor dataclasses, nor hashlib (hash directories take the interpreter's
own MD5: keys.py); the same get of a node3 file still reaches node3. A one-file copy to the
balanced cluster evaluates the nodes' preferred content with no class of annextui's declared as a
dataclass (~0.5 ms each) and without the expression analysis.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.gateway import topology as T
from tests.gateway.test_gateway_interop import fsck_node, holders

pytestmark = [pytest.mark.ssh, pytest.mark.slow]

CLUSTER = f"origin-{T.CLUSTER_NAME}"
ROOT = Path(__file__).resolve().parents[2]
WATCHED = (
    "dulwich",
    "textual",
    "rich",
    "paramiko",
    "annextui.proxycore.ssh",
    "dataclasses",
    "hashlib",
    "annextui.backend.preferred.evaluate",
    "annextui.backend.preferred.analysis",
)

_WRAPPER = """#!{python}
import sys
sys.path.insert(0, {root!r})
from annextui.proxycore import shell
from annextui.proxycore.processexit import exit_process
rc = shell.main(sys.argv[1:])
seen = [m for m in {watched!r} if m in sys.modules]
if "dataclasses" in sys.modules:  # which of annextui's classes were declared as dataclasses
    from dataclasses import is_dataclass
    seen += sorted(
        f"dataclass:{{n}}.{{k}}"
        for n, m in list(sys.modules.items())
        if n.startswith("annextui.") and m is not None
        for k, v in vars(m).items()
        if isinstance(v, type) and v.__module__ == n and is_dataclass(v)
    )
with open({out!r}, "a") as f:
    f.write(sys.argv[1] + " " + ",".join(seen) + "\\n")
exit_process(rc)
"""


def test_a_cluster_get_session_does_not_import_dulwich(topo: T.Topology, tmp_path: Path) -> None:
    env, cl = topo.env, topo.client
    # node1, node2 (served in the gateway's process) and node3 (one more ssh hop) hold keys
    files = {
        f"imports/{node}-{i}.bin": f"{node} {i}\n".encode() * 700
        for node in topo.nodes
        for i in range(3)
    }
    keys = env.add_files(cl, files)
    for f in files:
        env.annex(cl, "copy", "-q", "--to", f"origin-{f.split('/')[1].split('-')[0]}", f)
    env.annex(cl, "drop", "-q", "--force", "imports")
    for f, key in keys.items():
        assert holders(topo, key) == {topo.uuids[f.split("/")[1].split("-")[0]]}

    p2p = _get_recording_imports(topo, tmp_path, "imports")
    for f, data in files.items():
        assert (cl / f).read_bytes() == data
    _fsck(topo, "imports", len(files))
    for mods in p2p:
        for heavy in ("dulwich", "textual", "rich"):
            assert heavy not in mods, p2p


def test_a_one_file_get_of_an_in_process_key_imports_no_ssh(
    topo: T.Topology, tmp_path: Path
) -> None:
    env, cl = topo.env, topo.client
    files = {f"onefile/{node}.bin": f"one file on {node}\n".encode() * 500 for node in topo.nodes}
    keys = env.add_files(cl, files)
    for f in files:
        env.annex(cl, "copy", "-q", "--to", f"origin-{Path(f).stem}", f)
    env.annex(cl, "drop", "-q", "--force", "onefile")
    for f, key in keys.items():
        assert holders(topo, key) == {topo.uuids[Path(f).stem]}

    for node in ("node1", "node3"):
        f = f"onefile/{node}.bin"
        (p2p,) = _get_recording_imports(topo, tmp_path / node, f)
        assert (cl / f).read_bytes() == files[f]
        if node == "node1":  # served in the gateway's process: no ssh node was needed
            for unused in (
                "annextui.proxycore.ssh",
                "paramiko",
                "dataclasses",
                "dulwich",
                "hashlib",
            ):
                assert unused not in p2p, (node, p2p)
        else:  # node3 is reached over ssh, now by the GET itself
            assert "paramiko" in p2p, (node, p2p)
    _fsck(topo, "onefile", len(files))


def test_a_one_file_copy_to_the_balanced_cluster_declares_no_dataclass(
    topo: T.Topology, tmp_path: Path
) -> None:
    env, cl = topo.env, topo.client
    f = "onecopy/placed.bin"
    (key,) = env.add_files(cl, {f: b"placed by balanced preferred content\n" * 300}).values()
    sessions = _recording_imports(topo, tmp_path, "copy", "--to", CLUSTER, f)
    placed = [mods for mods in sessions if "annextui.backend.preferred.evaluate" in mods]
    assert placed, sessions  # the PUT's placement evaluated the nodes' preferred content
    for mods in placed:
        # its classes are annextui.values (dulwich, for the journal's commit, and paramiko
        # import `dataclasses` themselves), and the expression analysis is not loaded
        assert not [m for m in mods if m.startswith("dataclass:annextui.backend.")], sessions
        assert "annextui.backend.preferred.analysis" not in mods, sessions
    # balanced=backup with no count: exactly one node took it, and the client's git-annex
    # was told so
    held = holders(topo, key)
    assert len(held) == 1, held
    (where,) = env.annex_json(cl, "whereis", "--json", f)
    assert held <= {w["uuid"] for w in where["whereis"]}, where
    _fsck(topo, "onecopy", 1)


def _get_recording_imports(topo: T.Topology, tmp_path: Path, path: str) -> list[list[str]]:
    """`git annex get --from` the cluster of `path` through the recording wrapper; the watched
    modules each p2pstdio session imported."""
    return _recording_imports(topo, tmp_path, "get", "--from", CLUSTER, path)


def _recording_imports(topo: T.Topology, tmp_path: Path, *annex: str) -> list[list[str]]:
    """`git annex ANNEX...` through the recording wrapper; the watched modules each p2pstdio
    session imported."""
    env, cl = topo.env, topo.client
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "imports.txt"
    wrapper = tmp_path / "shell-recording-imports"
    wrapper.write_text(
        _WRAPPER.format(python=sys.executable, root=str(ROOT), out=str(out), watched=WATCHED)
    )
    wrapper.chmod(0o755)
    shell = env.git(cl, "config", "remote.origin.annex-shell")
    env.git(cl, "config", "remote.origin.annex-shell", str(wrapper))
    try:
        res = env.annex(cl, *annex, check=False)
    finally:
        env.git(cl, "config", "remote.origin.annex-shell", shell)
    assert res.returncode == 0, res.stdout + res.stderr
    sessions = [line.split(" ", 1) for line in out.read_text().splitlines()]
    p2p = [mods.split(",") if mods else [] for cmd, mods in sessions if cmd == "p2pstdio"]
    assert p2p, sessions  # the sessions went through the wrapper
    return p2p


def _fsck(topo: T.Topology, path: str, count: int) -> None:
    """The client's copies and every node's objects pass git-annex's own fsck."""
    fsck = topo.env.annex_json(topo.client, "fsck", path)
    assert len(fsck) == count, fsck
    assert all(r["success"] for r in fsck), fsck
    for node in topo.nodes.values():
        fsck_node(topo, node)
