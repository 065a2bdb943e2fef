"""The command line never acts on the wrong repository and never shows a traceback.

A mistyped `-C`, a repository the user may only read, a demo path that is taken or unwritable:
each is one line `annextui: ...` on stderr, exit 1, and nothing written anywhere (every file of
the repository byte-identical, lock files included). Commands run as a separate process, without
the privilege to ignore file modes (tests/support/unwritable.py), against repositories made by
the real git-annex, which also judges what a repository we may only read still answers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.annex import AnnexEnv
from tests.support.unwritable import read_only, tree_fingerprint


@dataclass(frozen=True)
class World:
    annex: AnnexEnv
    gw: Path  # the repository under test: a remote `other` whose git-annex branch is unmerged
    prefix: list[str]  # runs a command without the power to ignore file modes

    def annextui(
        self,
        *args: str,
        cwd: Path | None = None,
        unprivileged: bool = True,
        env: dict[str, str | None] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        argv = [*(self.prefix if unprivileged else []), sys.executable, "-m", "annextui.cli"]
        # A bounded wait: a console wrongly opened (no terminal here) must fail, not hang.
        return self.annex.run(
            [*argv, *args], cwd or self.gw, check=False, env_extra=env, timeout=120
        )


@pytest.fixture
def world(annex_env: AnnexEnv, unprivileged: list[str]) -> World:
    gw = annex_env.make_annex_repo("gw", description="gateway")
    annex_env.annex(gw, "group", "here", "g0")
    other = annex_env.clone(gw, "other", description="elsewhere")
    annex_env.annex(other, "group", "here", "grp")
    annex_env.git(gw, "remote", "add", "other", "../other")
    # Cached as git-annex caches it on first use (both would write git config to learn it).
    uuid = annex_env.git(other, "config", "annex.uuid").strip()
    annex_env.git(gw, "config", "remote.other.annex-uuid", uuid)
    annex_env.git(gw, "fetch", "-q", "other")  # other/git-annex: not merged into ours yet
    return World(annex_env, gw, unprivileged)


def assert_one_line_failure(proc: subprocess.CompletedProcess[str]) -> str:
    """Exit 1, and stderr exactly one line `annextui: ...` (so no traceback)."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("annextui: "), proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    return lines[0]


@pytest.fixture
def locked(world: World) -> Iterator[World]:
    """The gateway with no write bit anywhere."""
    with read_only(world.gw):
        yield world


# Every subcommand that writes the repository (the issue names the first five).
WRITES = [
    ("maxsize", "here", "1G"),
    ("group", "here", "g1"),
    ("describe", "here", "new description"),
    ("initcluster", "c1"),
    ("merge",),
    ("ungroup", "here", "g0"),
    ("wanted", "here", "standard"),
    ("required", "here", "present"),
    ("groupwanted", "g1", "standard"),
    ("init", "again"),
    ("updatecluster",),
]


@pytest.mark.parametrize("args", WRITES, ids=lambda a: a[0])
def test_unwritable_repository_one_line_nothing_written(
    locked: World, args: tuple[str, ...]
) -> None:
    before = tree_fingerprint(locked.gw)
    proc = locked.annextui(*args)
    line = assert_one_line_failure(proc)
    assert "Permission denied" in line
    assert tree_fingerprint(locked.gw) == before


def test_unwritable_repository_json_failure_record(locked: World) -> None:
    proc = locked.annextui("maxsize", "--json", "here", "1G")
    assert_one_line_failure(proc)
    assert '"success": false' in proc.stdout
    assert '"command": "maxsize"' in proc.stdout


@pytest.mark.parametrize("args", [("group", "other"), ("maxsize", "here"), ("info",)])
def test_unwritable_repository_still_answers_queries(locked: World, args: tuple[str, ...]) -> None:
    """As git-annex does: it cannot merge other/git-annex, so reads include it unmerged."""
    before = tree_fingerprint(locked.gw)
    ours = locked.annextui(*args)
    assert ours.returncode == 0, ours.stderr
    assert ours.stderr == ""
    if args[0] != "info":
        theirs = locked.annex.run([*locked.prefix, "git", "annex", *args], locked.gw, check=False)
        assert theirs.returncode == 0, theirs.stderr
        assert ours.stdout == theirs.stdout
    if args == ("group", "other"):
        assert ours.stdout == "grp\n"
    assert tree_fingerprint(locked.gw) == before


def test_unwritable_annex_dir_leaves_git_config_alone(world: World) -> None:
    """git config writable, the journal not: initcluster must not record the cluster in git
    config and then fail on the journal (half done)."""
    annexdir = world.gw / ".git" / "annex"
    before = tree_fingerprint(world.gw)
    with read_only(annexdir):
        proc = world.annextui("initcluster", "c1")
    assert_one_line_failure(proc)
    assert tree_fingerprint(world.gw) == before
    assert (
        world.annex.git(world.gw, "config", "--get-regexp", "^annex[.]cluster", check=False) == ""
    )


@pytest.mark.parametrize("where", ["inside", "outside"])
def test_missing_dash_c_path_is_an_error(world: World, tmp_path: Path, where: str) -> None:
    """`-C typo` inside a repository must not fall back to the enclosing one."""
    cwd = world.gw if where == "inside" else tmp_path / "elsewhere"
    cwd.mkdir(exist_ok=True)
    before = tree_fingerprint(world.gw)
    for args in (
        ["-C", "typo", "maxsize", "here", "0"],
        ["maxsize", "-C", "typo", "here", "0"],
        ["--readonly", "-C", "typo"],  # the console
    ):
        proc = world.annextui(*args, cwd=cwd, unprivileged=False)
        line = assert_one_line_failure(proc)
        assert line == "annextui: cannot change to 'typo': No such file or directory"
    assert tree_fingerprint(world.gw) == before
    assert world.annex.annex(world.gw, "maxsize", "here").stdout.splitlines()[-1] == ""


def test_dash_c_a_file_is_an_error(world: World) -> None:
    (world.gw / "afile").write_text("x")
    proc = world.annextui("-C", "afile", "group", "here", "g", unprivileged=False)
    assert assert_one_line_failure(proc) == "annextui: cannot change to 'afile': Not a directory"


def test_demo_path_existing_demo(world: World, tmp_path: Path) -> None:
    where = tmp_path / "demo"
    built = world.annextui("demo", "--no-console", "--keys", "3", "--path", str(where))
    assert built.returncode == 0, built.stderr
    before = tree_fingerprint(where)
    again = world.annextui("demo", "--no-console", "--keys", "3", "--path", str(where))
    line = assert_one_line_failure(again)
    assert "already holds a demo" in line
    assert tree_fingerprint(where) == before
    # The real git-annex still finds the demo gateway as built.
    assert world.annex.annex(where / "gateway", "maxsize", "node1").stdout == "40.0 GB\n"


def test_demo_path_half_taken(world: World, tmp_path: Path) -> None:
    """A directory holding one of the demo's repositories (say, a failed earlier build) is not
    built over either."""
    where = tmp_path / "demo"
    (where / "node2").mkdir(parents=True)
    (where / "node2" / "mine").write_text("keep")
    before = tree_fingerprint(where)
    line = assert_one_line_failure(
        world.annextui("demo", "--no-console", "--keys", "3", "--path", str(where))
    )
    assert "node2" in line
    assert tree_fingerprint(where) == before


@pytest.mark.parametrize("below", ["", "sub/demo"])
def test_demo_path_unwritable(world: World, tmp_path: Path, below: str) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    target = ro / below if below else ro
    with read_only(ro):
        proc = world.annextui("demo", "--no-console", "--keys", "3", "--path", str(target))
        line = assert_one_line_failure(proc)
        assert "Permission denied" in line
        assert tree_fingerprint(ro) == {}


def test_merge_with_nothing_to_merge_needs_no_write(world: World) -> None:
    """As git-annex: `merge` takes the journal lock only when there is something to do."""
    assert world.annextui("merge", unprivileged=False).returncode == 0
    with read_only(world.gw):
        before = tree_fingerprint(world.gw)
        ours = world.annextui("merge")
        theirs = world.annex.run([*world.prefix, "git", "annex", "merge"], world.gw, check=False)
        assert tree_fingerprint(world.gw) == before
    assert (theirs.returncode, theirs.stdout) == (0, "merge git-annex ok\n")
    assert (ours.returncode, ours.stderr) == (0, "")
    assert ours.stdout == "merge git-annex ok (nothing to merge)\n"


def test_pidlock_refused_in_one_line(world: World) -> None:
    """annex.pidlock: git-annex's pid lock cannot be shared, so changes are refused -- in one
    line, before anything is written."""
    world.annex.git(world.gw, "config", "annex.pidlock", "true")
    before = tree_fingerprint(world.gw)
    line = assert_one_line_failure(world.annextui("maxsize", "here", "1G", unprivileged=False))
    assert "pidlock" in line
    assert tree_fingerprint(world.gw) == before


def test_demo_git_refusing_leaves_nothing(world: World, tmp_path: Path) -> None:
    """git refusing to run (a broken ~/.gitconfig) is git's message in one line, and the
    directories the build had made are gone again."""
    home = tmp_path / "badhome"
    home.mkdir()
    (home / ".gitconfig").write_text("[user\n")
    where = tmp_path / "new" / "demo"
    proc = world.annextui(
        "demo", "--no-console", "--keys", "3", "--path", str(where), env={"HOME": str(home)}
    )
    line = assert_one_line_failure(proc)
    assert "bad config line 1" in line
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("command", ["info", "sizes"])
def test_reader_gone_is_not_an_error(world: World, command: str) -> None:
    """`annextui info | head -0`: stdout has no reader any more; exit 0, nothing on stderr."""
    read, write = os.pipe()
    os.close(read)  # before the command starts: its first write fails, every time
    try:
        argv = [sys.executable, "-m", "annextui.cli", "-C", str(world.gw), command]
        proc = subprocess.run(
            argv, stdout=write, stderr=subprocess.PIPE, text=True, env=world.annex.env, timeout=120
        )
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (0, "")
