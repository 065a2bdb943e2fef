"""`annextui WORD`: a command, or a path to open. A word that is neither is a usage error with
a suggestion (it used to be taken as a path), and `--version` answers."""

from __future__ import annotations

from pathlib import Path

import pytest

import annextui
from annextui.cli import _repo_positional, build_parser, main


@pytest.mark.parametrize(
    ("word", "suggestion"),
    [("versoin", "--version"), ("inf", "info"), ("help", "--help"), ("qwxz", None)],
)
def test_unknown_word_is_an_error_with_a_suggestion(
    word: str,
    suggestion: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # where no such path exists
    with pytest.raises(SystemExit) as exit_:
        main([word])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"'{word}' is neither a command nor an existing path" in err
    if suggestion:
        assert f"did you mean {suggestion}?" in err
    else:
        assert "did you mean" not in err
    assert list(tmp_path.iterdir()) == []  # nothing made


def test_an_existing_path_is_still_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "versoin").mkdir()  # a directory may have any name
    monkeypatch.chdir(tmp_path)
    parser = build_parser()

    assert _repo_positional(parser, ["versoin"]) == ["-C", "versoin"]
    assert _repo_positional(parser, ["--readonly", "info"]) == ["--readonly", "info"]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"annextui {annextui.__version__}"
