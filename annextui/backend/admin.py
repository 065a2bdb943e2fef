"""Administration commands of upstream's proxy and cluster work, written as git-annex writes them.

Each command validates everything first and raises `AdminError` before touching git config or the
branch, so a refused command leaves nothing half-done. Messages match git-annex's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from annextui.backend.branch import BranchView
from annextui.backend.clock import current_clock
from annextui.backend.journal import Journal
from annextui.backend.logs import parse_map_log, parse_uuid_log, set_map_value, set_uuid_value
from annextui.backend.logs.values import (
    ProxiedRemote,
    legal_remote_name,
    serialize_cluster_nodes,
    serialize_groups,
    serialize_proxy_value,
)
from annextui.backend.repo import Remote, Repository
from annextui.backend.state import (
    AnnexState,
    display_description,
    load_state,
    proxied_remotes,
)
from annextui.backend.uuids import is_cluster_uuid, new_cluster_uuid, new_repo_uuid


class AdminError(Exception):
    """A command that cannot be carried out; the message is git-annex's where it has one."""


@dataclass
class Outcome:
    """What a command printed and did, for the CLI (text or --json) and the console."""

    command: str
    lines: list[str] = field(default_factory=list)
    data: dict[str, object] = field(default_factory=dict)
    changed: bool = False

    def render(self, *, as_json: bool) -> str:
        """What the CLI prints: the lines, or git-annex's --json record (one line)."""
        if not as_json:
            return "\n".join(self.lines)
        import json

        payload: dict[str, object] = {"command": self.command}
        payload.update(self.data)
        payload.setdefault("error-messages", [])
        payload["success"] = True
        return json.dumps(payload, sort_keys=True)


class Admin:
    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.journal = Journal(repo)
        if repo.uuid:
            repo.learn_local_remote_uuids()
            # git-annex merges other git-annex branches before a command changes anything; in a
            # repository it may not write, queries still work, reading the unmerged branches too
            # (Annex.Branch.updateTo catches permission denied). A change then fails alone.
            if BranchView(repo).unmerged:
                with contextlib.suppress(PermissionError):
                    self.journal.merge()

    # -- shared helpers ----------------------------------------------------------------------
    def state(self) -> AnnexState:
        return load_state(BranchView(self.repo))

    def all_remotes(self, state: AnnexState | None = None) -> dict[str, Remote]:
        """Configured git remotes plus the proxied remotes git-annex makes from the branch."""
        st = state or self.state()
        out = dict(self.repo.remotes)
        out.update(proxied_remotes(self.repo, st))
        return out

    def resolve_repo(self, ident: str, state: AnnexState | None = None) -> str:
        """A remote name, UUID, description or `here` -> UUID (as `Remote.nameToUUID`)."""
        own = self.repo.require_annex()
        if ident in ("here", "."):
            return own
        st = state or self.state()
        remote = self.all_remotes(st).get(ident)
        if remote is not None and remote.uuid:
            return remote.uuid
        if ident in st.known_uuids() or ident == own:
            return ident
        matches = [u for u, d in st.descriptions.items() if d == ident]
        if len(matches) == 1:
            return matches[0]
        raise AdminError(f'there is no available git remote named "{ident}"')

    def _config_set(self, name: str, value: str) -> None:
        self.repo.require_writable()
        self.repo.config_set(name, value)

    def _commit(self) -> None:
        if self.repo.config_bool("annex.alwayscommit", default=True):
            self.journal.commit()

    def _set_uuid_log(self, path: str, uuid: str, value: str) -> bool:
        self.repo.require_writable()
        clock = current_clock()
        return self.journal.change(
            path, lambda cur: set_uuid_value(parse_uuid_log(cur), uuid, value, clock)
        )

    def _set_map_log(self, path: str, field_: str, value: str) -> bool:
        self.repo.require_writable()
        clock = current_clock()
        return self.journal.change(
            path, lambda cur: set_map_value(parse_map_log(cur), field_, value, clock)
        )

    def _set_uuid_log_if_changed(
        self, path: str, uuid: str, value: str, current: Callable[[AnnexState], str | None]
    ) -> bool:
        if current(self.state()) == value:
            return False
        return self._set_uuid_log(path, uuid, value)

    # -- init --------------------------------------------------------------------------------
    def init(self, description: str | None = None) -> Outcome:
        import getpass
        import socket

        if self.repo.version is not None and self.repo.version < 10:
            raise AdminError(f"repository version {self.repo.version} is not supported; upgrade it")
        self.repo.require_writable()
        uuid = self.repo.uuid or new_repo_uuid()
        if description is None:
            description = f"{getpass.getuser()}@{socket.gethostname()}:{self.repo.top}"
        if not self.repo.uuid:
            self.repo.config_set("annex.uuid", uuid)
        if self.repo.version is None:
            self.repo.config_set("annex.version", "10")
        if not self.repo.bare:
            self.repo.config_set("filter.annex.smudge", "git-annex smudge -- %f")
            self.repo.config_set("filter.annex.clean", "git-annex smudge --clean -- %f")
            self.repo.config_set("filter.annex.process", "git-annex filter-process")
            attrs = self.repo.gitdir / "info" / "attributes"
            attrs.parent.mkdir(parents=True, exist_ok=True)
            existing = attrs.read_text() if attrs.exists() else ""
            if "filter=annex" not in existing:
                attrs.write_text(existing + "* filter=annex\n")
        self.journal.ensure_branch()
        self._set_uuid_log_if_changed(
            "uuid.log", uuid, description.replace("\n", "\\n"), lambda s: s.descriptions.get(uuid)
        )
        for sub in ("objects", "tmp", "othertmp", "journal"):
            (self.repo.annexdir / sub).mkdir(parents=True, exist_ok=True)
        self._commit()
        return Outcome("init", [f"init {description} ok"], {"uuid": uuid}, True)

    def describe(self, ident: str, description: str) -> Outcome:
        u = self.resolve_repo(ident)
        changed = self._set_uuid_log("uuid.log", u, description.replace("\n", "\\n"))
        self._commit()
        return Outcome("describe", [f"describe {ident} ok"], {"uuid": u}, changed)

    # -- clusters ----------------------------------------------------------------------------
    def initcluster(self, name: str, description: str | None = None) -> Outcome:
        self.repo.require_annex()
        if not legal_remote_name(name):
            raise AdminError("That cluster name is not a valid git remote name.")
        out = Outcome("initcluster", [f"initcluster {name} ok"], {"name": name})
        if name not in self.repo.clusters:
            cu = new_cluster_uuid()
            self._config_set(f"annex.cluster.{name}", cu)
            self._set_uuid_log("uuid.log", cu, description or f"cluster {name}")
            out.changed = True
            self._commit()
        out.data["uuid"] = self.repo.clusters[name]
        return out

    def updatecluster(self) -> Outcome:
        self.repo.require_annex()
        state = self.state()
        remotes = self.all_remotes(state)
        out = Outcome("updatecluster")
        my_nodes: dict[str, dict[str, Remote]] = {}
        for r in remotes.values():
            if r.cluster_nodes and self._can_proxy(
                r, out, "Cannot use this remote as a cluster node."
            ):
                assert r.uuid is not None
                for cname in r.cluster_nodes:
                    my_nodes.setdefault(cname, {})[r.uuid] = r
        for cname, cu in sorted(self.repo.clusters.items()):
            mine = my_nodes.get(cname, {})
            recorded = state.clusters.get(cu, frozenset())
            proxied_nodes = {
                r.uuid
                for r in remotes.values()
                if r.uuid in recorded and r.option("annex-proxied-by")
            }
            allnodes = frozenset(mine) | frozenset(u for u in proxied_nodes if u)
            if allnodes == recorded:
                out.lines.append(f"No cluster node changes for cluster: {cname}")
                continue
            for u, r in sorted(mine.items()):
                if u not in recorded:
                    out.lines.append(f"Added node {r.name} to cluster: {cname}")
            for u in sorted(recorded - allnodes):
                desc = display_description(self.repo, state, u) or u
                out.lines.append(f"Removed node {desc} from cluster: {cname}")
            self._set_map_log("cluster.log", cu, serialize_cluster_nodes(allnodes))
            out.changed = True
        proxy = self.updateproxy(commit=False)
        out.lines.extend(proxy.lines)
        out.changed |= proxy.changed
        self._commit()
        return out

    def _can_proxy(self, r: Remote, out: Outcome, cannot: str) -> bool:
        if not r.uuid:
            out.lines.append(f"{r.name} is a git remote without a known annex-uuid. {cannot}")
            return False
        return True

    def updateproxy(self, *, commit: bool = True) -> Outcome:
        own = self.repo.require_annex()
        state = self.state()
        remotes = self.all_remotes(state)
        out = Outcome("updateproxy")
        candidates = [
            r
            for r in remotes.values()
            if r.uuid
            and (r.flag("annex-proxy") or r.cluster_nodes)
            and self._can_proxy(r, out, "Cannot proxy to this remote.")
        ]
        # Cycle safety: never proxy for ourselves, and one name per repository (a configured
        # remote before a proxied one, then the shortest chain), as a loop of gateways would
        # otherwise list the same repository once per way round.
        candidates.sort(key=lambda r: (bool(r.option("annex-proxied-by")), len(r.name), r.name))
        seen: set[str] = {own}
        remote_proxies = set()
        for r in candidates:
            assert r.uuid is not None
            if r.uuid not in seen:
                seen.add(r.uuid)
                remote_proxies.add(ProxiedRemote(r.uuid, r.name))
        my_clusters = [ProxiedRemote(cu, name) for name, cu in self.repo.clusters.items()]
        mine = {p.uuid for p in remote_proxies} | {p.uuid for p in my_clusters}
        my_cluster_uuids = set(self.repo.clusters.values())
        node_clusters = state.node_to_clusters()
        remote_nodes = [
            ProxiedRemote(r.uuid, r.name)
            for r in remotes.values()
            if r.uuid
            and r.option("annex-proxied-by")
            and node_clusters.get(r.uuid, set()) & my_cluster_uuids
            and r.uuid not in mine
        ]
        # Proxies of proxies (proxychain.py): what gateways proxied with annex-proxy reach.
        from annextui.backend.proxychain import chained_proxied_remotes

        listed = mine | {p.uuid for p in remote_nodes}
        chained = {
            ProxiedRemote(r.uuid, r.name)
            for r in chained_proxied_remotes(self.repo, state).values()
            if r.uuid and r.uuid not in listed and r.uuid != own
        }
        proxies = remote_proxies | set(my_clusters) | set(remote_nodes) | chained
        old = set(state.proxies.get(own, []))
        if old == proxies:
            out.lines.append("No proxy changes to record.")
        else:
            for p in sorted(old | proxies):
                if p in proxies and p not in old:
                    out.lines.append(f"Started proxying for {p.name}")
                elif p in old and p not in proxies:
                    out.lines.append(f"Stopped proxying for {p.name}")
            self._set_map_log("proxy.log", own, serialize_proxy_value(proxies))
            out.changed = True
            if commit:
                self._commit()
        out.data["proxies"] = [{"uuid": p.uuid, "name": p.name} for p in sorted(proxies)]
        return out

    def extendcluster(self, gateway: str, name: str) -> Outcome:
        self.repo.require_annex()
        state = self.state()
        remotes = self.all_remotes(state)
        cluster_remote_name = f"{gateway}-{name}"
        cluster_remote = remotes.get(cluster_remote_name)
        if cluster_remote is None:
            raise AdminError(
                f"Expected to find a cluster remote named {cluster_remote_name} that is "
                f"accessed via {gateway}, but there is no such remote. Perhaps you need to "
                f"git fetch from {gateway}, or git-annex updatecluster needs to be run there?"
            )
        if gateway not in self.repo.remotes:
            raise AdminError(f"No remote named {gateway} exists.")
        cu = cluster_remote.uuid or ""
        if not is_cluster_uuid(cu):
            raise AdminError(f"{cluster_remote_name} is not a cluster remote.")
        if name not in self.repo.clusters:
            self._config_set(f"annex.cluster.{name}", cu)
        self._config_set(f"remote.{gateway}.annex-cluster-gateway", cu)
        out = Outcome("extendcluster", [f"extendcluster {name} ok"], {"uuid": cu}, True)
        more = self.updatecluster()
        out.lines.extend(more.lines)
        return out

    # -- sizes, groups, preferred content ----------------------------------------------------
    def maxsize(self, ident: str, size: str | None = None) -> Outcome:
        from annextui.backend.units import SizeError, format_precise, parse_size

        self.repo.require_annex()
        state = self.state()
        u = self.resolve_repo(ident, state)
        if size is None:
            current = state.maxsize.get(u)
            text = format_precise(current) if current is not None else ""
            return Outcome("maxsize", [text], {"input": [ident], "maxsize": current})
        try:
            n = parse_size(size)
        except SizeError as exc:
            raise AdminError("Unable to parse size.") from exc
        changed = self._set_map_log("maxsize.log", u, str(n))
        self._commit()
        return Outcome("maxsize", [f"maxsize {ident} ok"], {"uuid": u, "maxsize": n}, changed)

    def group(self, ident: str, group: str | None = None, *, remove: bool = False) -> Outcome:
        self.repo.require_annex()
        state = self.state()
        u = self.resolve_repo(ident, state)
        current = state.groups.get(u, frozenset())
        if group is None:
            return Outcome("group", [serialize_groups(current)], {"groups": sorted(current)})
        if any(c.isspace() for c in group) or not group:
            raise AdminError("group names cannot contain whitespace")
        new = (current - {group}) if remove else (current | {group})
        changed = False
        if new != current:
            changed = self._set_uuid_log("group.log", u, serialize_groups(new))
            self._commit()
        verb = "ungroup" if remove else "group"
        return Outcome(verb, [f"{verb} {ident} ok"], {"uuid": u, "groups": sorted(new)}, changed)

    def wanted(
        self, ident: str, expression: str | None = None, *, required: bool = False
    ) -> Outcome:
        self.repo.require_annex()
        state = self.state()
        u = self.resolve_repo(ident, state)
        table = state.required if required else state.preferred
        verb = "required" if required else "wanted"
        if expression is None:
            return Outcome(verb, [table.get(u, "")], {"expression": table.get(u)})
        _check_expression(expression)
        changed = self._set_uuid_log(
            f"{verb if required else 'preferred'}-content.log", u, expression
        )
        self._commit()
        return Outcome(verb, [f"{verb} {ident} ok"], {"uuid": u, "expression": expression}, changed)

    def groupwanted(self, group: str, expression: str | None = None) -> Outcome:
        self.repo.require_annex()
        state = self.state()
        if expression is None:
            return Outcome("groupwanted", [state.group_preferred.get(group, "")])
        _check_expression(expression)
        changed = self._set_map_log("group-preferred-content.log", group, expression)
        self._commit()
        return Outcome("groupwanted", [f"groupwanted {group} ok"], {"group": group}, changed)


def _check_expression(expression: str) -> None:
    from annextui.backend.preferred import ExpressionError, parse

    try:
        parse(expression)
    except ExpressionError as exc:
        raise AdminError(f"Parse error: {exc.git_annex_message}") from exc
