"""Proxies of proxies with real data: a real git-annex client two gateway hops from a repository.

    client ──ssh──▶ B (annextui-shell) ──ssh──▶ A (annextui-shell) ──path──▶ px

Built by git-annex itself: A proxies the plain repository px (`annex-proxy`, `updateproxy`); B
has A as an ssh remote with `annex-proxy` and ran `updateproxy` *before* A proxied px, then only
fetched and merged A's git-annex branch. Both gateways' remotes use `annex-shell =
annextui-shell` and `annex-ssh-options = -F <test ssh config>`.

What annextui/backend/proxychain.py and proxycore/targets.py claim, and what is tested here:
* B serves a connection for px's UUID (`p2pstdio B … --uuid PX`) without re-running
  `updateproxy`: it learns from A's merged proxy.log that px lies behind A. A git-annex client
  only instantiates proxied remotes from B's own proxy.log entry (one level), so before B logs
  px the client reaches it through a remote of its own (B's URL, px's UUID);
* once B runs git-annex's `updateproxy` (A's entries are proxy-inherited), the client gets
  `origin-A-px`;
* gateways proxying each other (A proxies B too) never relay in circles, even with a stale
  proxy.log on one side.

Every data test checks real outcomes: px's object store and a real `git annex fsck` in px, the
location logs of the client, both gateways and px (`whereis`), and the bytes got back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.gateway import topology as T
from tests.gateway.test_gateway_interop import client_whereis, fsck_node, gateway_whereis, objects
from tests.support import annex as annex_support
from tests.support import procs
from tests.support.annex import AnnexEnv
from tests.support.sshd import Sshd

pytestmark = [pytest.mark.ssh, pytest.mark.slow]

GA = "9a7e0000-0000-4000-8000-0000000000aa"
GB = "9a7e0000-0000-4000-8000-0000000000bb"
PX = T.PX
PY = "40de0000-0000-4000-8000-0000000000f2"
CLIENT = T.CLIENT
HOST_A, HOST_B = "chain-a", "chain-b"
DEEP = "origin-A-px"  # the name the client gives px once B has logged it
LOOP_SHELLS = 8  # more relaying shells than this for one request: it goes round in circles


@dataclass
class Chain:
    topo: T.Topology  # gw = B (the client's gateway), px = the repository two hops away
    a: Path

    @property
    def env(self) -> AnnexEnv:
        return self.topo.env

    @property
    def b(self) -> Path:
        return self.topo.gw


def _gateway(env: AnnexEnv, seed: Path, path: Path, uuid: str, desc: str) -> Path:
    gw = env.clone(seed, path, bare=True, annex_init=False)
    env.git(gw, "remote", "remove", "origin")
    env.git(gw, "config", "annex.uuid", uuid)
    env.annex(gw, "init", "-q", desc)
    return gw


def _ssh_remote(env: AnnexEnv, repo: Path, name: str, url: str, uuid: str, cfg: Path) -> None:
    """A gateway's remote `name` that is another gateway, proxied (`annex-proxy`)."""
    env.git(repo, "remote", "add", name, url)
    env.git(repo, "config", f"remote.{name}.annex-uuid", uuid)
    env.git(repo, "config", f"remote.{name}.annex-shell", "annextui-shell")
    env.git(repo, "config", f"remote.{name}.annex-ssh-options", f"-F {cfg}")
    env.git(repo, "config", f"remote.{name}.annex-proxy", "true")


def _path_remote(env: AnnexEnv, repo: Path, name: str, path: Path, uuid: str) -> None:
    env.git(repo, "remote", "add", name, str(path))
    env.git(repo, "config", f"remote.{name}.annex-uuid", uuid)
    env.git(repo, "config", f"remote.{name}.annex-proxy", "true")


def _pull(env: AnnexEnv, repo: Path, remote: str) -> None:
    env.git(repo, "fetch", "-q", remote)
    env.annex(repo, "merge", "-q")


@pytest.fixture(scope="module")
def chain(
    tmp_path_factory: pytest.TempPathFactory, git_annex_bin: Path, sshd: Sshd
) -> Iterator[Chain]:
    with annex_support.ssh_world(tmp_path_factory, "chain", git_annex_bin, sshd) as (
        root,
        env,
    ):
        sshd.add_host(HOST_A)
        sshd.add_host(HOST_B)
        cfg = sshd.config_path
        seed = env.make_annex_repo(root / "seed", description="seed")
        env.add_files(seed, {"README": "proxy chain test\n"}, annex=False)
        a = _gateway(env, seed, root / "A.git", GA, "gwA")
        b = _gateway(env, seed, root / "B.git", GB, "gwB")
        _ssh_remote(env, b, "A", f"ssh://{HOST_A}{a}", GA, cfg)
        _pull(env, b, "A")
        assert "Started proxying for A" in env.annex(b, "updateproxy").stdout
        # only now does A start proxying px; B merges A's branch but runs no updateproxy
        px = env.make_annex_repo(root / "px.git", PX, "px", bare=True)
        _path_remote(env, a, "px", px, PX)
        assert "Started proxying for px" in env.annex(a, "updateproxy").stdout
        _pull(env, b, "A")
        client = env.clone(
            f"ssh://{HOST_B}{b}", root / "client", uuid=CLIENT, origin="origin", annex_init=False
        )
        env.git(client, "config", "remote.origin.annex-shell", "annextui-shell")
        env.annex(client, "init", "-q", "client")
        _pull(env, client, "origin")
        topo = T.Topology(
            env,
            sshd,
            root,
            b,
            {"px": px},
            px,
            client,
            uuids={"A": GA, "B": GB, "px": PX, "client": CLIENT},
        )
        yield Chain(topo, a)


# -- helpers ---------------------------------------------------------------------------------------


def proxying(ch: Chain) -> set[str]:
    """The proxied remotes the client instantiates for origin (`git annex info origin`)."""
    for line in ch.env.annex(ch.topo.client, "info", "origin").stdout.splitlines():
        if line.startswith("proxying:"):
            return set(line.split()[1:])
    return set()


def logged_by(ch: Chain, repo: Path, uuid: str) -> dict[str, str]:
    """`uuid`'s own proxy.log entry on `repo`'s git-annex branch: {name: proxied uuid}."""
    text = ch.env.git(repo, "show", "git-annex:proxy.log", check=False)
    out: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[1] == uuid:
            out = {n: u for u, _, n in (f.partition(":") for f in fields[2:])}
    return out


def here(ch: Chain, repo: Path, key: str) -> set[str]:
    return gateway_whereis(ch.topo, repo, key)


def roundtrip(ch: Chain, remote: str, prefix: str) -> None:
    """copy --to, fsck, whereis everywhere, drop, get --from, drop --from, through `remote`."""
    env, cl, px = ch.env, ch.topo.client, ch.topo.px
    files = {f"{prefix}/big.bin": os.urandom(1_500_000), f"{prefix}/small.bin": os.urandom(700)}
    keys = env.add_files(cl, files)
    env.annex(cl, "copy", "--to", remote, prefix)
    for f, k in keys.items():
        stored = [p for p in (px / "annex" / "objects").rglob(k) if p.is_file()]
        assert len(stored) == 1, f
        assert stored[0].read_bytes() == files[f]
    fsck_node(ch.topo, px)
    assert all(r["success"] for r in env.annex_json(cl, "fsck", "--from", remote, prefix))
    cw = client_whereis(ch.topo, cl, prefix)
    for f, k in keys.items():
        assert cw[f] == {CLIENT, PX}, f
        assert here(ch, px, k) == {PX}  # px's own location log
        assert here(ch, ch.a, k) == {PX}  # A relayed it, A recorded it
        assert here(ch, ch.b, k) == {PX}  # B relayed A's SUCCESS, B recorded it
    assert not any((ch.b / "annex" / "journal").glob("*"))  # committed at session end
    assert not any((ch.a / "annex" / "journal").glob("*"))
    env.annex(cl, "drop", prefix)
    assert all(not (cl / f).exists() for f in files)  # locked files: dangling links
    env.annex(cl, "get", "--from", remote, prefix)
    for f, data in files.items():
        assert (cl / f).read_bytes() == data
    env.annex(cl, "drop", "--from", remote, prefix)
    assert objects(px) & set(keys.values()) == set()
    cw = client_whereis(ch.topo, cl, prefix)
    for f, k in keys.items():
        assert cw[f] == {CLIENT}, f
        assert here(ch, px, k) == set()
        assert here(ch, ch.a, k) == set()
        assert here(ch, ch.b, k) == set()
    fsck_node(ch.topo, px)


def own_remote(ch: Chain, name: str, uuid: str) -> None:
    """A client remote for `uuid` at B's URL: git-annex connects with `--uuid <uuid>`."""
    env, cl = ch.env, ch.topo.client
    env.git(cl, "remote", "add", name, f"ssh://{HOST_B}{ch.b}")
    env.git(cl, "config", f"remote.{name}.annex-uuid", uuid)
    env.git(cl, "config", f"remote.{name}.annex-shell", "annextui-shell")
    env.git(cl, "config", f"remote.{name}.fetch", "")  # P2P only


def _relaying_shells(ch: Chain) -> list[procs.ProcInfo]:
    root = str(ch.topo.root)
    return [p for p in procs.processes() if "p2pstdio" in p.cmdline and root in p.cmdline]


@dataclass
class Watched:
    status: int | None  # None: it went round in circles and was ended
    out: str
    most: int  # most relaying processes (client ssh, shells) seen at once
    served: set[str]  # the repositories a relaying process was started for

    def describe(self) -> str:
        return f"status {self.status}, {self.most} relaying processes for {self.served}\n{self.out}"


def run_watched(ch: Chain, *args: str) -> Watched:
    """`git annex ARGS` in the client, watching the shells it causes (processes there before
    are not counted). A runaway relay is ended by PID."""
    before = {p.pid for p in _relaying_shells(ch)}
    repos = {str(ch.a): "A", str(ch.b): "B"}
    proc = subprocess.Popen(
        ["git", "annex", *args],
        cwd=ch.topo.client,
        env=ch.env.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    most, served = 0, set()
    deadline = time.monotonic() + 60
    looped = False
    while proc.poll() is None and time.monotonic() < deadline:
        now = [p for p in _relaying_shells(ch) if p.pid not in before]
        most = max(most, len(now))
        served |= {name for p in now for path, name in repos.items() if path in p.cmdline}
        if most > LOOP_SHELLS:
            looped = True
            break
        time.sleep(0.02)
    if looped or proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        for _ in range(100):  # the relay keeps spawning hops until its ends are gone
            shells = [p for p in _relaying_shells(ch) if p.pid not in before]
            if not shells:
                break
            procs.kill_pids([p.pid for p in shells], timeout=1.0, sig=signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    return Watched(None if looped else proc.returncode, out.decode(errors="replace"), most, served)


# -- B serves what lies behind A before B has logged it --------------------------------------------


def _middle_gateway_has_not_logged_px(chain: Chain) -> None:
    assert logged_by(chain, chain.a, GA) == {"px": PX}
    assert logged_by(chain, chain.b, GB) == {"A": GA}  # A's px merged, not logged
    assert proxying(chain) == {"origin-A"}  # so a git-annex client sees one level only


def _middle_gateway_serves_px_without_updateproxy(chain: Chain) -> None:
    own_remote(chain, "via-b-px", PX)
    roundtrip(chain, "via-b-px", "early")
    assert logged_by(chain, chain.b, GB) == {"A": GA}  # still unlogged: served all the same


# -- once B logs it: git-annex's own proxied remote, two hops deep ------------------------------


def _client_reaches_px_two_hops_away(chain: Chain) -> None:
    env, b = chain.env, chain.b
    assert "Started proxying for A-px" in env.annex(b, "updateproxy").stdout
    assert logged_by(chain, b, GB) == {"A": GA, "A-px": PX}
    _pull(env, chain.topo.client, "origin")
    assert proxying(chain) == {"origin-A", DEEP}
    info = env.annex(chain.topo.client, "info", DEEP).stdout
    assert f"uuid: {PX}" in info
    roundtrip(chain, DEEP, "deep")


# -- gateways proxying each other ------------------------------------------------------------------


def _gateways_proxying_each_other_do_not_loop(chain: Chain) -> None:
    env, a, b, cl = chain.env, chain.a, chain.b, chain.topo.client
    _ssh_remote(env, a, "B", f"ssh://{HOST_B}{b}", GB, chain.topo.ssh_config)
    _pull(env, a, "B")
    env.annex(a, "updateproxy", timeout=60)
    _pull(env, b, "A")
    env.annex(b, "updateproxy", timeout=60)
    # annextui's updateproxy follows chains on the branch: it ends, and never lists A itself
    res = env.run([sys.executable, "-m", "annextui", "-C", str(a), "updateproxy"], check=False)
    assert res.returncode == 0, res.stderr
    assert GA not in logged_by(chain, a, GA).values()
    _pull(env, cl, "origin")
    assert {"origin-A", DEEP} <= proxying(chain)
    roundtrip(chain, DEEP, "cycle")
    # a repository neither gateway proxies: refused at once, not passed round
    own_remote(chain, "nowhere", PY)
    env.add_files(cl, {"nowhere/a.bin": os.urandom(500)})
    w = run_watched(chain, "copy", "--to", "nowhere", "nowhere")
    assert w.status not in (None, 0), w.describe()
    assert "A" not in w.served, w.describe()  # B answered itself
    assert "expected repository UUID" in w.out


def _stale_py(ch: Chain) -> None:
    """B proxied py, A logged it as `B-py`; then B stopped and merged A's (stale) branch."""
    env, a, b = ch.env, ch.a, ch.b
    py = env.make_annex_repo(ch.topo.root / "py.git", PY, "py", bare=True)
    _path_remote(env, b, "py", py, PY)
    env.annex(b, "updateproxy")
    _pull(env, a, "B")
    env.annex(a, "updateproxy")
    assert logged_by(ch, a, GA).get("B-py") == PY
    env.git(b, "config", "--unset", "remote.py.annex-proxy")
    assert "Stopped proxying for py" in env.annex(b, "updateproxy").stdout
    _pull(env, b, "A")
    assert PY not in logged_by(ch, b, GB).values()


def _stale_proxy_entry_does_not_relay_in_circles(chain: Chain) -> None:
    """B no longer proxies py, but A's proxy.log still says `B-py`: B must not send a request
    for py to A (A would send it straight back, and so on, a new shell per hop)."""
    _stale_py(chain)
    own_remote(chain, "stale-py", PY)
    chain.env.add_files(chain.topo.client, {"stale/a.bin": os.urandom(500)})
    w = run_watched(chain, "copy", "--to", "stale-py", "stale")
    assert w.status is not None, f"relayed in circles: {w.describe()}"
    assert w.status != 0
    assert "B" in w.served, w.describe()  # the watch sees the request
    assert "A" not in w.served, w.describe()  # refused by B, never sent to A
    assert "failed" in w.out


def _stale_entries_logged_on_both_sides_do_not_loop(chain: Chain) -> None:
    """Now B runs git-annex's updateproxy after merging A's `B-py`: B logs `A-B-py` (proxy
    inheritance), so both gateways list py, each through the other."""
    env, b = chain.env, chain.b
    env.annex(b, "updateproxy")
    assert logged_by(chain, b, GB).get("A-B-py") == PY
    w = run_watched(chain, "copy", "--to", "stale-py", "stale")
    assert w.status is not None, f"relayed in circles: {w.describe()}"
    assert w.status != 0
    assert "A" not in w.served, w.describe()


def test_proxy_chain_stages(chain: Chain) -> None:
    """The stages above, in order: each builds on the state the previous one left (B logging
    px, A proxying B, stale entries), so they run as one test whatever the xdist scheduling."""
    _middle_gateway_has_not_logged_px(chain)
    _middle_gateway_serves_px_without_updateproxy(chain)
    _client_reaches_px_two_hops_away(chain)
    _gateways_proxying_each_other_do_not_loop(chain)
    _stale_proxy_entry_does_not_relay_in_circles(chain)
    _stale_entries_logged_on_both_sides_do_not_loop(chain)
