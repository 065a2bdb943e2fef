"""Running annextui's own command line in-process, under a test's environment."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from annextui.cli import main


def run_annextui(
    env: Mapping[str, str],
    repo: Path,
    args: Sequence[str],
    capsys: pytest.CaptureFixture[str],
) -> tuple[int, str, str]:
    """`annextui ARGS[0] -C REPO ARGS[1:]` with `env` as the process environment.

    In-process (no interpreter start per call); the environment is swapped because the
    backend reads GIT_ANNEX_VECTOR_CLOCK and git identity from it, as git-annex does.
    """
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        code = main([args[0], "-C", str(repo), *args[1:]])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
