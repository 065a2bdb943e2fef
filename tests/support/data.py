"""Captured data the tests read, kept in the repository under ``tests/data/``.

Paths are found relative to this file, so the suite reads the same bytes on every machine; a
missing file raises (the test fails) instead of turning a parametrized test into an empty one.
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"
# git-annex 10.20261026 captures (tests/data/spec/README.md says how they were made)
SPEC_EXAMPLES = DATA / "spec"


def spec_example(name: str) -> Path:
    """``tests/data/spec/NAME``; FileNotFoundError when it is not there."""
    path = SPEC_EXAMPLES / name
    if not path.exists():
        raise FileNotFoundError(f"captured example missing from the repository: {path}")
    return path
