"""The console on a repository the user may not write: reviewing staged edits says so in an
error dialog (no traceback, no exception name) and nothing is written. The console runs in a
process without the privilege to ignore file modes (tests/support/unwritable.py)."""

from __future__ import annotations

import json
import sys

from annextui.backend.demo import DemoRepo
from annextui.console.edits import SetMaxsize
from annextui.console.source import RepositoryBackend
from tests.support.annex import AnnexEnv
from tests.support.unwritable import read_only, tree_fingerprint


def test_preview_on_unwritable_repository(
    demo: DemoRepo, annex: AnnexEnv, unprivileged: list[str]
) -> None:
    before = tree_fingerprint(demo.gateway)
    with read_only(demo.gateway):
        proc = annex.run(
            [
                *unprivileged,
                sys.executable,
                "-m",
                "tests.console.unwritable_probe",
                str(demo.gateway),
            ],
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout.splitlines()[-1])
    assert shown["title"] == "These edits cannot be applied"
    reason = shown["text"].splitlines()[0]
    assert reason.startswith("this repository cannot be changed: "), shown["text"]
    assert reason.endswith(": Permission denied")
    assert "Error" not in shown["text"]
    assert "Traceback" not in shown["text"]
    assert shown["staged"] == 2  # still staged, to apply once the repository may be written
    assert shown["applied"] == [reason]
    assert tree_fingerprint(demo.gateway) == before
    # The real git-annex agrees nothing changed: node1's maxsize is the demo's.
    assert annex.annex(demo.gateway, "maxsize", "node1").stdout == "40.0 GB\n"


def test_preview_with_pidlock_is_refused_in_the_dialog_text(
    demo: DemoRepo, annex: AnnexEnv
) -> None:
    """A journal we cannot lock as git-annex does (annex.pidlock): the preview reports it."""
    annex.git(demo.gateway, "config", "annex.pidlock", "true")
    before = tree_fingerprint(demo.gateway)
    preview = RepositoryBackend(demo.gateway).preview([SetMaxsize("node1", "1G")])
    assert preview.error is not None
    assert "pidlock" in preview.error
    assert RepositoryBackend(demo.gateway).apply([SetMaxsize("node1", "1G")])[0].error
    assert tree_fingerprint(demo.gateway) == before
