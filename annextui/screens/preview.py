"""Staged edits shown as a diff of git config and git-annex branch changes (console markup)."""

from __future__ import annotations

import re

from textual.markup import escape

from annextui.backend.units import format_precise
from annextui.console.edits import BranchChange, Preview
from annextui.console.snapshot import Snapshot

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _labelled(value: str, snapshot: Snapshot | None) -> str:
    """Escape a log value and put the name after each UUID: `6856577c-… (node1)`."""

    def name(m: re.Match[str]) -> str:
        u = m.group(0)
        if snapshot is None or u not in snapshot.repos:
            return u
        return f"{u} ({snapshot.label(u)})"

    return escape(_UUID.sub(name, value))


def _value(change: BranchChange, value: str, snapshot: Snapshot | None) -> str:
    if change.file == "maxsize.log" and value.isdigit():
        return f"{value}  ({format_precise(int(value))})"
    if change.file == "proxy.log":
        return escape(" ".join(w.partition(":")[2] or w for w in value.split()))
    if change.file == "cluster.log" and snapshot is not None:
        return escape(" ".join(snapshot.label(u) for u in value.split()))
    return _labelled(value, snapshot)


def render_preview(preview: Preview, snapshot: Snapshot | None) -> str:
    lines = ["[b]Staged edits[/b]"]
    for i, edit in enumerate(preview.edits, 1):
        lines.append(f"  {i}. {escape(edit.describe())}")
    where = f" ({escape(str(snapshot.path))})" if snapshot else ""
    lines += ["", f"[b]git config[/b]{where}"]
    if not preview.config:
        lines.append("  [$text-muted]no change[/]")
    for c in preview.config:
        for v in c.old:
            if v not in c.new:
                lines.append(f"  [$text-error]- {escape(c.key)} = {escape(v)}[/]")
        for v in c.new:
            if v not in c.old:
                lines.append(f"  [$text-success]+ {escape(c.key)} = {escape(v)}[/]")
    lines += ["", "[b]git-annex branch[/b]"]
    if not preview.branch:
        lines.append("  [$text-muted]no change[/]")
    for b in preview.branch:
        subject = b.field
        if snapshot is not None and subject in snapshot.repos:
            subject = f"{snapshot.label(subject)} ({subject[:8]})"
        lines.append(f"  [$text-accent]{escape(b.file)}[/]  {escape(subject)}")
        if b.old is not None:
            lines.append(f"    [$text-error]- {_value(b, b.old, snapshot)}[/]")
        if b.new is not None:
            lines.append(f"    [$text-success]+ {_value(b, b.new, snapshot)}[/]")
    reported = [line for o in preview.outcomes for line in o.lines]
    if reported:
        lines += ["", "[b]The commands will report[/b]"]
        lines += [f"  [$text-muted]{escape(line)}[/]" for line in reported]
    if any(type(e).__name__ == "InitCluster" for e in preview.edits):
        lines += ["", "[$text-muted]A new cluster gets a fresh UUID when applied.[/]"]
    return "\n".join(lines)
