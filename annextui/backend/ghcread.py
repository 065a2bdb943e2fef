"""Reading text as GHC's ``Read`` does, for every number and word git-annex reads that way.

git-annex parses sizes (``readSize``), counts (``copies=2``, ``readish :: Maybe Int``), metadata
comparisons (``readMaybe :: Maybe Double``) and config numbers (``readish :: Maybe Double``)
with Haskell's ``reads``, and splits expressions with ``words``; what they accept follows from
``Text.Read.Lex`` and ``GHC.Unicode``, reproduced here once:

* ``reads`` skips leading whitespace and any number of balanced parentheses, takes an optional
  ``-`` (a longer symbol such as ``--`` or ``-.`` is no number), then one lexeme: ``0x``/``0o``
  literals, decimals with an optional fraction and exponent, ``NaN`` and ``Infinity`` (Double
  only). The first parse wins; ``readish`` ignores what follows it (``copies=2abc`` is 2),
  ``readMaybe`` requires the whole string (but trailing whitespace).
* An ``Int`` lexeme is an integer token only: ``1.0`` and ``1e3`` are no ``Int``; the value
  wraps around to 64 bits.
* A ``Double`` is the nearest double of the literal (``convertFrac``), out-of-range exponents
  giving 0 or infinity. ``NaN`` has its sign bit set, as ``0/0`` has on amd64 (which matters
  once it is rounded to an Integer, units.round_double).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable
from typing import TypeVar

__all__ = [
    "hs_isalnum",
    "hs_isalpha",
    "hs_isdigit",
    "hs_isspace",
    "hs_issymbol",
    "int_to_double",
    "read_double",
    "read_maybe_double",
    "readish_double",
    "readish_int",
    "skip_spaces",
    "words",
]

_T = TypeVar("_T", int, float)
_DEC = "0123456789"
_BASES = {"x": ("0123456789abcdefABCDEF", 16), "o": ("01234567", 8)}
_PUNC_CHARS = ",;()[]{}`"


# ---------------------------------------------------------------------------------------------
# Character classes (GHC.Unicode, Text.Read.Lex)


def hs_isspace(c: str) -> bool:
    """``Data.Char.isSpace``."""
    o = ord(c)
    if o <= 0x377:
        return o == 32 or 9 <= o <= 13 or o == 0xA0
    return unicodedata.category(c) == "Zs"


def hs_isdigit(c: str) -> bool:
    """``Data.Char.isDigit``: ASCII digits only."""
    return "0" <= c <= "9"


def hs_isalpha(c: str) -> bool:
    """``Data.Char.isAlpha`` (= isLetter)."""
    return unicodedata.category(c) in ("Lu", "Ll", "Lt", "Lm", "Lo")


def hs_isalnum(c: str) -> bool:
    """``Data.Char.isAlphaNum`` (letters and all numbers)."""
    return unicodedata.category(c) in ("Lu", "Ll", "Lt", "Lm", "Lo", "Nd", "Nl", "No")


def hs_issymbol(c: str) -> bool:
    """``Text.Read.Lex.isSymbolChar``: what a symbol lexeme such as ``-`` is made of."""
    if c in _PUNC_CHARS:
        return False
    cat = unicodedata.category(c)
    if cat in ("Sm", "Sc", "Sk", "So", "Pd"):
        return True
    if cat == "Po":
        return c not in "'\""
    if cat == "Pc":
        return c != "_"
    return False


def skip_spaces(s: str, i: int) -> int:
    while i < len(s) and hs_isspace(s[i]):
        i += 1
    return i


def words(text: str) -> list[tuple[str, int]]:
    """Haskell ``words`` with the start offset of every word."""
    out: list[tuple[str, int]] = []
    i, n = 0, len(text)
    while i < n:
        i = skip_spaces(text, i)
        if i >= n:
            break
        j = i
        while j < n and not hs_isspace(text[j]):
            j += 1
        out.append((text[i:j], i))
        i = j
    return out


# ---------------------------------------------------------------------------------------------
# Lexemes


def int_to_double(n: int) -> float:
    """``fromInteger :: Integer -> Double`` (nearest, overflowing to infinity)."""
    try:
        return float(n)
    except OverflowError:
        return math.inf if n > 0 else -math.inf


def _scan(s: str, i: int, allowed: str) -> int:
    while i < len(s) and s[i] in allowed:
        i += 1
    return i


def _based(s: str, i: int) -> tuple[int, int] | None:
    """A ``0x``/``0o`` literal at s[i] (its value and end), or None."""
    if s.startswith("0", i) and i + 1 < len(s) and s[i + 1] in "xXoO":
        allowed, base = _BASES[s[i + 1].lower()]
        j = _scan(s, i + 2, allowed)
        if j > i + 2:
            return int(s[i + 2 : j], base), j
    return None


def _decimal(s: str, i: int) -> tuple[str, str, str, str, int] | None:
    """``lexDecNumber``, greedy: integer digits, fraction digits, exponent sign and digits, end.
    A ``.`` or ``e`` not followed by digits is not part of the number."""
    j = _scan(s, i, _DEC)
    if j == i:
        return None
    int_digits, frac_digits = s[i:j], ""
    if s.startswith(".", j):
        k = _scan(s, j + 1, _DEC)
        if k > j + 1:
            frac_digits, j = s[j + 1 : k], k
    exp_sign, exp_digits = "+", ""
    if j < len(s) and s[j] in "eE":
        k = j + 1
        sign = "+"
        if k < len(s) and s[k] in "+-":
            sign, k = s[k], k + 1
        m = _scan(s, k, _DEC)
        if m > k:
            exp_sign, exp_digits, j = sign, s[k:m], m
    return int_digits, frac_digits, exp_sign, exp_digits, j


def _decimal_to_double(int_digits: str, frac_digits: str, exp_sign: str, exp_digits: str) -> float:
    """GHC's ``convertFrac`` of a decimal literal: the nearest double (or 0 / infinity)."""
    mantissa = (int_digits + frac_digits).lstrip("0")
    if not mantissa:
        return 0.0
    # position of the first significant digit relative to the decimal point (as in GHC)
    first_digit = len(int_digits.lstrip("0")) or -(len(frac_digits) - len(frac_digits.lstrip("0")))
    exp_digits = exp_digits.lstrip("0")
    if len(exp_digits) > 30:  # beyond any mantissa length: certainly out of range
        return 0.0 if exp_sign == "-" else math.inf
    exp = int(exp_digits or "0") * (-1 if exp_sign == "-" else 1)
    first = first_digit + exp
    if first > 1024 + 3:
        return math.inf
    if first < -1021 - 3:
        return 0.0
    # value = 0.MANTISSA * 10**first ; float() rounds correctly, like fromRational
    return float(f"0.{mantissa}e{first}")


def _lex_double(s: str, i: int) -> tuple[float, int] | None:
    """One lexeme converted by ``convertFrac``: a number, ``NaN`` or ``Infinity``."""
    if i < len(s) and (hs_isalpha(s[i]) or s[i] == "_"):
        j = i + 1
        while j < len(s) and (hs_isalnum(s[j]) or s[j] in "_'"):
            j += 1
        ident = s[i:j]
        if ident == "NaN":
            return -math.nan, j  # 0/0 on amd64 has the sign bit set
        if ident == "Infinity":
            return math.inf, j
        return None
    based = _based(s, i)
    if based is not None:
        return int_to_double(based[0]), based[1]
    dec = _decimal(s, i)
    if dec is None:
        return None
    return _decimal_to_double(*dec[:4]), dec[4]


def _lex_int(s: str, i: int) -> tuple[int, int] | None:
    """An integer lexeme: a decimal with a fraction or exponent is another token (no Int)."""
    based = _based(s, i)
    if based is not None:
        return based
    dec = _decimal(s, i)
    if dec is None or dec[1] or dec[3]:
        return None
    return int(dec[0]), dec[4]


# ---------------------------------------------------------------------------------------------
# reads / readish / readMaybe


def _reads(s: str, lex: Callable[[str, int], tuple[_T, int] | None]) -> tuple[_T, int] | None:
    """``parens`` around an optionally negated lexeme: the first parse and where it ends."""
    depth = 0
    i = skip_spaces(s, 0)
    while s.startswith("(", i):  # any number of balanced parentheses
        depth += 1
        i = skip_spaces(s, i + 1)
    negative = s.startswith("-", i)
    if negative:
        if i + 1 < len(s) and hs_issymbol(s[i + 1]):
            return None  # "--", "-." ...: a longer symbol, not a minus
        i = skip_spaces(s, i + 1)
    tok = lex(s, i)
    if tok is None:
        return None
    value, j = tok
    for _ in range(depth):
        j = skip_spaces(s, j)
        if not s.startswith(")", j):
            return None
        j += 1
    return (-value if negative else value), j


def read_double(text: str) -> tuple[float, int] | None:
    """The first parse of ``reads :: ReadS Double``: the value and where it ends."""
    return _reads(text, _lex_double)


def readish_double(text: str) -> float | None:
    """``readish :: String -> Maybe Double`` -- first parse of ``reads``, rest ignored."""
    parsed = read_double(text)
    return parsed[0] if parsed is not None else None


def read_maybe_double(text: str) -> float | None:
    """``readMaybe :: String -> Maybe Double`` (the whole string must be one number)."""
    parsed = read_double(text)
    if parsed is None or skip_spaces(text, parsed[1]) != len(text):
        return None
    return parsed[0]


def readish_integer(text: str) -> int | None:
    """``readish :: String -> Maybe Integer`` -- first parse of ``reads``, rest ignored, unbounded
    (a negative number included: maxsize.log may hold one, `git annex maxsize R -- -5`)."""
    parsed = _reads(text, _lex_int)
    return parsed[0] if parsed is not None else None


def readish_int(text: str) -> int | None:
    """``readish :: String -> Maybe Int`` -- first parse of ``reads``, rest ignored; the value
    wraps around to a 64-bit ``Int`` as ``fromInteger`` does."""
    parsed = _reads(text, _lex_int)
    if parsed is None:
        return None
    return ((parsed[0] + 2**63) % 2**64) - 2**63
