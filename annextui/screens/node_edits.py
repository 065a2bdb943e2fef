"""Setting a repository's groups, wanted expression and maxsize: shared by the Clusters and
Nodes views (each declares its own bindings for these actions)."""

from __future__ import annotations

from collections.abc import Callable

from annextui.backend.units import format_precise
from annextui.console.edits import Edit, SetGroups, SetMaxsize, SetWanted
from annextui.console.snapshot import RepoRow
from annextui.console.validation import validate_expression, validate_groups, validate_size
from annextui.screens.base import ConsoleScreen
from annextui.screens.dialogs import PromptScreen


class RepoEditing(ConsoleScreen):
    """A view with a selected repository whose settings can be staged for change."""

    MUTATING = frozenset({"set_group", "set_wanted", "set_maxsize"})

    def selected_uuid(self) -> str | None:
        raise NotImplementedError

    def _prompt_for_repo(
        self,
        what: str,
        current: Callable[[RepoRow], str],
        validate: Callable[[str], str | None],
        make: Callable[[str, str], Edit],
        help_text: str = "",
    ) -> None:
        snap = self.console.snapshot
        uuid = self.selected_uuid()
        if snap is None or self.refuse_if_readonly():
            return
        if uuid is None:
            self.notify("Select a repository first.", severity="warning")
            return
        row = snap.repos.get(uuid)
        if row is None:
            return
        target = snap.node_remote_name(uuid)

        def answered(value: str | None) -> None:
            if value is not None:
                self.console.stage(make(target, value))

        self.app.push_screen(
            PromptScreen(
                f"{what} of {row.label}",
                value=current(row),
                validate=validate,
                help_text=help_text,
            ),
            answered,
        )

    def action_set_group(self) -> None:
        self._prompt_for_repo(
            "Groups",
            lambda r: " ".join(r.groups),
            validate_groups,
            lambda t, v: SetGroups(t, tuple(v.split())),
            "space-separated; groups not listed are removed",
        )

    def action_set_wanted(self) -> None:
        self._prompt_for_repo(
            "Preferred content (wanted)",
            lambda r: r.wanted or "",
            validate_expression,
            SetWanted,
            "e.g. groupwanted, standard, balanced=nodes, include=*.nii.gz",
        )

    def action_set_maxsize(self) -> None:
        self._prompt_for_repo(
            "Maxsize",
            lambda r: format_precise(r.maxsize) if r.maxsize is not None else "",
            validate_size,
            SetMaxsize,
            "git-annex size units: 40GB, 2 TB, 500 megabytes; 0 marks it full",
        )
