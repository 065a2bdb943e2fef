"""Proxies of proxies: `updateproxy` follows gateway chains on the branch (cycle-safe), and a
middle gateway serves what lies behind a gateway it proxies without re-running updateproxy.

Three gateways, innermost first: A proxies px (and later px2); B proxies A (`annex-proxy`);
C proxies B. Remote URLs are ssh URLs that are never contacted: only the branch and git config
matter here. Branches travel with `git fetch` as they would between real gateways.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from annextui.backend.admin import Admin
from annextui.backend.branch import BranchView
from annextui.backend.repo import Repository
from annextui.backend.state import load_state
from annextui.proxycore.targets import RemoteTarget, TargetRefused, select_target

UA, UB, UC = (f"9a7e0000-0000-4000-8000-00000000000{i}" for i in "abc")
UP, UP2 = "40de0000-0000-4000-8000-0000000000f1", "40de0000-0000-4000-8000-0000000000f2"
ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
    "PATH": "/usr/bin:/bin",
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=ENV
    ).stdout.strip()


def gateway(root: Path, name: str, uuid: str) -> Path:
    path = root / name
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True, env=ENV)
    git(path, "config", "annex.uuid", uuid)
    Admin(Repository(path)).init(name)
    return path


def remote(repo: Path, name: str, uuid: str, *, proxy: bool = True) -> None:
    git(repo, "remote", "add", name, f"ssh://host-{name}/srv/{name}")
    git(repo, "config", f"remote.{name}.annex-uuid", uuid)
    if proxy:
        git(repo, "config", f"remote.{name}.annex-proxy", "true")


def fetch(repo: Path, name: str, other: Path) -> None:
    git(repo, "fetch", "-q", str(other), f"+refs/heads/git-annex:refs/remotes/{name}/git-annex")


def logged(repo: Path) -> dict[str, str]:
    r = Repository(repo)
    return {p.name: p.uuid for p in load_state(BranchView(r)).proxies.get(r.uuid or "", [])}


def select(repo: Path, uuid: str) -> object:
    r = Repository(repo)
    return select_target(r, load_state(BranchView(r)), uuid)


@pytest.fixture
def chain(tmp_path: Path) -> dict[str, Path]:
    a, b, c = gateway(tmp_path, "A", UA), gateway(tmp_path, "B", UB), gateway(tmp_path, "C", UC)
    remote(a, "px", UP)
    Admin(Repository(a)).updateproxy()
    remote(b, "a", UA)
    fetch(b, "a", a)
    Admin(Repository(b)).updateproxy()
    assert logged(b) == {"a": UA, "a-px": UP}  # git-annex's own one level
    # A starts proxying px2; B merges A's branch but does not run updateproxy
    remote(a, "px2", UP2)
    Admin(Repository(a)).updateproxy()
    fetch(b, "a", a)
    Admin(Repository(b))  # merges, as any git-annex command there would
    remote(c, "b", UB)
    fetch(c, "b", b)
    return {"A": a, "B": b, "C": c}


def test_updateproxy_follows_the_chain(chain: dict[str, Path]) -> None:
    c = chain["C"]
    out = Admin(Repository(c)).updateproxy()
    assert logged(c) == {"b": UB, "b-a": UA, "b-a-px": UP, "b-a-px2": UP2}
    assert "Started proxying for b-a-px2" in out.lines


def test_middle_gateway_serves_what_it_has_not_logged(chain: dict[str, Path]) -> None:
    b = chain["B"]
    assert UP2 not in logged(b).values()
    t = select(b, UP2)
    assert isinstance(t, RemoteTarget)
    assert t.remote.name == "a-px2"
    assert t.remote.url == "ssh://host-a/srv/a"  # reached through A, with --uuid px2
    # only because annex-proxy is set on `a` here: the branch alone enables nothing
    git(b, "config", "--unset", "remote.a.annex-proxy")
    with pytest.raises(TargetRefused):
        select(b, UP2)


def test_outer_gateway_reaches_deep_remotes(chain: dict[str, Path]) -> None:
    c = chain["C"]
    Admin(Repository(c)).updateproxy()
    t = select(c, UP2)
    assert isinstance(t, RemoteTarget)
    assert t.remote.name == "b-a-px2"
    assert t.remote.url == "ssh://host-b/srv/b"
    assert t.remote.option("annex-proxied-by") == UB


def test_cycles_end(chain: dict[str, Path]) -> None:
    a, c = chain["A"], chain["C"]
    Admin(Repository(c)).updateproxy()
    # A also proxies C: A -> C -> B -> A ... must not loop, nor list A itself
    remote(a, "c", UC)
    fetch(a, "c", c)
    out = Admin(Repository(a)).updateproxy()
    got = logged(a)
    assert UA not in got.values()
    assert got["c"] == UC
    assert got["c-b"] == UB
    # px and px2 are A's own remotes: not listed again through the loop
    assert [n for n, u in got.items() if u == UP] == ["px"]
    assert out.changed
