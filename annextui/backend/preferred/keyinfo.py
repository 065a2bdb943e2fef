"""What the preferred-content terms read of a key: backend variety, size, secure hash.

Keys reach the evaluator as `Key`s or as location-log text; text that the strict key grammar
refuses is still read leniently (variety up to the first `-`, an `-sN` size), as git-annex
matches whatever key its logs hold.
"""

from __future__ import annotations

import re
from functools import lru_cache

from annextui.backend.keys import Key, parse_key
from annextui.values import Value

_SECURE_VARIETIES = frozenset(
    {
        "SHA224", "SHA256", "SHA384", "SHA512",
        "SHA3_224", "SHA3_256", "SHA3_384", "SHA3_512",
        "SKEIN256", "SKEIN512",
        "BLAKE2B160", "BLAKE2B224", "BLAKE2B256", "BLAKE2B384", "BLAKE2B512", "BLAKE2BP512",
        "BLAKE2S160", "BLAKE2S224", "BLAKE2S256", "BLAKE2SP224", "BLAKE2SP256",
    }
)  # fmt: skip
# Varieties git-annex 10.20261026 reports secure without a hash of their own (verified):
# VURL (its equivalent keys decide; none recorded -> secure), GITBUNDLE, GITMANIFEST.
_SECURE_OTHER = frozenset({"VURL", "GITBUNDLE", "GITMANIFEST"})


def _is_secure_variety(variety: str) -> bool:
    """``isCryptographicallySecureKey`` for the backends built into git-annex. External
    (``X...``) backends answer for themselves in git-annex; here they count as insecure."""
    if variety in _SECURE_VARIETIES or variety in _SECURE_OTHER:
        return True
    return variety.endswith("E") and variety[:-1] in _SECURE_VARIETIES


_LENIENT_KEY = re.compile(r"^([^-]+)(?:-s([0-9]+))?")


class KeyInfo(Value):
    text: str
    variety: str
    size: int | None
    secure: bool


@lru_cache(maxsize=65536)
def _key_info_str(text: str) -> KeyInfo:
    try:
        k = parse_key(text)
    except ValueError:
        m = _LENIENT_KEY.match(text)
        variety = m.group(1) if m else text
        size = int(m.group(2)) if m and m.group(2) else None
        return KeyInfo(text, variety, size, _is_secure_variety(variety))
    return KeyInfo(text, k.variety, k.size, _is_secure_variety(k.variety))


def key_info(key: str | Key) -> KeyInfo:
    if isinstance(key, Key):
        return KeyInfo(str(key), key.variety, key.size, _is_secure_variety(key.variety))
    return _key_info_str(key)
