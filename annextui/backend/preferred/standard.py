"""Standard groups and the exact expressions git-annex evaluates for them (spec §5).

Built the way ``Types/StandardGroups.hs`` builds them (``lastResort``, ``notArchived``), so the
strings are byte-for-byte what git-annex parses for the ``standard`` term.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "STANDARD_DESCRIPTIONS",
    "STANDARD_EXPRESSIONS",
    "STANDARD_GROUPS",
    "associated_directory",
    "is_standard_group",
    "special_remote_only",
    "standard_expression",
    "standard_group_of",
]

STANDARD_GROUPS: tuple[str, ...] = (
    "client",
    "transfer",
    "backup",
    "incrementalbackup",
    "smallarchive",
    "archive",
    "source",
    "manual",
    "public",
    "unwanted",
)

NOT_ARCHIVED = "not (copies=archive:1 or copies=smallarchive:1)"


def _last_resort(s: str) -> str:
    """Most repositories want content lacking copies (``lastResort``)."""
    return f"({s}) or approxlackingcopies=1"


_CLIENT = _last_resort(
    f"include=* and ((exclude=*/archive/* and exclude=archive/*) or ({NOT_ARCHIVED}))"
)
_ARCHIVE = _last_resort(NOT_ARCHIVED)

STANDARD_EXPRESSIONS: dict[str, str] = {
    "client": _CLIENT,
    "transfer": _last_resort(f"not (inallgroup=client and copies=client:2) and ({_CLIENT})"),
    "backup": "anything",
    "incrementalbackup": _last_resort("(not copies=backup:1) and (not copies=incrementalbackup:1)"),
    "smallarchive": _last_resort(f"(include=*/archive/* or include=archive/*) and ({_ARCHIVE})"),
    "archive": _ARCHIVE,
    "source": "not (copies=1)",
    "manual": f"present and ({_CLIENT})",
    "public": "inpreferreddir",
    "unwanted": "not anything",
}

STANDARD_DESCRIPTIONS: dict[str, str] = {
    "client": "client: a repository on your computer",
    "transfer": "transfer: distributes files to clients",
    "backup": "full backup: backs up all files",
    "incrementalbackup": "incremental backup: backs up files not backed up elsewhere",
    "smallarchive": 'small archive: archives files located in "archive" directories',
    "archive": "full archive: archives all files not archived elsewhere",
    "source": "file source: moves files on to other repositories",
    "manual": "manual mode: only stores files you manually choose",
    "public": "public: publishes files located in an associated directory",
    "unwanted": "unwanted: remove content from this repository",
}


def is_standard_group(group: str) -> bool:
    return group in STANDARD_EXPRESSIONS


def standard_expression(group: str) -> str | None:
    """The expression of a standard group, None for other groups."""
    return STANDARD_EXPRESSIONS.get(group)


def standard_group_of(groups: Iterable[str]) -> str | None:
    """``getStandardGroup``: the standard group when a repo is in exactly one of them."""
    found = [g for g in set(groups) if g in STANDARD_EXPRESSIONS]
    return found[0] if len(found) == 1 else None


def associated_directory(group: str, preferreddir: str | None = None) -> str | None:
    """``associatedDirectory``: ``archive`` for the archive groups, the preferreddir for public."""
    if group in ("smallarchive", "archive"):
        return "archive"
    if group == "public":
        return "public" if preferreddir is None else preferreddir
    return None


def special_remote_only(group: str) -> bool:
    return group == "public"
