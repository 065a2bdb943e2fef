"""Values in p2phttp URLs: a key, UUID or file name is sent as is, or as `[` base64url `]`.

A literal value that itself starts with `[` and ends with `]` is always sent encoded, so a
bracketed value is always decoded (`P2P/Http/Types.hs` B64Key, B64UUID, B64FilePath).
"""

from __future__ import annotations

import base64
import binascii


class BadValue(ValueError):
    """Not decodable: the request is answered with 400."""


def decode_value(text: str) -> str:
    if len(text) >= 2 and text.startswith("[") and text.endswith("]"):
        try:
            raw = base64.b64decode(text[1:-1].encode("ascii"), altchars=b"-_", validate=True)
            return raw.decode("utf-8", "surrogateescape")
        except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
            raise BadValue(f"bad base64 value {text!r}") from exc
    return text


def encode_value(text: str) -> str:
    """How a client sends `text`: encoded when it could be mistaken for an encoded value or
    is not plain ASCII, as git-annex's client does."""
    if (text.startswith("[") and text.endswith("]")) or not text.isascii():
        raw = text.encode("utf-8", "surrogateescape")
        return "[" + base64.urlsafe_b64encode(raw).decode("ascii") + "]"
    return text
