"""Preferred-content decisions outside a simulation: the ``World`` with the current sizes, one
key's facts, and ``wanted-check`` over many keys.

Decisions are key-only (no work-tree file), as git-annex makes them for bare nodes or with
``--all``: ``include=``/``exclude=`` see no file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from annextui import values
from annextui.backend.balance.errors import BalanceError
from annextui.backend.balance.members import resolve_repo
from annextui.backend.branch import BranchView
from annextui.backend.keys import (
    KeyError_,
    branch_hash_levels,
    hashdir_lower,
    hashdir_mixed,
    key_file,
    location_log_path,
    parse_key,
)
from annextui.backend.logs.presence import present_infos
from annextui.backend.preferred import Evaluator, KeyFacts, World
from annextui.backend.repo import Repository
from annextui.backend.sizes import Sizes, repo_sizes
from annextui.backend.state import AnnexState, load_state
from annextui.backend.world import build_world as world_of

__all__ = ["build_world", "key_facts", "replace_world", "wanted_check"]


def build_world(repo: Repository, state: AnnexState, sizes: Sizes | None) -> World:
    """A preferred-content ``World`` from the branch state and current repository sizes."""
    if sizes is None:
        return world_of(repo, state)
    return world_of(repo, state, sizes.size_of, sizes.repos)


def key_facts(repo: Repository, view: BranchView, key: str, *, file: str | None = None) -> KeyFacts:
    """One key's facts read straight from its location log (journal and unmerged refs too)."""
    try:
        parse_key(key)
    except KeyError_ as exc:
        raise BalanceError(str(exc)) from exc
    path = location_log_path(key, branch_hash_levels(repo.config_bool))
    locations = frozenset(u for u in present_infos(view.read(path)) if u)
    return KeyFacts(key, locations=locations, file=file, local_present=_locally_present(repo, key))


def _locally_present(repo: Repository, key: str) -> bool:
    kf = key_file(key)
    objects = repo.annexdir / "objects"
    return any(
        os.path.isfile(objects / h / kf / kf) for h in (hashdir_mixed(key), hashdir_lower(key))
    )


def replace_world(world: World, *, rebalance: bool) -> World:
    """`world` with ``--rebalance`` set or cleared (the same world when it already is)."""
    if world.rebalance == rebalance:
        return world
    return values.replace(world, rebalance=rebalance)


def wanted_check(
    repo: Repository,
    target: str,
    keys: Iterable[tuple[str, str | None]],
    *,
    drop: bool = False,
    view: BranchView | None = None,
    on_error: Callable[[str, Exception], None] | None = None,
) -> Iterable[tuple[str, str, bool]]:
    """(key, repository UUID, wanted) for each (key, file): want-get, or want-drop with drop.

    One World and one compiled Evaluator serve every key. A key that cannot be parsed is passed
    to ``on_error`` (or raises BalanceError).
    """
    view = view or BranchView(repo)
    state = load_state(view)
    u = resolve_repo(repo, state, target)
    sizes = repo_sizes(repo, view=view, state=state)
    ev = Evaluator(build_world(repo, state, sizes))
    for key, file in keys:
        try:
            facts = key_facts(repo, view, key, file=file)
        except BalanceError as exc:
            if on_error is None:
                raise
            on_error(key, exc)
            continue
        if u != repo.uuid:
            facts = values.replace(facts, local_present=None)
        yield key, u, ev.wants_drop(u, facts) if drop else ev.wants_get(u, facts)
