"""Small emulations of the Haskell/GHC behaviour that git-annex's expression parser inherits.

* ``words``: split on ``Data.Char.isSpace`` (not Python's broader ``str.isspace``).
* ``readish :: String -> Maybe Int``: GHC's ``reads`` keeping the *first* parse and ignoring
  whatever follows it (``copies=2abc`` is 2), hex/octal literals (``0x10``), a leading ``-``,
  no fraction/exponent (``1.0``, ``1e3`` fail), wrap-around to a 64-bit ``Int``.
* ``read_maybe_double``: ``readMaybe :: String -> Maybe Double`` (whole string, used by the
  ``metadata=FIELD<N`` comparisons); ``readish_double`` the same with the rest ignored (git
  config numbers such as ``annex.fullybalancedthreshhold``).
"""

from __future__ import annotations

import math
import unicodedata

from annextui.backend.units import hs_isalnum, hs_isalpha, hs_isspace

__all__ = [
    "hs_isalnum",
    "hs_isalpha",
    "hs_isspace",
    "read_maybe_double",
    "readish_double",
    "readish_int",
    "words",
]

_DEC = "0123456789"
_HEX = "0123456789abcdefABCDEF"
_OCT = "01234567"
_SYMBOLS = "!#$%&*+./<=>?@\\^|-~:"


def _is_symbol_char(c: str) -> bool:
    if c in _SYMBOLS:
        return True
    if ord(c) < 128:
        return False
    cat = unicodedata.category(c)
    return cat in ("Sm", "Sc", "Sk", "So", "Pd", "Po", "Pc")


def words(text: str) -> list[tuple[str, int]]:
    """Haskell ``words`` with the start offset of every word."""
    out: list[tuple[str, int]] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and hs_isspace(text[i]):
            i += 1
        if i >= n:
            break
        j = i
        while j < n and not hs_isspace(text[j]):
            j += 1
        out.append((text[i:j], i))
        i = j
    return out


def _skip_spaces(s: str, i: int) -> int:
    while i < len(s) and hs_isspace(s[i]):
        i += 1
    return i


def _scan(s: str, i: int, allowed: str) -> int:
    while i < len(s) and s[i] in allowed:
        i += 1
    return i


def _lex_int(s: str, i: int) -> tuple[int, int] | None:
    """An integer literal token at ``s[i]`` (None when the token is not an integer)."""
    if s.startswith("0", i) and i + 1 < len(s) and s[i + 1] in "xXoO":
        allowed, base = (_HEX, 16) if s[i + 1] in "xX" else (_OCT, 8)
        j = _scan(s, i + 2, allowed)
        if j > i + 2:
            return int(s[i + 2 : j], base), j
    j = _scan(s, i, _DEC)
    if j == i:
        return None
    # lexDecNumber is greedy (<++): a fraction or exponent makes it a non-integer token
    if s.startswith(".", j) and _scan(s, j + 1, _DEC) > j + 1:
        return None
    if j < len(s) and s[j] in "eE":
        k = j + 1
        if k < len(s) and s[k] in "+-":
            k += 1
        if _scan(s, k, _DEC) > k:
            return None
    return int(s[i:j]), j


def _wrap64(n: int) -> int:
    return ((n + 2**63) % 2**64) - 2**63


def _parens(s: str, i: int) -> tuple[int, int]:
    """Skip optional whitespace and opening parentheses; returns (position, depth)."""
    depth = 0
    i = _skip_spaces(s, i)
    while s.startswith("(", i):
        depth += 1
        i = _skip_spaces(s, i + 1)
    return i, depth


def _close_parens(s: str, j: int, depth: int) -> int | None:
    for _ in range(depth):
        j = _skip_spaces(s, j)
        if not s.startswith(")", j):
            return None
        j += 1
    return j


def _sign(s: str, i: int) -> tuple[bool, int] | None:
    """A leading ``-`` symbol token (a longer symbol such as ``--`` or ``-.`` fails)."""
    if i < len(s) and _is_symbol_char(s[i]):
        j = i
        while j < len(s) and _is_symbol_char(s[j]):
            j += 1
        if s[i:j] != "-":
            return None
        return True, _skip_spaces(s, j)
    return False, i


def readish_int(text: str) -> int | None:
    """``readish :: String -> Maybe Int`` -- first parse of ``reads``, rest ignored."""
    i, depth = _parens(text, 0)
    sign = _sign(text, i)
    if sign is None:
        return None
    neg, i = sign
    tok = _lex_int(text, i)
    if tok is None:
        return None
    value, j = tok
    if _close_parens(text, j, depth) is None:
        return None
    return _wrap64(-value if neg else value)


def _lex_double(s: str, i: int) -> tuple[float, int] | None:
    if i < len(s) and (hs_isalpha(s[i]) or s[i] == "_"):
        j = i + 1
        while j < len(s) and (hs_isalnum(s[j]) or s[j] in "_'"):
            j += 1
        ident = s[i:j]
        if ident == "NaN":
            return math.nan, j
        if ident == "Infinity":
            return math.inf, j
        return None
    if s.startswith("0", i) and i + 1 < len(s) and s[i + 1] in "xXoO":
        allowed, base = (_HEX, 16) if s[i + 1] in "xX" else (_OCT, 8)
        j = _scan(s, i + 2, allowed)
        if j > i + 2:
            return _to_float(int(s[i + 2 : j], base)), j
    j = _scan(s, i, _DEC)
    if j == i:
        return None
    start = i
    if s.startswith(".", j):
        k = _scan(s, j + 1, _DEC)
        if k > j + 1:
            j = k
    if j < len(s) and s[j] in "eE":
        k = j + 1
        if k < len(s) and s[k] in "+-":
            k += 1
        m = _scan(s, k, _DEC)
        if m > k:
            j = m
    try:
        return float(s[start:j]), j
    except (OverflowError, ValueError):  # pragma: no cover - float() saturates to inf
        return None


def _to_float(n: int) -> float:
    try:
        return float(n)
    except OverflowError:
        return math.inf


def _read_double(text: str) -> tuple[float, int] | None:
    """The first parse of ``reads :: ReadS Double``: the value and where it ends."""
    i, depth = _parens(text, 0)
    sign = _sign(text, i)
    if sign is None:
        return None
    neg, i = sign
    tok = _lex_double(text, i)
    if tok is None:
        return None
    value, j = tok
    end = _close_parens(text, j, depth)
    if end is None:
        return None
    return (-value if neg else value), end


def read_maybe_double(text: str) -> float | None:
    """``readMaybe :: String -> Maybe Double`` (the whole string must be one number)."""
    parsed = _read_double(text)
    if parsed is None or _skip_spaces(text, parsed[1]) != len(text):
        return None
    return parsed[0]


def readish_double(text: str) -> float | None:
    """``readish :: String -> Maybe Double`` -- first parse of ``reads``, rest ignored."""
    parsed = _read_double(text)
    return parsed[0] if parsed is not None else None
