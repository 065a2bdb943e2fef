"""The preferred-content ``World`` of a repository: its branch state, its git config and the
current repository sizes. Built here only, so the gateway's cluster placement and the console's
balance report decide in the same world."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from annextui.backend.ghcread import readish_double
from annextui.backend.preferred.model import Repo, World
from annextui.backend.repo import Repository
from annextui.backend.state import AnnexState

DEFAULT_FULLY_BALANCED_THRESHOLD = 0.9


def fully_balanced_threshold(repo: Repository) -> float:
    """``annex.fullybalancedthreshhold`` (two h's, as git-annex spells it) as a fraction.

    Types/GitConfig.hs reads the percentage with ``readish`` and divides by 100; a missing or
    unreadable value is the default 0.9. Only ``--rebalance`` decisions use it (Limit.hs).
    """
    value = repo.config_get("annex.fullybalancedthreshhold")
    percent = readish_double(value) if value is not None else None
    return percent / 100 if percent is not None else DEFAULT_FULLY_BALANCED_THRESHOLD


def build_world(
    repo: Repository,
    state: AnnexState,
    size_of: Callable[[str], int] | None = None,
    sized: Iterable[str] = (),
) -> World:
    """A ``World`` from the branch state and config; ``size_of`` gives each repository's live
    size (None: sizes unknown, so ``balanced`` treats every repository as having space);
    ``sized`` are further UUIDs the size count found (location logs can name unknown ones)."""
    uuids = state.known_uuids() | set(state.trust) | set(state.groups) | set(state.preferred)
    uuids |= set(state.required) | set(state.maxsize) | set(sized)
    if repo.uuid:
        uuids.add(repo.uuid)
    repos = [
        Repo(
            u,
            trust=state.trust_of(u),
            groups=state.groups.get(u, frozenset()),
            description=state.description(u),
            preferred=state.preferred.get(u),
            required=state.required.get(u),
            maxsize=state.maxsize.get(u),
            size=size_of(u) if size_of is not None else None,
            preferreddir=state.remote_configs.get(u, {}).get("preferreddir"),
        )
        for u in uuids
    ]
    return World.build(
        repos,
        group_wanted=dict(state.group_preferred),
        numcopies=state.numcopies,
        mincopies=state.mincopies,
        clusters=dict(state.clusters),
        here=repo.uuid,
        fully_balanced_threshold=fully_balanced_threshold(repo),
    )
