"""Proxies of proxies: what a gateway can reach through gateways it proxies, from the branch.

git-annex expands proxy.log one level (a client of gateway G sees G's own entry as `G-NAME`),
and `annex-proxy` is proxy-inherited, so a gateway that sets it on a remote which is itself a
gateway logs that gateway's entries as its own (`origin-node1`). A deeper chain only works if
every hop re-ran `updateproxy` after the hop below it changed.

Here the chain is followed on the branch instead: for every proxied remote that carries
`annex-proxy` (configured or inherited) and whose UUID has its own proxy.log entry, that entry
is instantiated too, as `<that remote's name>-<NAME>`, reached through the same first hop
(same URL, `annex-proxied-by` = the first hop's UUID, `--uuid` = the deep UUID), recursively.
Cycle prevention: a UUID already on the path (or this repository's own, or one already
reachable more directly) is never expanded again, and depth is bounded.

Local git config still decides: nothing is reached unless `annex-proxy` was set on the first
hop here; the branch only says what lies behind it.
"""

from __future__ import annotations

from collections import deque

from annextui.backend.logs.values import legal_remote_name
from annextui.backend.repo import Remote, Repository
from annextui.backend.state import PROXY_INHERITED, AnnexState, proxied_remotes

MAX_DEPTH = 8


def chained_proxied_remotes(
    repo: Repository, state: AnnexState, *, max_depth: int = MAX_DEPTH
) -> dict[str, Remote]:
    """Remotes beyond git-annex's one level of proxy expansion, by name (see module doc)."""
    own = repo.uuid
    first = proxied_remotes(repo, state)
    taken = set(repo.remotes) | set(first)
    direct = {r.uuid for r in repo.remotes.values() if r.uuid} | {
        r.uuid for r in first.values() if r.uuid
    }
    out: dict[str, Remote] = {}
    reached: set[str] = set()
    queue: deque[tuple[Remote, frozenset[str], int]] = deque()
    for r in first.values():
        if r.uuid and r.flag("annex-proxy"):
            hop = r.option("annex-proxied-by") or ""
            queue.append((r, frozenset({own or "", hop, r.uuid}), 1))
    while queue:
        via, path, depth = queue.popleft()
        if depth >= max_depth:
            continue
        assert via.uuid is not None
        for entry in state.proxies.get(via.uuid, []):
            if entry.uuid in path or entry.uuid in direct or entry.uuid in reached:
                continue  # a cycle, or reachable more directly, or by a shorter chain
            name = f"{via.name}-{entry.name}"
            if name in taken or not legal_remote_name(name):
                continue
            opts = {k: v for k, v in via.options.items() if k in PROXY_INHERITED}
            opts["annex-uuid"] = entry.uuid
            proxied_by = via.option("annex-proxied-by")
            if proxied_by:
                opts["annex-proxied-by"] = proxied_by
            if via.url:
                opts["url"] = via.url
            remote = Remote(name=name, url=via.url, uuid=entry.uuid, options=opts)
            taken.add(name)
            reached.add(entry.uuid)
            out[name] = remote
            if remote.flag("annex-proxy"):
                queue.append((remote, path | {entry.uuid}, depth + 1))
    return out
