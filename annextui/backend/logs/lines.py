"""Line splitting shared by every log family (`Logs/Line.hs`)."""

from __future__ import annotations

import re

_LINE_BREAKS = re.compile(r"[\r\n]+")


def decode(data: bytes) -> str:
    # surrogateescape keeps any non-UTF-8 byte so that re-encoding gives the same bytes back.
    return data.decode("utf-8", "surrogateescape")


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def split_lines(text: str) -> list[str]:
    """Lines of a log; git-annex splits at any run of CR/LF bytes and ignores empty lines."""
    return [line for line in _LINE_BREAKS.split(text) if line]
