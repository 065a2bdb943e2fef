"""Pure parsers and serializers for every git-annex branch log annextui uses.

Each family (see ../shared/spec/branch-formats.md §3) has a `parse_*` returning a list of line
records and a `serialize_*` that is its exact inverse, so a file git-annex wrote round-trips byte
for byte. Resolution ("which line wins") is separate from parsing because several sources (branch,
journal, unmerged remote refs) are concatenated before resolving.
"""

from annextui.backend.logs.lines import decode, encode, split_lines
from annextui.backend.logs.maplog import (
    MapLine,
    parse_map_log,
    resolve_map_log,
    serialize_map_log,
    set_map_value,
)
from annextui.backend.logs.presence import (
    PresenceLine,
    PresenceStatus,
    change_presence,
    parse_presence_log,
    present_infos,
    resolve_presence_log,
    serialize_presence_log,
)
from annextui.backend.logs.single import SingleLine, parse_single_log, resolve_single_log
from annextui.backend.logs.uuidbased import (
    UUIDLine,
    parse_uuid_log,
    resolve_uuid_log,
    serialize_uuid_log,
    set_uuid_value,
)

__all__ = [
    "MapLine",
    "PresenceLine",
    "PresenceStatus",
    "SingleLine",
    "UUIDLine",
    "change_presence",
    "decode",
    "encode",
    "parse_map_log",
    "parse_presence_log",
    "parse_single_log",
    "parse_uuid_log",
    "present_infos",
    "resolve_map_log",
    "resolve_presence_log",
    "resolve_single_log",
    "resolve_uuid_log",
    "serialize_map_log",
    "serialize_presence_log",
    "serialize_uuid_log",
    "set_map_value",
    "set_uuid_value",
    "split_lines",
]
