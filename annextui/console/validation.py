"""Checks of what an admin types into the console's prompts: None when it is acceptable, else
the message the prompt shows (sizes in git-annex's units, preferred-content expressions, group
names)."""

from __future__ import annotations

from annextui.backend.logs.values import legal_remote_name
from annextui.backend.units import SizeError, parse_size


def validate_size(text: str) -> str | None:
    try:
        parse_size(text)
    except SizeError as exc:
        return f"{exc} (examples: 40GB, 2 TB, 500 megabytes)"
    return None


def validate_expression(text: str) -> str | None:
    if not text:
        return "an expression is needed (e.g. groupwanted, standard, balanced=nodes)"
    from annextui.backend.preferred import ExpressionError, parse  # imported when first used

    try:
        parse(text)
    except ExpressionError as exc:
        return f"parse error: {exc}"
    return None


def validate_name(text: str) -> str | None:
    return None if legal_remote_name(text) else "not a valid name"


def validate_groups(text: str) -> str | None:
    return None if all(legal_remote_name(g) for g in text.split()) else "bad group name"
