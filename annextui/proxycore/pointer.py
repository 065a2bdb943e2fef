"""Pointer files of unlocked annexed files (Annex/Link.hs: formatPointer, parseLinkTargetOrPointer).

An unlocked file without its content holds `/annex/objects/KEYFILE` and a newline; a locked
file's symlink target ends in `.../annex/objects/H1/H2/KEYFILE/KEYFILE`. Both name the key by
their last path component.
"""

from __future__ import annotations

import os
import stat

from annextui.backend.keys import Key, KeyError_, file_key, key_file, parse_key

#: maxValidPointerSz: a pointer file (with appended lines) is never larger.
MAX_VALID_POINTER = 32768
#: maxPointerSz: how much of a file or blob is read to look for a pointer.
MAX_POINTER = MAX_VALID_POINTER + 1
_OBJECTS = b"/annex/objects/"
_LINE_TAG = b"/annex/objects/"  # validPointerLineTag: appended lines must contain it


def format_pointer(key: Key) -> bytes:
    return _OBJECTS + key_file(key).encode("utf-8", "surrogateescape") + b"\n"


def parse_pointer(data: bytes) -> Key | None:
    """The key a pointer file or annex symlink target names, else None."""
    first, _, rest = data.partition(b"\n")
    if first.endswith(b"\r"):
        first = first[:-1]
    if _OBJECTS not in first:
        return None
    try:
        key = parse_key(file_key(first.rpartition(b"/")[2].decode("utf-8", "surrogateescape")))
    except (KeyError_, ValueError):
        return None
    if len(data) > MAX_VALID_POINTER:
        return None
    # lines after the first must each carry the tag (parseLinkTargetOrPointer' restvalid)
    for line in rest.split(b"\n")[:-1] if rest else []:
        if _LINE_TAG not in line:
            return None
    if rest and not rest.endswith(b"\n"):
        return None
    return key


def pointer_file_key(path: bytes) -> Key | None:
    """isPointerFile: the key of a regular file (never a symlink) that is a pointer file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, MAX_POINTER)
    finally:
        os.close(fd)
    return parse_pointer(data)
