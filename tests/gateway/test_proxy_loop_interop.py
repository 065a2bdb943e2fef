"""Three gateways whose proxy routes go round in a circle (issue 11, item 6).

    client ──ssh──▶ A ──ssh──▶ B ──ssh──▶ C ──ssh──▶ A ──▶ …

Built by git-annex itself, so that every gateway believes the next one reaches repository t:
C first proxied t (a path remote) and B proxied it through C (an ssh remote `t` at C's URL,
`--uuid` t); A learned `B-t` from B's proxy.log (`updateproxy`); then C stopped proxying t,
took A as a proxied remote and logged `A-B-t` (proxy-inherited). No gateway's proxy.log
mentions a route back to itself by name, so only the gateways a request has passed, carried
along each hop as `BYPASS`, can stop it. Each shell a gateway starts is counted through a
wrapper around annextui-shell that logs its argv: the count is the assertion, not time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.gateway.test_proxy_chain_interop import _gateway, _path_remote, _pull, _ssh_remote
from tests.support import annex as annex_support
from tests.support import procs
from tests.support.annex import AnnexEnv
from tests.support.sshd import Sshd

pytestmark = [pytest.mark.ssh, pytest.mark.slow]

GA = "9a7e0000-0000-4000-8000-0000000001aa"
GB = "9a7e0000-0000-4000-8000-0000000001bb"
GC = "9a7e0000-0000-4000-8000-0000000001cc"
PT = "40de0000-0000-4000-8000-0000000001f3"
CLIENT = "c11e0000-0000-4000-8000-0000000001c1"
HOSTS = {"A": "ring-a", "B": "ring-b", "C": "ring-c"}
RUNAWAY = 12  # shells for one request beyond which it is going round in circles
STALLED = 120.0  # seconds: a refused request takes about one


@dataclass
class Ring:
    env: AnnexEnv
    root: Path
    gateways: dict[str, Path]
    client: Path
    log: Path  # one line per shell started: its argv

    def shells(self) -> list[str]:
        try:
            return self.log.read_text().splitlines()
        except FileNotFoundError:
            return []


def _counting_shell(root: Path, log: Path) -> Path:
    """annextui-shell, logging each start (the argv names the repository it serves)."""
    path = root / "counted-shell"
    path.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec annextui-shell "$@"\n')
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def ring(
    tmp_path_factory: pytest.TempPathFactory, git_annex_bin: Path, sshd: Sshd
) -> Iterator[Ring]:
    with annex_support.ssh_world(tmp_path_factory, "ring", git_annex_bin, sshd) as (root, env):
        for host in HOSTS.values():
            sshd.add_host(host)
        cfg = sshd.config_path
        log = root / "shells.log"
        shell = str(_counting_shell(root, log))
        seed = env.make_annex_repo(root / "seed", description="seed")
        env.add_files(seed, {"README": "proxy ring test\n"}, annex=False)
        gws = {
            n: _gateway(env, seed, root / f"{n}.git", u, f"gw{n}")
            for n, u in (("A", GA), ("B", GB), ("C", GC))
        }
        a, b, c = gws["A"], gws["B"], gws["C"]

        def url(n: str) -> str:
            return f"ssh://{HOSTS[n]}{gws[n]}"

        t = env.make_annex_repo(root / "t.git", PT, "t", bare=True)
        _path_remote(env, c, "t", t, PT)
        assert "Started proxying for t" in env.annex(c, "updateproxy").stdout
        _ssh_remote(env, b, "t", url("C"), PT, cfg)  # B reaches t through C's gateway
        assert "Started proxying for t" in env.annex(b, "updateproxy").stdout
        _ssh_remote(env, a, "B", url("B"), GB, cfg)
        _pull(env, a, "B")
        assert "Started proxying for B-t" in env.annex(a, "updateproxy").stdout
        _ssh_remote(env, c, "A", url("A"), GA, cfg)
        _pull(env, c, "A")
        env.git(c, "remote", "remove", "t")  # C stops proxying t itself ...
        env.annex(c, "updateproxy")  # ... and now logs A-B-t: the circle is closed
        for repo, remote in ((a, "B"), (b, "t"), (c, "A")):
            env.git(repo, "config", f"remote.{remote}.annex-shell", shell)
        client = env.clone(
            url("A"), root / "client", uuid=CLIENT, origin="origin", annex_init=False
        )
        env.git(client, "config", "remote.origin.annex-shell", shell)
        env.annex(client, "init", "-q", "client")
        _pull(env, client, "origin")
        yield Ring(env, root, gws, client, log)


def _relays(ring: Ring) -> list[procs.ProcInfo]:
    root = str(ring.root)
    return [p for p in procs.processes() if "p2pstdio" in p.cmdline and root in p.cmdline]


def run_counted(ring: Ring, *args: str) -> tuple[int | None, str, list[str]]:
    """`git annex ARGS` in the client: (status, output, shells started). A relay going round
    in circles (more than RUNAWAY shells) is ended by PID and reported with status None."""
    ring.log.unlink(missing_ok=True)
    proc = subprocess.Popen(
        ["git", "annex", *args],
        cwd=ring.client,
        env=ring.env.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    runaway = stalled = False
    deadline = time.monotonic() + STALLED
    while proc.poll() is None:
        runaway = len(ring.shells()) > RUNAWAY
        stalled = time.monotonic() > deadline  # hops waiting on each other: ended the same way
        if runaway or stalled:
            os.killpg(proc.pid, signal.SIGKILL)
            for _ in range(100):  # each hop keeps starting the next until all are gone
                left = _relays(ring)
                if not left:
                    break
                procs.kill_pids([p.pid for p in left], timeout=1.0, sig=signal.SIGKILL)
            break
        time.sleep(0.02)
    out, _ = proc.communicate(timeout=60)
    text = out.decode(errors="replace")
    assert not stalled, f"git annex {' '.join(args)} still ran after {STALLED:g} s\n{text}"
    return (None if runaway else proc.returncode), text, ring.shells()


def test_three_gateways_in_a_circle_end_with_a_clear_failure(ring: Ring) -> None:
    env = ring.env
    info = env.annex(ring.client, "info", "origin").stdout
    assert "origin-B-t" in info  # the client sees t through A, as A's proxy.log says
    env.add_files(ring.client, {"ring/a.bin": os.urandom(5000)})
    status, out, shells = run_counted(ring, "copy", "--to", "origin-B-t", "ring")
    assert status is not None, f"relayed in circles ({len(shells)} shells): {shells}\n{out}"
    assert status != 0, out
    assert "failed" in out
    assert "already passed" in out, out  # the reason reaches the client
    # client -> A, A -> B, B -> C; C refuses to send it on to A, which it has passed
    served = [next(n for n, p in ring.gateways.items() if str(p) in line) for line in shells]
    assert served == ["A", "B", "C"], shells
    assert not [p for p in _relays(ring)]  # every shell of the relay has ended
    assert not any((ring.root / "t.git" / "annex" / "objects").rglob("*"))
