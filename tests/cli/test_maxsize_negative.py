"""A negative maxsize, as git-annex handles it: `git annex maxsize R -- -5` records -5, shows it as
`-5.0 B`, and the overview lists it as more than 100% full. We read what git-annex wrote and it
reads what we wrote, side by side on twin repositories."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.annex import AnnexEnv
from tests.support.cli import run_annextui

SIZES = ["-5", "-1GB", "-5 kB", "-0"]


@pytest.mark.parametrize("size", SIZES)
def test_negative_maxsize_as_git_annex(
    annex_env: AnnexEnv, capsys: pytest.CaptureFixture[str], size: str
) -> None:
    theirs = annex_env.make_annex_repo("theirs", description="t")
    ours = annex_env.make_annex_repo("ours", description="o")
    annex_env.annex(theirs, "maxsize", "here", "--", size)
    code, out, err = run_annextui(annex_env.env, ours, ["maxsize", "here", "--", size], capsys)
    assert (code, out.strip(), err) == (0, "maxsize here ok", "")

    def shown(repo: Path, *args: str) -> str:
        return annex_env.annex(repo, "maxsize", "here", *args).stdout.strip()

    def ours_shown(repo: Path, *args: str) -> str:
        code, out, _err = run_annextui(annex_env.env, repo, ["maxsize", "here", *args], capsys)
        assert code == 0
        return out.strip()

    for args in ((), ("--bytes",)):
        # git-annex reads our record as it reads its own; we read its record as it does.
        assert shown(ours, *args) == shown(theirs, *args)
        assert ours_shown(theirs, *args) == shown(theirs, *args)
        assert ours_shown(ours, *args) == shown(theirs, *args)
    overview = annex_env.annex(theirs, "maxsize").stdout.splitlines()[1]
    code, out, _err = run_annextui(annex_env.env, theirs, ["maxsize"], capsys)
    assert out.splitlines()[1] == overview
    if size != "-0":
        assert ">100%" in overview
