"""Staged edits shown as a diff of git config and git-annex branch changes (console content;
every value is data and shown literally)."""

from __future__ import annotations

import re

from textual.content import Content

from annextui.backend.ghcread import readish_integer
from annextui.backend.units import format_precise
from annextui.console.edits import BranchChange, Preview
from annextui.console.snapshot import Snapshot
from annextui.screens.literal import lines, markup

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _labelled(value: str, snapshot: Snapshot | None) -> str:
    """A log value with the name after each UUID: `6856577c-… (node1)`."""

    def name(m: re.Match[str]) -> str:
        u = m.group(0)
        if snapshot is None or u not in snapshot.repos:
            return u
        return f"{u} ({snapshot.label(u)})"

    return _UUID.sub(name, value)


def _value(change: BranchChange, value: str, snapshot: Snapshot | None) -> str:
    n = readish_integer(value) if change.file == "maxsize.log" else None
    if n is not None:
        return f"{value}  ({format_precise(n)})"
    if change.file == "proxy.log":
        return " ".join(w.partition(":")[2] or w for w in value.split())
    if change.file == "cluster.log" and snapshot is not None:
        return " ".join(snapshot.label(u) for u in value.split())
    return _labelled(value, snapshot)


def render_preview(preview: Preview, snapshot: Snapshot | None) -> Content:
    parts: list[Content | str] = ["[b]Staged edits[/b]"]
    for i, edit in enumerate(preview.edits, 1):
        parts.append(markup(f"  {i}. $edit", edit=edit.describe()))
    where = f" ({snapshot.path})" if snapshot else ""
    parts += ["", markup("[b]git config[/b]$where", where=where)]
    if not preview.config:
        parts.append("  [$text-muted]no change[/]")
    for c in preview.config:
        for v in c.old:
            if v not in c.new:
                parts.append(markup("  [$text-error]- $key = $value[/]", key=c.key, value=v))
        for v in c.new:
            if v not in c.old:
                parts.append(markup("  [$text-success]+ $key = $value[/]", key=c.key, value=v))
    parts += ["", "[b]git-annex branch[/b]"]
    if not preview.branch:
        parts.append("  [$text-muted]no change[/]")
    for b in preview.branch:
        subject = b.field
        if snapshot is not None and subject in snapshot.repos:
            subject = f"{snapshot.label(subject)} ({subject[:8]})"
        parts.append(markup("  [$text-accent]$file[/]  $subject", file=b.file, subject=subject))
        if b.old is not None:
            parts.append(markup("    [$text-error]- $v[/]", v=_value(b, b.old, snapshot)))
        if b.new is not None:
            parts.append(markup("    [$text-success]+ $v[/]", v=_value(b, b.new, snapshot)))
    reported = [line for o in preview.outcomes for line in o.lines]
    if reported:
        parts += ["", "[b]The commands will report[/b]"]
        parts += [markup("  [$text-muted]$line[/]", line=line) for line in reported]
    if any(type(e).__name__ == "InitCluster" for e in preview.edits):
        parts += ["", "[$text-muted]A new cluster gets a fresh UUID when applied.[/]"]
    return lines(*parts)
