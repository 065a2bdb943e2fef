"""The world a preferred-content decision is made in: frozen values (annextui.values).

``World`` is what the git-annex branch says (filled by the branch reader); ``KeyFacts`` is what
is known about one key. Both are immutable; an ``Evaluator`` compiles expressions against one
``World`` and caches everything it can, so build a new ``World`` (and ``Evaluator``) when the
branch changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from annextui.backend.keys import Key
from annextui.backend.trust import TrustLevel
from annextui.values import Value, value_field

__all__ = [
    "DEFAULT_PREFERREDDIR",
    "KeyFacts",
    "Repo",
    "World",
]

DEFAULT_PREFERREDDIR = "public"


class Repo(Value):
    """One repository UUID as the git-annex branch describes it.

    preferred / required: the raw ``preferred-content.log`` / ``required-content.log`` values;
    ``None`` = no entry. maxsize: ``maxsize.log`` (``None`` = none recorded; ``0`` is recorded
    and, in git-annex 10.20261026, means "no space" for balanced terms). size: the repository's
    current (live) size in bytes; git-annex knows a size (0 if nothing) for every UUID in
    uuid.log -- ``None`` means unknown, which makes ``balanced`` treat the repo as having space.
    preferreddir: the special remote's ``preferreddir=`` config (``inpreferreddir``).
    """

    uuid: str
    trust: TrustLevel = TrustLevel.SEMITRUSTED
    groups: frozenset[str] = frozenset()
    description: str = ""
    preferred: str | None = None
    required: str | None = None
    maxsize: int | None = None
    size: int | None = None
    preferreddir: str | None = None


def _freeze(m: Mapping[str, object] | None) -> Mapping[str, object]:
    return MappingProxyType(dict(m or {}))


class World(Value):
    """Everything on the git-annex branch (and local config) that preferred content reads.

    repos: uuid -> Repo (uuid.log, trust.log with git config's remote.NAME.annex-trustlevel
      overrides, group.log, preferred/required-content.log, maxsize.log, remote.log
      preferreddir, live sizes). UUIDs missing here are semitrusted, in no group,
      unconfigured, with unknown size.
    group_wanted: group-preferred-content.log (group -> expression; an entry with an empty
      value still counts as "this group has a groupwanted expression").
    numcopies / mincopies: numcopies.log / mincopies.log (None = unset; numcopies defaults to
      1 and values < 1 count as 1).
    clusters: cluster uuid -> node uuids (cluster.log); a key a node holds is also "in" the
      cluster, but cluster UUIDs are never counted as copies.
    here: the local repository's uuid (``present`` for it uses ``KeyFacts.local_present``
      when given).
    file_numcopies: ``annex.numcopies`` from .gitattributes for a file (None = not set).
    fully_balanced_threshold: ``annex.fullybalancedthreshhold`` / 100 (default 0.9).
    rebalance: ``--rebalance`` (``balanced`` behaves as ``fullybalanced``).
    unused_keys: keys found by the last ``git annex unused``.

    Identity semantics (equal only to itself): a World is a snapshot; caches key on its identity.
    """

    repos: Mapping[str, Repo] = value_field(default_factory=dict)
    group_wanted: Mapping[str, str] = value_field(default_factory=dict)
    numcopies: int | None = None
    mincopies: int | None = None
    clusters: Mapping[str, frozenset[str]] = value_field(default_factory=dict)
    here: str | None = None
    file_numcopies: Callable[[str], int | None] | None = None
    fully_balanced_threshold: float = 0.9
    rebalance: bool = False
    unused_keys: frozenset[str] = frozenset()

    __eq__ = object.__eq__  # a snapshot: equal only to itself (caches key on identity)
    __hash__ = object.__hash__

    def __post_init__(self) -> None:
        object.__setattr__(self, "repos", _freeze(self.repos))
        object.__setattr__(self, "group_wanted", _freeze(self.group_wanted))
        object.__setattr__(
            self, "clusters", MappingProxyType({c: frozenset(n) for c, n in self.clusters.items()})
        )

    @classmethod
    def build(cls, repos: list[Repo] | tuple[Repo, ...] = (), **kw: object) -> World:
        """Convenience: ``World.build([Repo(...), ...], numcopies=2, ...)``."""
        return cls(repos={r.uuid: r for r in repos}, **kw)  # type: ignore[arg-type]

    def repo(self, uuid: str) -> Repo:
        r = self.repos.get(uuid)
        return r if r is not None else Repo(uuid)

    def trust(self, uuid: str) -> TrustLevel:
        r = self.repos.get(uuid)
        return r.trust if r is not None else TrustLevel.SEMITRUSTED

    def global_numcopies(self) -> int:
        """``approxNumCopies``: numcopies.log, default 1, values < 1 count as 1."""
        n = self.numcopies
        return n if n is not None and n > 0 else 1


class KeyFacts(Value):
    """What is known about one key for one decision.

    key: the serialized key (or a parsed ``Key``).
    locations: UUIDs the location log says have it (raw; dead repos are dropped and clusters
      added by the evaluator).
    file: the associated file the decision is about (path from the repo top), or None for
      key-only decisions (``--all``, bare repos): then include/inpreferreddir are false and
      ``exclude=`` is *true* (git-annex negates a false glob match).
    other_files: further associated files; ``wants_drop`` keeps the key if any file is
      preferred (``Annex/Wanted.hs`` checkDrop).
    metadata: field -> values (fields compare case-insensitively).
    urls: raw url.log values (``yt:``/``quvi:``/``:`` downloader prefixes are stripped).
    local_present: for ``World.here`` only: is the content in the local object store (``present``
      for the local repo checks the object file, not the location log). None = use the log.
    """

    key: str | Key
    locations: frozenset[str] = frozenset()
    file: str | None = None
    other_files: tuple[str, ...] = ()
    metadata: Mapping[str, frozenset[str]] = value_field(default_factory=dict)
    urls: tuple[str, ...] = ()
    local_present: bool | None = None
