"""Repository sizes for the console, from `annextui.backend.sizes` (incremental cache)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from annextui.backend import sizes as backend_sizes
from annextui.backend.repo import Repository
from annextui.backend.sizes import RepoSize


@dataclass(frozen=True, slots=True)
class SizesReport:
    sizes: Mapping[str, RepoSize]  # by UUID; clusters left out (their nodes hold the content)
    head: str | None
    seconds: float
    mode: str  # the backend's source: "cold", "warm" or "incremental"
    keys: int = 0  # keys with a location log on the branch
    changed: int = 0  # location logs re-read by an incremental refresh


def repo_sizes(
    path: Path, progress: Callable[[int, int | None], None] | None = None
) -> SizesReport:
    """Sizes of every repository known to the branch of the repository at `path`."""
    s = backend_sizes.repo_sizes(Repository(path), progress=progress)
    return SizesReport(
        {u: r for u, r in s.repos.items() if not r.cluster},
        s.branch,
        s.seconds,
        s.source,
        s.keys,
        s.changed,
    )
