"""`annextui demo`: `--readonly` reaches the console, and the temporary demo is removed when the
console closes (kept with `--path`). The console itself is replaced by a probe that records what
it was asked to open and checks the demo is a real git-annex repository while it is open."""

from __future__ import annotations

from pathlib import Path

import pytest

import annextui.cli as cli
from tests.support.annex import AnnexEnv


class Probe:
    def __init__(self, annex: AnnexEnv) -> None:
        self.annex = annex
        self.opened: list[tuple[Path, bool]] = []

    def __call__(self, path: str, *, readonly: bool) -> int:
        gateway = Path(path)
        # While open, the demo is there and git-annex sees its cluster.
        info = self.annex.annex(gateway, "info", "--fast").stdout
        assert "demo" in info
        self.opened.append((gateway, readonly))
        return 0


@pytest.fixture
def probe(annex_env: AnnexEnv, monkeypatch: pytest.MonkeyPatch) -> Probe:
    p = Probe(annex_env)
    monkeypatch.setattr(cli, "_open_console", p)
    return p


@pytest.mark.parametrize(
    ("argv", "readonly"),
    [
        (["demo", "--keys", "5"], False),
        (["demo", "--keys", "5", "--readonly"], True),
        (["--readonly", "demo", "--keys", "5"], True),
    ],
)
def test_temporary_demo_is_removed_on_exit(probe: Probe, argv: list[str], readonly: bool) -> None:
    assert cli.main(argv) == 0
    ((gateway, ro),) = probe.opened
    assert ro is readonly
    assert not gateway.parent.exists()  # the whole temporary directory


def test_demo_at_a_path_is_kept(probe: Probe, tmp_path: Path) -> None:
    assert cli.main(["demo", "--keys", "5", "--path", str(tmp_path / "d")]) == 0
    ((gateway, _ro),) = probe.opened
    assert gateway == (tmp_path / "d" / "gateway").resolve()
    assert (gateway / ".git").is_dir()
