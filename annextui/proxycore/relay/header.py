"""The relay's header, parsed strictly (the format is in proxycore/relay/client.py).

The socket is the server user's own (mode 0600, peer uid checked), yet the header carries an
ssh client's command line: it is bounded, every item must be well-formed, and only the
variables the shell honours are taken; anything else is a `HeaderError` and the connection is
refused with its message.
"""

from __future__ import annotations

import os

from annextui.proxycore.relay.client import ENV_NAMES, ENV_PREFIXES, MAGIC, MAX_HEADER, MAX_ITEMS
from annextui.values import Value

LENGTH_DIGITS = len(str(MAX_HEADER))


class HeaderError(ValueError):
    """A malformed header; the message says what was wrong."""


class RelayHeader(Value):
    args: tuple[str, ...]
    environ: dict[str, str]


def header_size(data: bytes) -> int | None:
    """The full header's size once its length line has arrived (None: read more)."""
    if len(data) < len(MAGIC):
        if not MAGIC.startswith(data):
            raise HeaderError("not an annextui-relay connection")
        return None
    if not data.startswith(MAGIC):
        raise HeaderError("not an annextui-relay connection (or another version)")
    end = data.find(b"\n", len(MAGIC))
    if end < 0:
        if len(data) - len(MAGIC) > LENGTH_DIGITS:
            raise HeaderError("header length missing")
        return None
    digits = data[len(MAGIC) : end]
    if not digits.isdigit() or len(digits) > LENGTH_DIGITS:
        raise HeaderError("bad header length")
    length = int(digits)
    if length > MAX_HEADER:
        raise HeaderError(f"header of {length} bytes, more than {MAX_HEADER}")
    return end + 1 + length


def parse_header(data: bytes) -> RelayHeader:
    """The command line and environment of a complete header (`header_size(data)` bytes)."""
    size = header_size(data)
    if size is None or len(data) != size:
        raise HeaderError("incomplete header")
    body = data[data.index(b"\n", len(MAGIC)) + 1 :]
    if body and not body.endswith(b"\0"):
        raise HeaderError("unterminated header item")
    items = body.split(b"\0")[:-1] if body else []
    if len(items) > MAX_ITEMS:
        raise HeaderError(f"more than {MAX_ITEMS} header items")
    args: list[str] = []
    environ: dict[str, str] = {}
    for item in items:
        kind, text = item[:1], os.fsdecode(item[1:])
        if kind == b"A":
            if environ:
                raise HeaderError("arguments after the environment")
            args.append(text)
        elif kind == b"E":
            name, eq, value = text.partition("=")
            if not eq or not name:
                raise HeaderError("environment item without NAME=")
            if name not in ENV_NAMES and not name.startswith(ENV_PREFIXES):
                raise HeaderError(f"environment variable {name} is not relayed")
            if name in environ:
                raise HeaderError(f"environment variable {name} given twice")
            environ[name] = value
        else:
            raise HeaderError("unknown header item")
    return RelayHeader(tuple(args), environ)
