"""Every command's exit status, as `annextui --help` documents it: 0 ok, 1 failed, 2 usage (a
command line that does not parse); wanted-check answers 0 wanted, 1 not wanted, 2 could not
decide. A failure is one line `annextui: ...` on stderr and writes nothing; a usage error is
argparse's. The repository is made by the real git-annex, which also judges the ok rows."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from annextui.cli import EXIT_STATUS, build_parser, main
from tests.support.annex import AnnexEnv
from tests.support.unwritable import tree_fingerprint

OK, FAILED, USAGE = 0, 1, 2
NOT_A_REPO = "PLAIN"  # run in a directory that is not a git repository

# (arguments after the command's -C REPO, status, what stderr says)
CASES: list[tuple[list[str], int, str]] = [
    (["init", "--bogus"], USAGE, "unrecognized arguments"),
    (["init"], FAILED, "not a git repository"),
    (["describe", "here"], USAGE, "required: description"),
    (["describe", "nosuch", "x"], FAILED, 'no available git remote named "nosuch"'),
    (["initcluster"], USAGE, "required: name"),
    (["initcluster", "bad..name"], FAILED, "not a valid git remote name"),
    (["updatecluster", "extra"], USAGE, "unrecognized arguments"),
    (["updatecluster"], FAILED, "not a git repository"),
    (["updateproxy"], FAILED, "not a git repository"),
    (["extendcluster", "gw"], USAGE, "required: name"),
    (["extendcluster", "nosuch", "cl"], FAILED, "no such remote"),
    (["maxsize", "here", "1GB", "more"], USAGE, "unrecognized arguments"),
    (["maxsize", "here", "10 furlongs"], FAILED, "Unable to parse size."),
    (["maxsize", "nosuch", "1GB"], FAILED, 'no available git remote named "nosuch"'),
    (["group"], USAGE, "required: target"),
    (["group", "nosuch", "g"], FAILED, 'no available git remote named "nosuch"'),
    (["ungroup", "here"], USAGE, "required: group"),
    (["ungroup", "nosuch", "g"], FAILED, 'no available git remote named "nosuch"'),
    (["wanted"], USAGE, "required: target"),
    (["wanted", "here", "bogus=("], FAILED, "Parse error"),
    (["required", "nosuch"], FAILED, 'no available git remote named "nosuch"'),
    (["groupwanted"], USAGE, "required: group"),
    (["groupwanted", "g", "bogus=("], FAILED, "Parse error"),
    (["merge", "x"], USAGE, "unrecognized arguments"),
    (["merge"], FAILED, "not a git repository"),
    (["info", "--bogus"], USAGE, "unrecognized arguments"),
    (["info"], FAILED, "not a git repository"),
    (["demo", "--keys", "many"], USAGE, "invalid int value"),
    (["ssh-check"], USAGE, "required: node"),
    (["ssh-check", "nosuch"], FAILED, "no remote named 'nosuch'"),
    (["sizes", "--bogus"], USAGE, "unrecognized arguments"),
    (["sizes"], FAILED, "not a git repository"),
    (["balance"], USAGE, "required: group"),
    (["balance", "nosuch"], FAILED, "nosuch is neither a group with members nor a cluster"),
    (["balance", "g", "--what-if", "grow:here"], USAGE, "what-if"),
    (["balance", "g", "--what-if", "remove:nosuch"], FAILED, "nosuch"),
    (["wanted-check"], USAGE, "one of the arguments --key --file --batch is required"),
    (["wanted-check", "--key", "not a key"], USAGE, "invalid key"),
    (["wanted-check", "--target", "nosuch", "--key", "SHA256E-s1--aa"], USAGE, "nosuch"),
    (["wanted-check", "--file", "README"], USAGE, "not an annexed file"),
    (["wanted-check", "--key", "SHA256E-s1--aa"], USAGE, "not a git repository"),
    (["wanted-check", "--key", "SHA256E-s1--aa"], OK, ""),
    (["wanted-check", "--target", "n1", "--key", "SHA256E-s1--aa"], FAILED, ""),
    (["cluster"], USAGE, "an action is required"),
    (["cluster", "rename", "x"], USAGE, "required: new"),
    (["cluster", "rename", "nosuch", "new"], FAILED, "no cluster named nosuch"),
    (["cluster", "delete", "nosuch"], FAILED, "no cluster named nosuch"),
    (["cluster", "drain"], USAGE, "required: node"),
    (["cluster", "drain", "nosuch"], FAILED, 'no available git remote named "nosuch"'),
    (["cluster", "drain", "n1", "--bwlimit", "fast"], USAGE, "fast"),
    (["rebalance"], USAGE, "required: group"),
    (["rebalance", "nosuch"], FAILED, "nosuch is neither a group with members nor a cluster"),
    (["jobs", "bogus"], USAGE, "invalid choice"),
    (["jobs", "cancel"], USAGE, "which job?"),
    (["jobs", "cancel", "nosuch"], FAILED, "no job 'nosuch'"),
    (["p2phttp", "--port", "notaport"], USAGE, "invalid"),
    (["p2phttp", "--bogus"], USAGE, "unrecognized arguments"),
    (["jobs"], OK, ""),
    (["maxsize", "here", "1GB"], OK, ""),
    (["balance", "g"], OK, ""),
    (["info"], OK, ""),
]
# Rows that run outside a git repository (the rest run in the annex repository `gw`).
PLAIN_ROWS = {
    ("init",),
    ("updatecluster",),
    ("updateproxy",),
    ("merge",),
    ("info",),
    ("sizes",),
    ("wanted-check", "--key", "SHA256E-s1--aa"),
}


def _state(top: Path) -> dict[str, bytes | str]:
    """Every file of the repository but our size cache (a cache, not the repository's state)."""
    return {k: v for k, v in tree_fingerprint(top).items() if "/annex/annextui/" not in k}


def _plain(args: list[str], status: int) -> bool:
    return tuple(args) in PLAIN_ROWS and status != OK


@pytest.fixture(scope="module")
def repos(
    tmp_path_factory: pytest.TempPathFactory, git_annex_bin: Path
) -> tuple[Path, Path, dict[str, str]]:
    from tests.support.annex import magic_db

    root = Path(os.path.realpath(tmp_path_factory.mktemp("exit")))
    env = AnnexEnv.create(root, bin_dir=git_annex_bin.parent, magic=magic_db(git_annex_bin))
    gw = env.make_annex_repo("gw", description="gateway")
    n1 = env.clone(gw, "n1", description="node1")
    env.git(gw, "remote", "add", "n1", str(n1))
    env.annex(gw, "group", "here", "g")
    env.annex(gw, "group", "n1", "g")
    env.annex(gw, "wanted", "here", "anything")
    env.annex(gw, "wanted", "n1", "nothing")
    env.add_files(gw, {"README": "not annexed"}, annex=False)
    plain = root / "plain"
    plain.mkdir()
    return gw, plain, env.env


@pytest.mark.parametrize(("args", "status", "said"), CASES, ids=lambda v: str(v))
def test_exit_status(
    repos: tuple[Path, Path, dict[str, str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    status: int,
    said: str,
) -> None:
    gw, plain, env = repos
    where = plain if _plain(args, status) else gw
    monkeypatch.chdir(where)  # --file paths are relative to it
    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    before = _state(where)
    code: int | str | None
    try:
        code = main([args[0], "-C", str(where), *args[1:]])
    except SystemExit as exit_:  # argparse
        code = exit_.code
    out, err = capsys.readouterr()
    assert code == status, (out, err)
    assert said in err
    assert "Traceback" not in out + err
    if status == FAILED and said:
        assert len(err.splitlines()) == 1, err
        assert err.startswith("annextui: "), err
    if status == USAGE and args[0] != "wanted-check":
        assert "usage: annextui" in err
    if status != OK:
        assert _state(where) == before  # nothing written


def test_every_command_has_a_row() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sub.choices is not None  # the subcommands' parsers, by name
    commands = set(sub.choices)
    covered = {args[0] for args, _status, _said in CASES}
    assert commands - covered == set()


def test_help_documents_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["balance", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0
        out = capsys.readouterr().out
        assert EXIT_STATUS in out
        for status in ("0  ok", "1  failed", "2  usage"):
            assert status in out
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for row in ("| 0 | ok |", "| 1 | failed:", "| 2 | usage:"):
        assert row in readme


@pytest.mark.parametrize(
    ("target", "drop", "status", "line"),
    [
        ("here", False, OK, "wanted by here"),
        ("n1", False, FAILED, "not wanted by n1"),
        ("n1", True, OK, "would be dropped by n1"),
        ("here", True, FAILED, "would be kept by here"),
    ],
)
def test_wanted_check_says_its_answer(
    repos: tuple[Path, Path, dict[str, str]],
    capsys: pytest.CaptureFixture[str],
    target: str,
    drop: bool,
    status: int,
    line: str,
) -> None:
    from tests.support.cli import run_annextui

    gw, _plain, env = repos
    key = "SHA256E-s1--aa"
    args = ["wanted-check", "--target", target, "--key", key, *(["--drop"] if drop else [])]
    code, out, err = run_annextui(env, gw, args, capsys)
    assert (code, err) == (status, "")
    (said,) = out.splitlines()
    assert said.startswith(f"{key}: {line} (")
