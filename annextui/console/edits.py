"""Staged cluster edits: what they are, what they would change, and applying them.

An edit is a small frozen dataclass whose `run` calls exactly what the headless CLI calls
(`Admin.initcluster`, `git config remote.R.annex-cluster-node` + `Admin.updatecluster`, ...).

`preview_edits` runs the same edits on a scratch copy of the repository (its git config, refs,
journal and merge bookkeeping; objects are shared through `objects/info/alternates`, so this is
cheap even for a large repository) and reports the difference in git config and in the resolved
git-annex branch logs. Nothing of the real repository is written by a preview.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

from annextui.backend.admin import Admin, AdminError, Outcome
from annextui.backend.branch import BranchView
from annextui.backend.clusteradmin import ClusterAdmin
from annextui.backend.logs import parse_map_log, parse_uuid_log, resolve_map_log, resolve_uuid_log
from annextui.backend.repo import Repository
from annextui.backend.units import SizeError, parse_size
from annextui.failures import USER_ERRORS, one_line

# Top-level branch logs an edit can change, and their family.
UUID_LOGS = (
    "uuid.log",
    "trust.log",
    "group.log",
    "preferred-content.log",
    "required-content.log",
    "remote.log",
)
MAP_LOGS = ("cluster.log", "proxy.log", "maxsize.log", "group-preferred-content.log")


class EditError(Exception):
    """An edit that cannot be staged (bad input)."""


@dataclass(frozen=True, slots=True)
class Edit:
    """One staged change. Subclasses implement `describe` and `run`; an edit that starts
    background work (a drain job) does that in `after_apply`, which a preview never calls."""

    #: Applying it starts a job (the console then shows its Jobs view).
    starts_job: ClassVar[bool] = False

    def describe(self) -> str:
        raise NotImplementedError

    def run(self, admin: Admin) -> list[Outcome]:
        raise NotImplementedError

    def after_apply(self, repo: Repository) -> list[str]:
        """Work started once the edit is applied to the real repository; what it says."""
        return []


@dataclass(frozen=True, slots=True)
class InitCluster(Edit):
    name: str
    description: str | None = None

    def describe(self) -> str:
        return f"init cluster {self.name}"

    def run(self, admin: Admin) -> list[Outcome]:
        return [admin.initcluster(self.name, self.description or None)]


@dataclass(frozen=True, slots=True)
class AddNode(Edit):
    remote: str
    cluster: str  # cluster name (annex.cluster.NAME)

    def describe(self) -> str:
        return f"add node {self.remote} to cluster {self.cluster}"

    def run(self, admin: Admin) -> list[Outcome]:
        repo = admin.repo
        remote = repo.remotes.get(self.remote)
        if remote is None:
            raise AdminError(f"No remote named {self.remote} exists.")
        current = remote.cluster_nodes
        if self.cluster not in current:
            repo.config_set(
                f"remote.{self.remote}.annex-cluster-node", " ".join([*current, self.cluster])
            )
        return [admin.updatecluster()]


@dataclass(frozen=True, slots=True)
class RemoveNode(Edit):
    remote: str
    cluster: str

    def describe(self) -> str:
        return f"remove node {self.remote} from cluster {self.cluster}"

    def run(self, admin: Admin) -> list[Outcome]:
        repo = admin.repo
        remote = repo.remotes.get(self.remote)
        if remote is None or self.cluster not in remote.cluster_nodes:
            raise AdminError(
                f"{self.remote} is not configured here as a node of {self.cluster}; "
                "remove it on the gateway that has it as a remote"
            )
        rest = [c for c in remote.cluster_nodes if c != self.cluster]
        key = f"remote.{self.remote}.annex-cluster-node"
        if rest:
            repo.config_set(key, " ".join(rest))
        else:
            repo.config_unset(key)
        return [admin.updatecluster()]


@dataclass(frozen=True, slots=True)
class ExtendCluster(Edit):
    gateway: str  # remote that is already a gateway of the cluster
    name: str

    def describe(self) -> str:
        return f"extend cluster {self.name} to this repository (via gateway {self.gateway})"

    def run(self, admin: Admin) -> list[Outcome]:
        return [admin.extendcluster(self.gateway, self.name)]


@dataclass(frozen=True, slots=True)
class RenameCluster(Edit):
    old: str  # cluster name here (annex.cluster.NAME)
    new: str

    def describe(self) -> str:
        return f"rename cluster {self.old} to {self.new}"

    def run(self, admin: Admin) -> list[Outcome]:
        return [ClusterAdmin(admin.repo).rename_cluster(self.old, self.new)]


@dataclass(frozen=True, slots=True)
class DeleteCluster(Edit):
    name: str

    def describe(self) -> str:
        return f"delete cluster {self.name} (its nodes and their content stay)"

    def run(self, admin: Admin) -> list[Outcome]:
        return [ClusterAdmin(admin.repo).delete_cluster(self.name)]


@dataclass(frozen=True, slots=True)
class DrainNode(Edit):
    """`annextui cluster drain NODE`: previewed as its dry run (the plan's figures, or the
    refusal with figures); applying starts the drain job in the background, which copies the
    node's keys to the other nodes, drops them from it and takes it out of the cluster."""

    node: str  # the node's UUID (never its name: names are data)
    label: str  # how the console names it, for describe() only

    starts_job: ClassVar[bool] = True

    def describe(self) -> str:
        return f"drain node {self.label} (copy its keys to the other nodes, then remove it)"

    def run(self, admin: Admin) -> list[Outcome]:
        from annextui.backend.balance import BalanceError
        from annextui.operations.drain import drain_lines, plan_drain
        from annextui.operations.nodes import GatewayNodes, NodeUnreachable

        try:
            nodes = GatewayNodes(admin.repo)
            try:
                plan = plan_drain(nodes, self.node)
            finally:
                nodes.close()
        except (BalanceError, NodeUnreachable) as exc:
            raise AdminError(str(exc)) from exc
        if plan.unplaced:
            raise AdminError(plan.refusal(nodes))
        lines = drain_lines(plan.summary(), nodes.name)
        lines.append("applying starts the drain in the background (the Jobs view follows it)")
        return [Outcome("cluster drain", lines)]

    def after_apply(self, repo: Repository) -> list[str]:
        from annextui.console.jobs_source import start_job
        from annextui.operations.jobs import JobStore, job_id

        log = JobStore(repo).log_path(job_id("drain", self.node))
        start_job(repo.top, ["cluster", "drain", self.node], log)
        return [f"drain of {self.label} started in the background; j shows it in the Jobs view"]


@dataclass(frozen=True, slots=True)
class SetGroups(Edit):
    target: str
    groups: tuple[str, ...]

    def describe(self) -> str:
        return f"set groups of {self.target} to {' '.join(self.groups) or '(none)'}"

    def run(self, admin: Admin) -> list[Outcome]:
        listed = admin.group(self.target).data.get("groups")
        current = {str(g) for g in listed} if isinstance(listed, list) else set()
        wanted = set(self.groups)
        out = [admin.group(self.target, g, remove=True) for g in sorted(current - wanted)]
        out += [admin.group(self.target, g) for g in sorted(wanted - current)]
        return out


@dataclass(frozen=True, slots=True)
class SetWanted(Edit):
    target: str
    expression: str

    def describe(self) -> str:
        return f"set wanted of {self.target} to {self.expression}"

    def run(self, admin: Admin) -> list[Outcome]:
        return [admin.wanted(self.target, self.expression)]


@dataclass(frozen=True, slots=True)
class SetMaxsize(Edit):
    target: str
    size: str

    def __post_init__(self) -> None:
        try:
            parse_size(self.size)
        except SizeError as exc:
            raise EditError(f"{self.size!r}: {exc}") from exc

    def describe(self) -> str:
        return f"set maxsize of {self.target} to {self.size}"

    def run(self, admin: Admin) -> list[Outcome]:
        return [admin.maxsize(self.target, self.size)]


# -- running ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EditOutcome:
    edit: Edit
    lines: tuple[str, ...]
    error: str | None = None


def run_edits(repo: Repository, edits: Sequence[Edit]) -> list[EditOutcome]:
    """Run edits in order; stop at the first that fails (the ones before stay applied)."""
    out = []
    admin: Admin | None = None
    for edit in edits:
        try:
            admin = admin or Admin(repo)
            outcomes = edit.run(admin)
        except USER_ERRORS as exc:
            out.append(EditOutcome(edit, (), one_line(exc)))
            break
        out.append(EditOutcome(edit, tuple(line for o in outcomes for line in o.lines)))
    return out


def _unwritable(repo: Repository) -> str | None:
    """Why the edits could not be applied to `repo` at all (we may not write it), or None."""
    try:
        repo.require_writable()
    except PermissionError as exc:
        return f"this repository cannot be changed: {one_line(exc)}"
    return None


def apply_edits(path: Path, edits: Sequence[Edit]) -> list[EditOutcome]:
    repo = Repository(path)
    refused = _unwritable(repo)
    if refused and edits:
        return [EditOutcome(edits[0], (), refused)]
    out = []
    for outcome in run_edits(repo, edits):
        if outcome.error is None:
            try:
                started = outcome.edit.after_apply(repo)
            except USER_ERRORS as exc:
                outcome = replace(outcome, error=one_line(exc))
            else:
                outcome = replace(outcome, lines=(*outcome.lines, *started))
        out.append(outcome)
    return out


# -- previewing ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfigChange:
    key: str
    old: tuple[str, ...]
    new: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BranchChange:
    file: str
    field: str  # a UUID (most logs) or a group name (group-preferred-content.log)
    old: str | None
    new: str | None


@dataclass(frozen=True, slots=True)
class Preview:
    edits: tuple[Edit, ...]
    config: tuple[ConfigChange, ...] = ()
    branch: tuple[BranchChange, ...] = ()
    outcomes: tuple[EditOutcome, ...] = ()
    error: str | None = None

    @property
    def empty(self) -> bool:
        return not self.config and not self.branch


@dataclass
class _Captured:
    config: dict[str, tuple[str, ...]] = field(default_factory=dict)
    branch: dict[str, dict[str, str]] = field(default_factory=dict)


def _capture(repo: Repository) -> _Captured:
    repo.reload_config()
    view = BranchView(repo)
    branch: dict[str, dict[str, str]] = {}
    for f in UUID_LOGS:
        branch[f] = {
            u: line.value for u, line in resolve_uuid_log(parse_uuid_log(view.read(f))).items()
        }
    for f in MAP_LOGS:
        branch[f] = {
            k: line.value for k, line in resolve_map_log(parse_map_log(view.read(f))).items()
        }
    return _Captured({k: tuple(v) for k, v in repo.config.items()}, branch)


def _copy_if_exists(src: Path, dst: Path) -> None:
    if src.is_dir():
        shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
    elif src.is_file():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)


def make_scratch(repo: Repository, where: Path) -> Repository:
    """A throwaway repository with `repo`'s config, refs and journal, sharing its objects."""
    gitdir = where / "scratch" / ".git"
    (gitdir / "objects" / "info").mkdir(parents=True)
    (gitdir / "objects" / "pack").mkdir()
    (gitdir / "objects" / "info" / "alternates").write_text(str(repo.gitdir / "objects") + "\n")
    for name in ("config", "HEAD", "packed-refs"):
        _copy_if_exists(repo.gitdir / name, gitdir / name)
    _copy_if_exists(repo.gitdir / "refs", gitdir / "refs")
    (gitdir / "refs").mkdir(exist_ok=True)
    for name in ("journal", "journal-private", "mergedrefs", "ignoredrefs"):
        _copy_if_exists(repo.annexdir / name, gitdir / "annex" / name)
    (gitdir / "annex" / "othertmp").mkdir(parents=True, exist_ok=True)
    scratch = Repository(where / "scratch")
    # Relative remote paths are relative to the real repository, not to the scratch copy.
    for r in repo.remotes.values():
        path = r.local_path(repo.top)
        if path is not None and path != r.local_path():  # a relative path
            subprocess.run(
                [
                    "git",
                    "config",
                    "--file",
                    str(gitdir / "config"),
                    f"remote.{r.name}.url",
                    str(path),
                ],
                check=True,
                capture_output=True,
            )
    scratch.reload_config()
    return scratch


def preview_edits(path: Path, edits: Sequence[Edit]) -> Preview:
    """What applying `edits` would change, found by applying them to a scratch copy."""
    repo = Repository(path)
    refused = _unwritable(repo)
    if refused:
        return Preview(tuple(edits), error=refused)
    with tempfile.TemporaryDirectory(prefix="annextui-preview-") as tmp:
        scratch = make_scratch(repo, Path(tmp))
        before = _capture(scratch)
        outcomes = run_edits(scratch, edits)
        after = _capture(Repository(scratch.top))
    error = next((o.error for o in outcomes if o.error), None)
    config = []
    for key in sorted(set(before.config) | set(after.config)):
        old, new = before.config.get(key, ()), after.config.get(key, ())
        if old != new:
            config.append(ConfigChange(key, old, new))
    branch = []
    for f in (*UUID_LOGS, *MAP_LOGS):
        b, a = before.branch.get(f, {}), after.branch.get(f, {})
        for k in sorted(set(b) | set(a)):
            if b.get(k) != a.get(k):
                branch.append(BranchChange(f, k, b.get(k), a.get(k)))
    return Preview(tuple(edits), tuple(config), tuple(branch), tuple(outcomes), error)
