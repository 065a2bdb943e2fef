"""`annextui maxsize` without a repository: git-annex's size overview, byte for byte.

Mirrors ``sizeOverview`` in git-annex's ``Command/MaxSize.hs`` (spec ``sizes-and-maxsize.md``
§4): a header, then one row per non-dead repository -- size, maxsize, ``%full`` right-aligned in
columns of 7, 7 and 6, then ``UUID -- DESCRIPTION`` -- sorted descending by (maxsize, size)
with an unset maxsize lowest and ties going to the higher UUID. Descriptions are
``Remote.uuidDescriptions``: the uuid.log description with `` [REMOTENAME]`` added for UUIDs
that are remotes here (``[NAME]`` alone when the description is empty or equal to the name),
and `` [here]`` for this repository in the text output.
"""

from __future__ import annotations

from dataclasses import dataclass

from annextui.backend.admin import Outcome
from annextui.backend.branch import BranchView
from annextui.backend.repo import Repository
from annextui.backend.sizes import Progress, Sizes, repo_sizes
from annextui.backend.state import BUILTIN_DESCRIPTIONS, AnnexState, load_state, proxied_remotes
from annextui.backend.units import format_percentage, format_rough

__all__ = [
    "HEADER",
    "OverviewRow",
    "add_name",
    "maxsize_overview",
    "overview_rows",
    "render_overview",
    "uuid_descriptions",
]

WIDTHS = (7, 7, 6)
HEADER = "   size maxsize  %full  repository"

# git-annex's built-in special remotes are always in its remote list under these names.
_BUILTIN_REMOTES = {u: d for u, d in BUILTIN_DESCRIPTIONS.items()}


def add_name(desc: str, name: str) -> str:
    """``Remote.addName``: ``desc [name]``, or ``[name]`` when desc is empty or equal to name."""
    if desc == name or not desc:
        return f"[{name}]"
    return f"{desc} [{name}]"


def uuid_descriptions(repo: Repository, state: AnnexState) -> dict[str, str]:
    """``Remote.uuidDescriptions``: uuid.log descriptions joined with the names of remotes."""
    out = dict(state.descriptions)
    own = repo.uuid
    if own and own not in out:
        out[own] = ""  # uuidDescMapLoad always includes this repository
    names: dict[str, str] = dict(_BUILTIN_REMOTES)
    remotes = sorted(repo.remotes.values(), key=lambda r: r.name)
    remotes += sorted(proxied_remotes(repo, state).values(), key=lambda r: r.name)
    for r in remotes:
        if r.uuid:
            names[r.uuid] = r.name  # M.fromList: the last remote with a UUID names it
    for u, name in names.items():
        out[u] = add_name(out[u], name) if u in out else name
    return out


@dataclass(frozen=True, slots=True)
class OverviewRow:
    uuid: str
    description: str  # without " [here]" (what --json reports)
    here: bool
    size: int
    maxsize: int | None

    @property
    def display(self) -> str:
        """``UUID -- DESCRIPTION`` as the text table shows it (``[here]`` added)."""
        d = self.description
        if self.here:
            d = "here" if not d else add_name(d, "here")
        return f"{self.uuid} -- {d}" if d else self.uuid

    def percent(self) -> str:
        if self.maxsize is None:
            return ""
        if self.size <= self.maxsize:
            return format_percentage(self.size, self.maxsize)
        return ">100%"

    def to_json(self) -> dict[str, object]:
        return {
            "description": self.description,
            "here": self.here,
            "size": {"maxsize": self.maxsize, "size": self.size},
            "uuid": self.uuid,
        }


def overview_rows(repo: Repository, sizes: Sizes, state: AnnexState) -> list[OverviewRow]:
    """Non-dead repositories in git-annex's order."""
    descm = uuid_descriptions(repo, state)
    own = repo.uuid
    uuids = set(sizes.repos) | set(state.maxsize)
    rows = [
        OverviewRow(
            uuid=u,
            description=descm.get(u, ""),
            here=u == own,
            size=sizes.size_of(u),
            maxsize=state.maxsize.get(u),
        )
        for u in uuids
        if not state.is_dead(u)
    ]
    rows.sort(
        key=lambda r: (
            r.maxsize is not None,
            r.maxsize or 0,
            r.size,
            r.uuid.encode("utf-8", "surrogateescape"),
        ),
        reverse=True,
    )
    return rows


def _pad(width: int, text: str) -> str:
    return " " * (width - len(text)) + text


def _size_text(n: int | None, bytes_: bool) -> str:
    if n is None:
        return ""
    return str(n) if bytes_ else format_rough(n, 0)


def render_overview(rows: list[OverviewRow], *, bytes_: bool = False) -> list[str]:
    """The lines git-annex prints (the header, then one line per row)."""
    lines = []
    for r in rows:
        cells = (_size_text(r.size, bytes_), _size_text(r.maxsize, bytes_), r.percent())
        lines.append(
            "".join(_pad(w, c) + " " for w, c in zip(WIDTHS, cells, strict=True)) + " " + r.display
        )
    # git-annex prints the joined rows as one chunk: no rows still gives an empty line.
    return [HEADER, "\n".join(lines)] if not lines else [HEADER, *lines]


def maxsize_overview(
    repo: Repository,
    *,
    bytes_: bool = False,
    progress: Progress | None = None,
    view: BranchView | None = None,
) -> Outcome:
    """`git annex maxsize` with no parameters: text lines and git-annex's --json fields."""
    view = view or BranchView(repo)
    state = load_state(view)
    sizes = repo_sizes(repo, view=view, state=state, progress=progress)
    rows = overview_rows(repo, sizes, state)
    return Outcome(
        "maxsize",
        render_overview(rows, bytes_=bytes_),
        {"input": [], "repositories": [r.to_json() for r in rows]},
    )
