"""Clusters: each cluster with its gateways and nodes as a tree, and the cluster edits.

Edits (init a cluster, add or remove a node, extend to this repository as another gateway, set a
repository's groups, wanted or maxsize) are staged on the app; ctrl+s shows them as a diff of
git config and git-annex branch changes and applies them after confirmation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

from annextui.backend.logs.values import legal_remote_name
from annextui.backend.units import format_precise
from annextui.console.edits import (
    AddNode,
    DeleteCluster,
    DrainNode,
    Edit,
    ExtendCluster,
    InitCluster,
    RemoveNode,
    RenameCluster,
)
from annextui.console.snapshot import RepoRow, Snapshot
from annextui.screens.dialogs import PickScreen, PromptScreen
from annextui.screens.literal import clean, lines, markup
from annextui.screens.node_edits import RepoEditing
from annextui.screens.widgets import human, matches, short_path, styled, usage_state


@dataclass(frozen=True, slots=True)
class Ref:
    kind: str  # "cluster", "gateways", "nodes", "gateway", "node"
    cluster: str  # cluster UUID
    uuid: str = ""


class ClustersScreen(RepoEditing):
    VIEW = "clusters"
    TITLE_TEXT = "Clusters"
    HELP = (
        "Clusters with their gateways and nodes. Edits are staged (nothing changes yet): "
        "i inits a cluster with this repository as gateway, a adds a node (one of this "
        "repository's remotes), x removes the selected node, n renames the selected cluster, "
        "d deletes it (its nodes and their content stay), D drains a node of it (its keys "
        "copied to the other nodes as their preferred content and maxsize allow, dropped from "
        "it, and the node taken out of the cluster: the review shows the plan's figures or why "
        "it cannot; applying starts the job in the background and shows the Jobs view), e makes "
        "this repository another gateway of a cluster it sees through a gateway remote, g/w/m "
        "set the selected repository's groups, wanted expression or maxsize. ctrl+s shows the "
        "staged edits as a diff of git config and git-annex branch changes and applies them "
        "only after you confirm (the dialog starts on No); ctrl+z drops the last staged edit. "
        "Applying runs the same commands as the headless CLI (initcluster, git config + "
        "updatecluster, cluster rename, cluster delete, cluster drain, extendcluster, group, "
        "wanted, maxsize)."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("i", "init_cluster", "Init cluster", id="clusters.init"),
        Binding("a", "add_node", "Add node", id="clusters.add_node"),
        Binding("x", "remove_node", "Remove node", id="clusters.remove_node"),
        # Not in the footer (it would push q ? ^p off at 120 columns): listed by ? and ^p.
        Binding("n", "rename_cluster", "Rename cluster", id="clusters.rename", show=False),
        Binding("d", "delete_cluster", "Delete cluster", id="clusters.delete", show=False),
        Binding(
            "D",
            "drain_node",
            "Drain node",
            id="clusters.drain",
            show=False,
            tooltip="Copy a node's keys to the other nodes, drop them, take it out",
        ),
        Binding(
            "e",
            "extend_cluster",
            "Extend",
            id="clusters.extend",
            tooltip="Make this repository another gateway of a cluster",
        ),
        Binding("g", "set_group", "Group", id="clusters.group"),
        Binding("w", "set_wanted", "Wanted", id="clusters.wanted"),
        Binding("m", "set_maxsize", "Maxsize", id="clusters.maxsize"),
    ]
    MUTATING = RepoEditing.MUTATING | {
        "init_cluster",
        "add_node",
        "remove_node",
        "rename_cluster",
        "delete_cluster",
        "drain_node",
        "extend_cluster",
    }

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="clusters-body"):
            yield Tree[Ref]("clusters", id="cluster-tree")
            with Vertical(id="cluster-side"):
                yield Static("", id="cluster-details", classes="panel")
                yield Static("", id="staged", classes="panel")

    def on_mount(self) -> None:
        self._tree_nodes: dict[Ref, TreeNode[Ref]] = {}
        tree: Tree[Ref] = self.query_one(Tree)
        tree.show_root = False
        tree.guide_depth = 3
        self.query_one("#cluster-details").border_title = "Selected"
        self.query_one("#staged").border_title = "Staged edits"
        for attr in ("sizes", "reach"):
            self.watch(self.app, attr, lambda _v: self._rebuild(), init=False)
        self.staged_changed()

    def main_widget(self) -> Widget | None:
        return self.query_one(Tree)

    def show_snapshot(self, snapshot: Snapshot) -> None:
        self._rebuild()

    def filter_changed(self, text: str) -> None:
        self._rebuild()

    # -- the tree ----------------------------------------------------------------------------
    def _text(self, *parts: tuple[str, str | None] | str, bold: bool = False) -> Text:
        """Rich text for tree labels (the Tree takes Rich text): (text, state) pieces."""
        out = Text()
        for part in parts:
            if isinstance(part, str):
                out.append(clean(part), style="bold" if bold else "")
            else:
                text, state = part
                out.append_text(styled(self.app, text, state))
        return out

    def _node_label(self, snap: Snapshot, uuid: str, kind: str) -> Text:
        row = snap.repos.get(uuid)
        reach = self.console.reach.get(uuid)
        dot: tuple[str, str | None] = ("● " if kind == "node" else "◆ ", None)
        if reach is not None:
            dot = ("● ", "ok") if reach.ok else ("✖ ", "error")
        label = self._text(dot)
        label.append(clean(snap.label(uuid)), style="bold")
        if uuid == snap.uuid:
            label.append_text(styled(self.app, " (here)", "accent"))
        if row is None:
            return label
        if row.groups:
            label.append_text(styled(self.app, "  · " + " ".join(row.groups), "muted"))
        if row.maxsize is not None:
            sizes = self.console.sizes
            used = sizes.sizes.get(uuid) if sizes else None
            if row.maxsize and sizes is not None:
                b = used.size if used else 0
                pct = b / row.maxsize
                label.append_text(styled(self.app, "  · ", "muted"))
                label.append_text(
                    styled(
                        self.app,
                        f"{human(b)} / {human(row.maxsize)} {pct:.0%}",
                        usage_state(pct),
                    )
                )
            else:
                label.append_text(styled(self.app, f"  · max {human(row.maxsize)}", "muted"))
        return label

    def _entries(self, snap: Snapshot) -> list[tuple[Ref | None, Ref, Text, bool]]:
        """(parent, ref, label, leaf) for every line of the tree, in order."""
        out: list[tuple[Ref | None, Ref, Text, bool]] = []
        needle = self.filter_text
        for c in snap.info.clusters:
            cref = Ref("cluster", c.uuid)
            label = self._text(snap.cluster_name(c.uuid), bold=True)
            label.append_text(styled(self.app, f"  {c.description} · {c.uuid[:8]}", "muted"))
            if c.uuid in snap.local_clusters.values():
                label.append_text(styled(self.app, "  (gateway here)", "accent"))
            out.append((None, cref, label, False))
            groups = (
                ("gateways", "gateway", c.gateways),
                ("nodes", "node", tuple(sorted(c.nodes, key=snap.label))),
            )
            for title, kind, members in groups:
                sref = Ref(title, c.uuid)
                out.append((cref, sref, self._text(title, (f" ({len(members)})", "muted")), False))
                for u in members:
                    row = snap.repos.get(u)
                    hay = " ".join(
                        [
                            snap.label(u),
                            u,
                            row.description if row else "",
                            *(row.groups if row else ()),
                        ]
                    )
                    if matches(hay, needle):
                        out.append(
                            (sref, Ref(kind, c.uuid, u), self._node_label(snap, u, kind), True)
                        )
        if not snap.info.clusters:
            out.append(
                (
                    None,
                    Ref("none", ""),
                    styled(
                        self.app,
                        "no clusters — i inits one with this repository as gateway",
                        "muted",
                    ),
                    True,
                )
            )
        return out

    def _rebuild(self) -> None:
        snap = self.console.snapshot
        if snap is None:
            return
        tree: Tree[Ref] = self.query_one(Tree)
        entries = self._entries(snap)
        refs = [e[1] for e in entries]
        if refs == list(self._tree_nodes):
            for _parent, ref, label, _leaf in entries:
                node = self._tree_nodes[ref]
                if node.label != label:
                    node.set_label(label)
            self._show_details()
            return
        cursor = tree.cursor_node.data if tree.cursor_node is not None else None
        tree.clear()
        self._tree_nodes = {}
        for parent, ref, label, leaf in entries:
            base = tree.root if parent is None else self._tree_nodes[parent]
            if leaf:
                self._tree_nodes[ref] = base.add_leaf(label, data=ref)
            else:
                self._tree_nodes[ref] = base.add(label, data=ref, expand=True)
        target = self._tree_nodes.get(cursor) if cursor is not None else None
        if target is None:
            target = next(
                (n for r, n in self._tree_nodes.items() if r.kind == "node"),
                next(iter(self._tree_nodes.values()), None),
            )
        if target is not None:
            self.call_after_refresh(tree.move_cursor, target)
        self._show_details()

    def select_ref(self, ref: Ref) -> bool:
        """Put the cursor on the line for `ref` (tests and the palette use this)."""
        node = self._tree_nodes.get(ref)
        if node is None:
            return False
        self.query_one(Tree).move_cursor(node)
        return True

    @on(Tree.NodeHighlighted)
    def _highlighted(self) -> None:
        self._show_details()

    def _selected(self) -> Ref | None:
        node = self.query_one(Tree).cursor_node
        return node.data if node is not None else None

    def _show_details(self) -> None:
        snap = self.console.snapshot
        ref = self._selected()
        box = self.query_one("#cluster-details", Static)
        if snap is None or ref is None or ref.kind == "none":
            box.update("[$text-muted]nothing selected[/]")
            return
        if ref.uuid:
            box.update(self._repo_details(snap, snap.repos.get(ref.uuid), ref))
            return
        c = snap.cluster(ref.cluster)
        if c is None:
            box.update("")
            return
        sizes = self.console.sizes
        used = sum(sizes.sizes[u].size for u in c.nodes if sizes and u in sizes.sizes)
        cap = sum(snap.repos[u].maxsize or 0 for u in c.nodes if u in snap.repos)
        stored = human(used) if sizes else "…"
        if cap and sizes:
            stored += f" of {human(cap)} ({used / cap:.0%})"
        box.update(
            markup(
                "[b]cluster $name[/b]\nuuid        $uuid\ndescription $description\n"
                "gateways    $gateways\nnodes       $nodes\nstored      $stored",
                name=snap.cluster_name(c.uuid),
                uuid=c.uuid,
                description=c.description,
                gateways=", ".join(snap.label(g) for g in c.gateways),
                nodes=len(c.nodes),
                stored=stored,
            )
        )

    def _repo_details(self, snap: Snapshot, row: RepoRow | None, ref: Ref) -> Content:
        if row is None:
            return markup("[b]$uuid[/b]\n[$text-muted]not yet fetched[/]", uuid=ref.uuid)
        sizes = self.console.sizes
        used = sizes.sizes.get(row.uuid) if sizes else None
        reach = self.console.reach.get(row.uuid)
        stored = human(used.size) if used else ("0 B" if sizes else "…")
        maxsize = format_precise(row.maxsize) if row.maxsize is not None else "-"
        parts = [
            markup("[b]$label[/b]  [$text-muted]$kind[/]", label=row.label, kind=ref.kind),
            markup("uuid        $v", v=row.uuid),
            markup("description $v", v=row.description),
            markup("remote      $name  $url", name=row.name or "-", url=row.url or ""),
            markup("groups      $v", v=" ".join(row.groups) or "-"),
            markup("wanted      $v", v=row.wanted or "-"),
            markup("maxsize     $v", v=maxsize),
            markup("stored      $v", v=stored + (f" in {used.keys} keys" if used else "")),
        ]
        if reach is not None:
            state = "success" if reach.ok else "error"
            parts.append(
                markup(
                    f"reachable   [$text-{state}]$state[/] $detail",
                    state=reach.state,
                    detail=short_path(reach.detail, 30),
                )
            )
        return lines(*parts)

    def staged_changed(self) -> None:
        staged = self.console.staged
        box = self.query_one("#staged", Static)
        if not staged:
            box.update("[$text-muted]none — edits wait here until ctrl+s[/]")
            return
        box.update(
            lines(
                *(markup(f"{i}. $edit", edit=e.describe()) for i, e in enumerate(staged, 1)),
                "[$text-muted]ctrl+s review & apply · ctrl+z unstage last[/]",
            )
        )

    # -- edits -------------------------------------------------------------------------------
    def _stage(self, edit: Edit) -> None:
        self.console.stage(edit)

    def _cluster_here(self, snap: Snapshot, ref: Ref | None) -> str | None:
        """The local name of the selected cluster if this repository is its gateway."""
        if ref is None or not ref.cluster:
            clusters = list(snap.local_clusters)
            if len(clusters) == 1:
                return clusters[0]
            self.notify(
                "Select a cluster first." if clusters else "No cluster here yet: i inits one.",
                severity="warning",
            )
            return None
        for name, cu in snap.local_clusters.items():
            if cu == ref.cluster:
                return name
        self.notify(
            f"This repository is not a gateway of {snap.cluster_name(ref.cluster)}: "
            "change it on one of its gateways.",
            severity="warning",
        )
        return None

    def _with_cluster_here(self, snap: Snapshot, then: Callable[[str], None]) -> None:
        """Run `then` with the selected cluster's local name; with none selected and several
        clusters here, ask which."""
        ref = self._selected()
        if (ref is None or not ref.cluster) and len(snap.local_clusters) > 1:
            choices = [
                (name, f"{name}  {snap.info.state.description(cu)}  {cu}")
                for name, cu in sorted(snap.local_clusters.items())
            ]
            self.app.push_screen(
                PickScreen("Which cluster?", choices),
                lambda picked: then(picked) if picked else None,
            )
            return
        name = self._cluster_here(snap, ref)
        if name is not None:
            then(name)

    def action_init_cluster(self) -> None:
        snap = self.console.snapshot
        if snap is None or self.refuse_if_readonly():
            return

        def validate(name: str) -> str | None:
            if not legal_remote_name(name):
                return "That cluster name is not a valid git remote name."
            if name in snap.local_clusters:
                return f"{name} is already a cluster here"
            return None

        def got_name(name: str | None) -> None:
            if not name:
                return
            self.app.push_screen(
                PromptScreen(
                    f"Description of cluster {name}",
                    value=f"cluster {name}",
                ),
                lambda desc: (
                    self._stage(InitCluster(name, desc or None)) if desc is not None else None
                ),
            )

        self.app.push_screen(
            PromptScreen(
                "Name of the new cluster (this repository becomes its gateway)",
                placeholder="e.g. mycluster",
                validate=validate,
            ),
            got_name,
        )

    def action_add_node(self) -> None:
        snap = self.console.snapshot
        if snap is None or self.refuse_if_readonly():
            return
        self._with_cluster_here(snap, lambda cname: self._pick_node(snap, cname))

    def _pick_node(self, snap: Snapshot, cname: str) -> None:
        cu = snap.local_clusters[cname]
        choices = []
        for name in snap.candidate_nodes(cu):
            r = snap.remotes[name]
            desc = snap.info.state.description(r.uuid or "")
            choices.append((name, f"{name}  {desc}  {r.url or ''}"))
        if not choices:
            self.notify("Every remote with a UUID is already a node of this cluster.")
            return
        self.app.push_screen(
            PickScreen(f"Add which remote as a node of {cname}?", choices),
            lambda picked: self._stage(AddNode(picked, cname)) if picked else None,
        )

    def action_rename_cluster(self) -> None:
        snap = self.console.snapshot
        if snap is None or self.refuse_if_readonly():
            return
        taken = {*snap.remotes, *snap.configured}

        def validate(new: str) -> str | None:
            if not legal_remote_name(new):
                return "That cluster name is not a valid git remote name."
            if new.lower() in {n.lower() for n in snap.local_clusters}:
                return f"{new} is already a cluster here"
            if new in taken:
                return f"{new} is a remote of this repository"
            return None

        def ask(old: str) -> None:
            self.app.push_screen(
                PromptScreen(f"New name of cluster {old}", value=old, validate=validate),
                lambda new: self._stage(RenameCluster(old, new)) if new else None,
            )

        self._with_cluster_here(snap, ask)

    def action_delete_cluster(self) -> None:
        snap = self.console.snapshot
        if snap is None or self.refuse_if_readonly():
            return
        self._with_cluster_here(snap, lambda name: self._stage(DeleteCluster(name)))

    def action_drain_node(self) -> None:
        snap = self.console.snapshot
        if snap is None or self.refuse_if_readonly():
            return
        self._with_cluster_here(snap, lambda cname: self._pick_drained(snap, cname))

    def _pick_drained(self, snap: Snapshot, cname: str) -> None:
        """Which node of the cluster to drain: the selected node first, so enter takes it."""
        cu = snap.local_clusters[cname]
        cluster = snap.cluster(cu)
        nodes = sorted(cluster.nodes, key=snap.label) if cluster is not None else []
        selected = self.selected_uuid()
        nodes.sort(key=lambda u: u != selected)
        if len(nodes) < 2:
            self.notify(f"Cluster {cname} has no other node to drain to.", severity="warning")
            return
        choices = [(u, f"{snap.label(u)}  {snap.info.state.description(u)}  {u}") for u in nodes]

        def picked(uuid: str | None) -> None:
            if uuid:
                self._stage(DrainNode(uuid, snap.label(uuid)))

        self.app.push_screen(
            PickScreen(
                f"Drain which node of {cname}?",
                choices,
                "Its keys are copied to the other nodes, dropped from it, and it leaves the "
                "cluster. Nothing happens until you review and apply (ctrl+s).",
            ),
            picked,
        )

    def action_remove_node(self) -> None:
        snap = self.console.snapshot
        ref = self._selected()
        if snap is None or self.refuse_if_readonly():
            return
        if ref is None or ref.kind != "node":
            self.notify("Select a node first.", severity="warning")
            return
        cname = self._cluster_here(snap, ref)
        if cname is None:
            return
        name = snap.node_remote_name(ref.uuid)
        remote = snap.remotes.get(name)
        if remote is None or name not in snap.configured or cname not in remote.cluster_nodes:
            self.notify(
                f"{snap.label(ref.uuid)} is not a node configured here "
                "(it is reached through another gateway).",
                severity="warning",
            )
            return
        self._stage(RemoveNode(name, cname))

    def action_extend_cluster(self) -> None:
        snap = self.console.snapshot
        if snap is None or self.refuse_if_readonly():
            return
        candidates = snap.extend_candidates()
        if not candidates:
            self.notify(
                "No cluster of another gateway is visible here. Add that gateway as a remote "
                "(ssh or annex+http), git fetch it, then extend.",
                severity="warning",
                timeout=8,
            )
            return
        choices = [
            (f"{gw}\t{name}", f"{name}  via gateway {gw}  ({cu})") for gw, name, cu in candidates
        ]

        def picked(choice: str | None) -> None:
            if choice:
                gw, _tab, name = choice.partition("\t")
                self._stage(ExtendCluster(gw, name))

        self.app.push_screen(
            PickScreen("Make this repository a gateway of which cluster?", choices), picked
        )

    def selected_uuid(self) -> str | None:
        ref = self._selected()
        return ref.uuid if ref is not None and ref.uuid else None
