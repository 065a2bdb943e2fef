"""Renaming and deleting a cluster: every record that names it, changed together.

git-annex has no command for either; its records say what each must touch:

- A gateway's git config names the cluster (`annex.cluster.NAME=UUID`, and its nodes'
  `remote.R.annex-cluster-node=NAME ...`); other gateways are linked by the cluster's UUID
  (`remote.G.annex-cluster-gateway=UUID ...`), which a rename leaves alone.
- Clients learn the cluster's remote name (`origin-NAME`) only from the gateway's proxy.log
  entry `UUID:NAME` (Remote/Git.hs listProxied), which `updateproxy` rewrites from the config.
- uuid.log holds the description; `initcluster` writes `cluster NAME` when none is given, so a
  rename rewrites that default and keeps a description the admin chose.
- Deleting: with the config gone, updateproxy stops advertising it; cluster.log gets the empty
  node set updatecluster records when a cluster loses its last node (else readers keep adding the
  cluster's UUID to whereis for its old nodes' keys); trust.log and group.log get what
  `git annex dead UUID` writes, so `info` stops listing it. Nodes and their content are not
  touched: only the gateway's records of the cluster change.

Everything is validated before the first write, so a refused command leaves nothing changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from annextui.backend.admin import Admin, AdminError, Outcome
from annextui.backend.logs.values import legal_remote_name, serialize_cluster_nodes
from annextui.backend.repo import Remote, Repository
from annextui.backend.state import proxied_remotes

DEAD_TRUST = "X"  # trust.log value of `git annex dead` (Logs/Trust/Pure.hs)


class ClusterNameError(AdminError):
    """A new name git-annex would refuse (the CLI's usage error, exit 2)."""


@dataclass(frozen=True)
class ConfigChange:
    """One git config key this command set or removed (None), for the report and --json."""

    key: str
    value: str | None

    def to_json(self) -> dict[str, str | None]:
        return {"key": self.key, "value": self.value}


def default_description(name: str) -> str:
    """The description `git annex initcluster NAME` records when given none."""
    return f"cluster {name}"


def stored_name(name: str) -> str:
    """The name `annex.cluster.NAME` really gives a cluster: git lowercases a key's last part
    (`git config annex.cluster.Big` stores `big`), and git-annex reads it back so, so the
    nodes' `annex-cluster-node` values must use that spelling to match."""
    return name.lower()


class ClusterAdmin(Admin):
    """`annextui cluster rename|delete` on one gateway (Admin's helpers, its locking)."""

    def cluster_uuid(self, name: str) -> str:
        self.repo.require_annex()
        cu = self.repo.clusters.get(name)
        if cu is None:
            known = ", ".join(sorted(self.repo.clusters)) or "none"
            raise AdminError(
                f"There is no cluster named {name} on this gateway (its clusters: {known})."
            )
        return cu

    def other_gateways(self, cu: str) -> list[Remote]:
        """Remotes configured as other gateways of the cluster (`annex-cluster-gateway`)."""
        return sorted(
            (r for r in self.repo.remotes.values() if cu in r.cluster_gateways),
            key=lambda r: r.name,
        )

    # -- rename ------------------------------------------------------------------------------
    def check_rename(self, old: str, new: str) -> str:
        """The cluster's UUID if OLD can become NEW; AdminError (ClusterNameError) if not."""
        cu = self.cluster_uuid(old)
        if not legal_remote_name(new):
            raise ClusterNameError("That cluster name is not a valid git remote name.")
        new = stored_name(new)
        if new == old:
            raise AdminError(f"The cluster is already named {new}.")
        if new in self.repo.clusters:
            raise AdminError(f"There is already a cluster named {new} on this gateway.")
        # proxy.log lists remotes and clusters side by side: a client would get two remotes
        # named GATEWAY-NEW.
        state = self.state()
        taken = {*self.repo.remotes, *proxied_remotes(self.repo, state)}
        if new in taken:
            raise AdminError(
                f"{new} is the name of a remote of this gateway; clients would see two "
                f"remotes named <gateway>-{new}."
            )
        return cu

    def rename_cluster(self, old: str, new: str) -> Outcome:
        cu = self.check_rename(old, new)
        typed, new = new, stored_name(new)
        self.repo.require_writable()
        state = self.state()
        changes = [ConfigChange(f"annex.cluster.{new}", cu)]
        for r in sorted(self.repo.remotes.values(), key=lambda r: r.name):
            if old in r.cluster_nodes:
                names = [new if n == old else n for n in r.cluster_nodes]
                changes.append(ConfigChange(f"remote.{r.name}.annex-cluster-node", " ".join(names)))
        changes.append(ConfigChange(f"annex.cluster.{old}", None))
        self._apply(changes)
        out = Outcome(
            "cluster rename",
            [f"cluster rename {old} {new} ok"],
            {"old": old, "new": new, "uuid": cu},
            True,
        )
        # initcluster wrote the name as typed; the config key holds it lowercased.
        if (state.descriptions.get(cu) or "").lower() == default_description(old).lower():
            self._set_uuid_log("uuid.log", cu, default_description(typed))
            out.lines.append(f"Description: {default_description(typed)}")
        proxy = self.updateproxy(commit=False)
        out.lines.extend(proxy.lines)
        self._commit()
        self._finish(out, changes, self.other_gateways(cu), f"annextui cluster rename {old} {new}")
        return out

    # -- delete ------------------------------------------------------------------------------
    def delete_cluster(self, name: str) -> Outcome:
        cu = self.cluster_uuid(name)
        self.repo.require_writable()
        gateways = self.other_gateways(cu)
        changes = [ConfigChange(f"annex.cluster.{name}", None)]
        nodes: list[str] = []
        for r in sorted(self.repo.remotes.values(), key=lambda r: r.name):
            if name in r.cluster_nodes:
                nodes.append(r.name)
                rest = [n for n in r.cluster_nodes if n != name]
                changes.append(
                    ConfigChange(f"remote.{r.name}.annex-cluster-node", " ".join(rest) or None)
                )
            if cu in r.cluster_gateways:
                rest = [g for g in r.cluster_gateways if g != cu]
                changes.append(
                    ConfigChange(f"remote.{r.name}.annex-cluster-gateway", " ".join(rest) or None)
                )
        self._apply(changes)
        self._set_map_log("cluster.log", cu, serialize_cluster_nodes(set()))
        self._set_uuid_log("trust.log", cu, DEAD_TRUST)
        self._set_uuid_log("group.log", cu, "")
        out = Outcome(
            "cluster delete",
            [f"cluster delete {name} ok"],
            {"name": name, "uuid": cu, "nodes": nodes},
            True,
        )
        proxy = self.updateproxy(commit=False)
        out.lines.extend(proxy.lines)
        self._commit()
        self._finish(out, changes, gateways, f"annextui cluster delete {name}")
        return out

    # -- shared ------------------------------------------------------------------------------
    def _apply(self, changes: list[ConfigChange]) -> None:
        for change in changes:
            if change.value is None:
                self.repo.config_unset(change.key)
            else:
                self.repo.config_set(change.key, change.value)

    @staticmethod
    def _finish(
        out: Outcome, changes: list[ConfigChange], gateways: list[Remote], command: str
    ) -> None:
        """Record the config changes and tell what to run on the cluster's other gateways."""
        out.data["config"] = [c.to_json() for c in changes]
        out.data["other-gateways"] = [
            {"remote": g.name, "url": g.url, "uuid": g.uuid, "run": command} for g in gateways
        ]
        for g in gateways:
            out.lines.append(
                f"Gateway {g.name} ({g.url or 'no url'}) also serves this cluster: "
                f"run `{command}` there."
            )


def rename_on_gateways(repo: Repository, old: str, new: str, others: list[Repository]) -> Outcome:
    """Rename on this gateway and on the other gateways given as local repositories.

    Every gateway is checked before any is changed, so a name clash on one changes none.
    """
    admins = [ClusterAdmin(repo), *(ClusterAdmin(o) for o in others)]
    for admin in admins:
        admin.check_rename(old, new)
        admin.repo.require_writable()
    out = admins[0].rename_cluster(old, new)
    for admin in admins[1:]:
        _merge_other(out, admin.rename_cluster(old, new), admin.repo)
    return out


def delete_on_gateways(repo: Repository, name: str, others: list[Repository]) -> Outcome:
    """Delete on this gateway and on the other gateways given as local repositories."""
    admins = [ClusterAdmin(repo), *(ClusterAdmin(o) for o in others)]
    for admin in admins:
        admin.cluster_uuid(name)
        admin.repo.require_writable()
    out = admins[0].delete_cluster(name)
    for admin in admins[1:]:
        _merge_other(out, admin.delete_cluster(name), admin.repo)
    return out


def _merge_other(out: Outcome, other: Outcome, repo: Repository) -> None:
    """Fold another gateway's outcome into this one's; the hint to run it there is now done."""
    out.lines.append(f"On gateway {repo.top}:")
    out.lines.extend(f"  {line}" for line in other.lines if not line.startswith("Gateway "))
    hints = out.data.get("other-gateways")
    if isinstance(hints, list):
        done = [h for h in hints if isinstance(h, dict) and h.get("uuid") == repo.uuid]
        out.data["other-gateways"] = [h for h in hints if h not in done]
        names = {f"Gateway {h['remote']} (" for h in done}
        out.lines[:] = [ln for ln in out.lines if not any(ln.startswith(n) for n in names)]
    applied = out.data.setdefault("applied-on", [])
    if isinstance(applied, list):
        applied.append({"path": str(repo.top), "uuid": repo.uuid, "config": other.data["config"]})
