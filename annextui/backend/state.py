"""The repository-level facts of a git-annex branch: repositories, trust, groups, preferred
content, numcopies, maxsize, proxies and clusters, resolved as git-annex resolves them."""

from __future__ import annotations

from annextui.backend.branch import BranchView
from annextui.backend.ghcread import readish_integer
from annextui.backend.logs import (
    parse_map_log,
    parse_single_log,
    parse_uuid_log,
    resolve_map_log,
    resolve_single_log,
    resolve_uuid_log,
)
from annextui.backend.logs.values import (
    ProxiedRemote,
    parse_cluster_nodes,
    parse_groups,
    parse_proxy_value,
    parse_remote_config,
    parse_trust,
)
from annextui.backend.repo import Remote, Repository
from annextui.backend.trust import TrustLevel
from annextui.backend.uuids import is_cluster_uuid
from annextui.values import Value, value_field

# git-annex always knows these two special "repositories".
WEB_UUID = "00000000-0000-0000-0000-000000000001"
BITTORRENT_UUID = "00000000-0000-0000-0000-000000000002"
BUILTIN_DESCRIPTIONS = {WEB_UUID: "web", BITTORRENT_UUID: "bittorrent"}


class AnnexState(Value):
    """Resolved top-level logs. Pure data: build it with `load_state`."""

    descriptions: dict[str, str] = value_field(default_factory=dict)
    trust: dict[str, TrustLevel] = value_field(default_factory=dict)  # with git config overrides
    groups: dict[str, frozenset[str]] = value_field(default_factory=dict)
    preferred: dict[str, str] = value_field(default_factory=dict)
    required: dict[str, str] = value_field(default_factory=dict)
    group_preferred: dict[str, str] = value_field(default_factory=dict)
    numcopies: int = 1
    mincopies: int = 1
    maxsize: dict[str, int] = value_field(default_factory=dict)
    proxies: dict[str, list[ProxiedRemote]] = value_field(default_factory=dict)
    clusters: dict[str, frozenset[str]] = value_field(default_factory=dict)  # cluster uuid -> nodes
    remote_configs: dict[str, dict[str, str]] = value_field(default_factory=dict)

    def trust_of(self, uuid: str) -> TrustLevel:
        return self.trust.get(uuid, TrustLevel.SEMITRUSTED)

    def is_dead(self, uuid: str) -> bool:
        return self.trust_of(uuid) is TrustLevel.DEAD

    def known_uuids(self) -> set[str]:
        return set(self.descriptions) | set(BUILTIN_DESCRIPTIONS)

    def description(self, uuid: str) -> str:
        return self.descriptions.get(uuid, BUILTIN_DESCRIPTIONS.get(uuid, ""))

    def group_members(self, group: str) -> set[str]:
        return {u for u, gs in self.groups.items() if group in gs}

    def node_to_clusters(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for c, nodes in self.clusters.items():
            for n in nodes:
                out.setdefault(n, set()).add(c)
        return out


def _uuid_values(view: BranchView, path: str) -> dict[str, str]:
    return {u: line.value for u, line in resolve_uuid_log(parse_uuid_log(view.read(path))).items()}


def _map_values(view: BranchView, path: str) -> dict[str, str]:
    return {f: line.value for f, line in resolve_map_log(parse_map_log(view.read(path))).items()}


def _single(view: BranchView, path: str) -> int:
    best = resolve_single_log(parse_single_log(view.read(path)))
    return max(1, best.value) if best is not None else 1


def configured_trust(repo: Repository) -> dict[str, TrustLevel]:
    """`remote.NAME.annex-trustlevel` by the remote's UUID (Logs/Trust/Basic.hs trustMapLoad').

    It overrides trust.log for that UUID, `dead` included; a value other than exactly
    trusted/semitrusted/untrusted/dead (readTrustLevel) is ignored. Proxied remotes never
    have one (trustlevel is not inherited, and configuring the name hides the proxied remote).
    """
    out: dict[str, TrustLevel] = {}
    for _name, r in sorted(repo.remotes.items()):
        level = TrustLevel.parse(r.option("annex-trustlevel") or "")
        if r.uuid and level is not None:
            out[r.uuid] = level
    return out


def load_state(view: BranchView) -> AnnexState:
    """The branch's logs, with trust as git-annex uses it: trust.log under the local git
    config's `remote.NAME.annex-trustlevel` overrides (`configured_trust`)."""
    trust = {u: parse_trust(v) for u, v in _uuid_values(view, "trust.log").items()}
    trust.update(configured_trust(view.repo))
    maxsize = {}
    for u, v in _map_values(view, "maxsize.log").items():
        n = readish_integer(v)  # parseMaxSize: readish, so a negative size counts as one
        if n is not None:
            maxsize[u] = n
    clusters = {}
    for cu, v in _map_values(view, "cluster.log").items():
        if is_cluster_uuid(cu):
            clusters[cu] = frozenset(
                n for n in parse_cluster_nodes(v) if trust.get(n) is not TrustLevel.DEAD
            )
    return AnnexState(
        descriptions={u: v.replace("\\n", "\n") for u, v in _uuid_values(view, "uuid.log").items()},
        trust=trust,
        groups={u: parse_groups(v) for u, v in _uuid_values(view, "group.log").items()},
        preferred=_uuid_values(view, "preferred-content.log"),
        required=_uuid_values(view, "required-content.log"),
        group_preferred=_map_values(view, "group-preferred-content.log"),
        numcopies=_single(view, "numcopies.log"),
        mincopies=_single(view, "mincopies.log"),
        maxsize=maxsize,
        proxies={u: parse_proxy_value(v) for u, v in _map_values(view, "proxy.log").items()},
        clusters=clusters,
        remote_configs={
            u: parse_remote_config(v) for u, v in _uuid_values(view, "remote.log").items()
        },
    )


# Remote settings a proxied remote inherits from the remote that proxies it (Remote/Git.hs,
# proxyInheritedFields). Names as in git config, lowercased.
PROXY_INHERITED = frozenset(
    f"annex-{k}"
    for k in (
        "cost",
        "cost-command",
        "ignore",
        "ignore-command",
        "sync",
        "pull",
        "push",
        "readonly",
        "verify",
        "fastcopy",
        "bare",
        "retry",
        "forward-retry",
        "retry-delay",
        "stalldetection",
        "stalldetection-upload",
        "stalldetection-download",
        "bwlimit",
        "bwlimit-upload",
        "bwlimit-download",
        "speculate-present",
        "shell",
        "ssh-options",
        "rsync-options",
        "rsync-upload-options",
        "rsync-download-options",
        "rsync-transport",
        "gnupg-options",
        "gnupg-decrypt-options",
        "annexurl",
        "proxy",
        "security-allow-unverified-downloads",
        "web-options",
    )
) | {"annexurl"}


def proxy_capable(remote: Remote) -> bool:
    """Clients instantiate proxied remotes only behind ssh or annex+http remotes."""
    if remote.option("annexurl") or (remote.url or "").startswith(("annex+http", "annex+https")):
        return True
    if remote.is_local_path or not remote.url:
        return False
    return not (remote.url.startswith(("gcrypt::", "tor-annex::")) or remote.flag("annex-git-lfs"))


def proxied_remotes(repo: Repository, state: AnnexState) -> dict[str, Remote]:
    """The remotes git-annex instantiates from proxy.log for this repository's git remotes."""
    out: dict[str, Remote] = {}
    configured = set(repo.remotes)
    for r in repo.remotes.values():
        if not r.uuid or not proxy_capable(r):
            continue
        proxied = state.proxies.get(r.uuid)
        if not proxied:
            continue
        proxied_uuids = {p.uuid for p in proxied}
        node_clusters = state.node_to_clusters()
        for p in proxied:
            name = f"{r.name}-{p.name}"
            if name in configured:
                continue
            opts = {k: v for k, v in r.options.items() if k in PROXY_INHERITED}
            opts["annex-uuid"] = p.uuid
            opts["annex-proxied-by"] = r.uuid
            if r.url:
                opts["url"] = r.url
            if node_clusters.get(p.uuid, set()) & proxied_uuids:
                opts["annex-sync"] = "false"
                base = 100.0 if r.is_local_path else 200.0
                opts["annex-cost"] = repr(base + 0.1)
            out[name] = Remote(name=name, url=r.url, uuid=p.uuid, options=opts)
    return out


def remote_names(repo: Repository, state: AnnexState) -> dict[str, str]:
    """UUID -> the remote name this repository knows it by (configured remotes first)."""
    names: dict[str, str] = {}
    for r in list(repo.remotes.values()) + list(proxied_remotes(repo, state).values()):
        if r.uuid and r.uuid not in names:
            names[r.uuid] = r.name
    return names


def display_description(
    repo: Repository, state: AnnexState, uuid: str, names: dict[str, str] | None = None
) -> str:
    """A description as git-annex shows it: `desc [remote]` or `desc [here]`.

    Pass `names` (from `remote_names`) when describing many repositories: computing it
    instantiates every proxied remote.
    """
    desc = state.description(uuid)
    if names is None:
        names = remote_names(repo, state)
    name = "here" if uuid == repo.uuid else names.get(uuid)
    if name:
        # git-annex leaves out a description that only repeats the remote name.
        return f"{desc} [{name}]" if desc and desc != name else f"[{name}]"
    return desc
