"""Size units exactly as git-annex parses and prints them.

Mirrors ``Utility/DataUnits.hs``, ``Utility/HumanNumber.hs`` and ``Utility/Percentage.hs`` of
git-annex (spec: ``sizes-and-maxsize.md`` §5-6), including the behaviour inherited from GHC:

* ``readSize`` reads the number with Haskell's ``reads :: ReadS Double``: leading whitespace,
  optional ``-``, balanced parentheses, ``0x``/``0o`` literals, ``NaN`` and ``Infinity``;
  the product ``number * multiplier`` is an IEEE double rounded half-to-even to an Integer.
  Rounding a non-finite double gives what GHC gives on amd64: ``±2**1024`` for infinities,
  ``∓1.5 * 2**1024`` for ``NaN``/``-NaN`` (``0/0`` has its sign bit set there).
* The value shown is ``fromInteger bytes / fromInteger unit`` in double precision; "precise"
  uses Haskell's ``show`` for doubles, "rough" uses ``showImprecise`` (half-even rounding).
* Percentages are exact rationals converted to the nearest double.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

__all__ = [
    "BANDWIDTH_UNITS",
    "COMMITTEE_UNITS",
    "DATA_UNITS",
    "STORAGE_UNITS",
    "SizeError",
    "Unit",
    "format_percentage",
    "format_precise",
    "format_rough",
    "int_to_double",
    "parse_size",
    "round_double",
    "show_double",
    "show_imprecise",
]

PARSE_ERROR = "Unable to parse size."


class SizeError(ValueError):
    """A size git-annex would refuse (its message: ``Unable to parse size.``)."""

    def __init__(self, message: str = PARSE_ERROR) -> None:
        super().__init__(message)


@dataclass(frozen=True, order=True, slots=True)
class Unit:
    """``Unit ByteSize Abbrev Name``; ordering is the derived Haskell one (size first)."""

    size: int
    abbrev: str
    name: str


def _units(base: int, step: int, names: Sequence[tuple[str, str]], *, div: int = 1) -> list[Unit]:
    return [Unit(base ** (step * (i + 1)) // div, a, n) for i, (a, n) in enumerate(names)]


#: Powers of 1000, largest first (``storageUnits``).
STORAGE_UNITS: tuple[Unit, ...] = (
    *reversed(
        _units(
            1000,
            1,
            [
                ("kB", "kilobyte"),
                ("MB", "megabyte"),
                ("GB", "gigabyte"),
                ("TB", "terabyte"),
                ("PB", "petabyte"),
                ("EB", "exabyte"),
                ("ZB", "zettabyte"),
                ("YB", "yottabyte"),
                ("RB", "ronnabyte"),
                ("QB", "quettabyte"),
            ],
        )
    ),
    Unit(1, "B", "byte"),
)

#: Powers of 1024 (``committeeUnits``).
COMMITTEE_UNITS: tuple[Unit, ...] = (
    *reversed(
        _units(
            2,
            10,
            [
                ("KiB", "kibibyte"),
                ("MiB", "mebibyte"),
                ("GiB", "gibibyte"),
                ("TiB", "tebibyte"),
                ("PiB", "pebibyte"),
                ("EiB", "exbibyte"),
                ("ZiB", "zebibyte"),
                ("YiB", "yobibyte"),
            ],
        )
    ),
    Unit(1, "B", "byte"),
)

#: Bits, powers of 1000 divided by 8 (``bandwidthUnits``; no plain bit unit).
BANDWIDTH_UNITS: tuple[Unit, ...] = tuple(
    reversed(
        _units(
            1000,
            1,
            [
                ("kbit", "kilobit"),
                ("Mbit", "megabit"),
                ("Gbit", "gigabit"),
                ("Tbit", "terabit"),
                ("Pbit", "petabit"),
                ("Ebit", "exabit"),
                ("Zbit", "zettabit"),
                ("Ybit", "yottabit"),
            ],
            div=8,
        )
    )
)

#: What ``readSize dataUnits`` accepts, in lookup order.
DATA_UNITS: tuple[Unit, ...] = STORAGE_UNITS + COMMITTEE_UNITS + BANDWIDTH_UNITS

_TWO_1024 = 2**1024
_NAN_MAGNITUDE = 3 * 2**1023  # decodeFloat of a quiet NaN: mantissa 1.5 * 2**52, exponent 972


# ---------------------------------------------------------------------------------------------
# Haskell character classes (GHC.Unicode / Text.Read.Lex)


def hs_isspace(c: str) -> bool:
    """``Data.Char.isSpace``."""
    o = ord(c)
    if o <= 0x377:
        return o == 32 or 9 <= o <= 13 or o == 0xA0
    return unicodedata.category(c) == "Zs"


def hs_isalpha(c: str) -> bool:
    """``Data.Char.isAlpha`` (= isLetter)."""
    return unicodedata.category(c) in ("Lu", "Ll", "Lt", "Lm", "Lo")


def hs_isalnum(c: str) -> bool:
    """``Data.Char.isAlphaNum`` (letters and all numbers)."""
    return unicodedata.category(c) in ("Lu", "Ll", "Lt", "Lm", "Lo", "Nd", "Nl", "No")


_PUNC_CHARS = ",;()[]{}`"


def _hs_issymbol(c: str) -> bool:
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


def _hs_tolower(c: str) -> str:
    """``Data.Char.toLower``: the simple (one-to-one) lowercase mapping."""
    low = c.lower()
    return low if len(low) == 1 else low[0]  # only U+0130 maps to several characters


def _hs_lower(s: str) -> str:
    return "".join(_hs_tolower(c) for c in s)


# ---------------------------------------------------------------------------------------------
# Doubles as GHC handles them


def int_to_double(n: int) -> float:
    """``fromInteger :: Integer -> Double`` (nearest, overflowing to infinity)."""
    try:
        return float(n)
    except OverflowError:
        return math.inf if n > 0 else -math.inf


def _ratio_to_double(num: int, den: int) -> float:
    """``fromRational :: Rational -> Double`` (nearest, overflowing to infinity)."""
    try:
        return num / den
    except OverflowError:
        return math.inf if (num < 0) == (den < 0) else -math.inf


def round_double(x: float) -> int:
    """``round :: Double -> Integer``: half to even; non-finite values as GHC on amd64."""
    if math.isfinite(x):
        return round(x)
    negative = math.copysign(1.0, x) < 0
    magnitude = _TWO_1024 if math.isinf(x) else _NAN_MAGNITUDE
    return -magnitude if negative else magnitude


def _proper_fraction(x: float) -> tuple[int, float]:
    """``properFraction :: Double -> (Integer, Double)`` (truncation toward zero)."""
    if not math.isfinite(x):
        return round_double(x), 0.0
    frac, whole = math.modf(x)
    return int(whole), frac


def _hs_pow(x: float, n: int) -> float:
    """``x ^ n`` for a Double base, with GHC's square-and-multiply rounding."""
    if n < 0:
        raise ValueError("negative exponent")
    if n == 0:
        return 1.0
    acc: float | None = None
    while True:
        if n % 2 == 0:
            x, n = x * x, n // 2
        elif n == 1:
            return x if acc is None else x * acc
        else:
            acc = x if acc is None else x * acc
            x, n = x * x, n // 2


def _float_digits(x: float) -> tuple[str, int]:
    """``floatToDigits 10 x`` for finite x >= 0: shortest digits d with x = 0.d * 10**e."""
    if x == 0:
        return "0", 0
    t = Decimal(repr(x)).as_tuple()
    digits = "".join(str(d) for d in t.digits)
    exponent = int(t.exponent)
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    stripped = stripped.lstrip("0")
    return stripped, len(stripped) + exponent


def show_double(x: float) -> str:
    """Haskell's ``show :: Double -> String`` (``300.0``, ``1.0e7``, ``5.0e-2``, ``Infinity``)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x < 0 or math.copysign(1.0, x) < 0:
        return "-" + show_double(-x)
    ds, e = _float_digits(x)
    if e < 0 or e > 7:
        if ds == "0":
            return "0.0e0"
        rest = ds[1:] or "0"
        return f"{ds[0]}.{rest}e{e - 1}"
    if e == 0:
        return "0." + ds
    whole = ds[:e].ljust(e, "0")
    frac = ds[e:] or "0"
    return f"{whole}.{frac}"


def show_imprecise(precision: int, x: float) -> str:
    """``showImprecise``: x with at most `precision` decimals, half-even, zeros dropped."""
    whole, frac = _proper_fraction(x)
    remainder = round_double(frac * _hs_pow(10.0, precision))
    if remainder == 10**precision:  # carry the 1
        whole, remainder = whole + 1, 0
    if precision == 0 or remainder == 0:
        return str(round_double(x))
    text = str(remainder)
    text = "0" * (precision - len(text)) + text
    return f"{whole}.{text.rstrip('0')}"


# ---------------------------------------------------------------------------------------------
# Parsing (readSize dataUnits)


class _NoParse(Exception):
    pass


def _skip_spaces(s: str, i: int) -> int:
    while i < len(s) and hs_isspace(s[i]):
        i += 1
    return i


def _scan(s: str, i: int, allowed: str) -> int:
    while i < len(s) and s[i] in allowed:
        i += 1
    return i


_DEC = "0123456789"
_BASES = {"x": ("0123456789abcdefABCDEF", 16), "o": ("01234567", 8)}


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


def _lex_number(s: str, i: int) -> tuple[float, int] | None:
    """``lexNumber`` + ``convertFrac``: a numeric literal at s[i], or None."""
    if s.startswith("0", i) and i + 1 < len(s) and s[i + 1] in "xXoO":
        allowed, base = _BASES[s[i + 1].lower()]
        j = _scan(s, i + 2, allowed)
        if j > i + 2:
            return int_to_double(int(s[i + 2 : j], base)), j
    j = _scan(s, i, _DEC)
    if j == i:
        return None
    int_digits = s[i:j]
    frac_digits = ""
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
    return _decimal_to_double(int_digits, frac_digits, exp_sign, exp_digits), j


def _lex_value(s: str, i: int) -> tuple[float, int]:
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
        raise _NoParse
    number = _lex_number(s, i)
    if number is None:
        raise _NoParse
    return number


def _read_double(s: str, i: int) -> tuple[float, int]:
    """``readPrec :: ReadPrec Double`` = ``parens (readNumber convertFrac)``."""
    depth = 0
    i = _skip_spaces(s, i)
    while s.startswith("(", i):  # any number of balanced parentheses
        depth += 1
        i = _skip_spaces(s, i + 1)
    if s.startswith("-", i) and not (i + 1 < len(s) and _hs_issymbol(s[i + 1])):
        value, j = _lex_value(s, _skip_spaces(s, i + 1))
        value = -value
    else:
        value, j = _lex_value(s, i)
    for _ in range(depth):
        j = _skip_spaces(s, j)
        if not s.startswith(")", j):
            raise _NoParse
        j += 1
    return value, j


def _lookup_unit(units: Sequence[Unit], name: str) -> int | None:
    if not name:
        return 1
    v = _hs_lower(name)
    for u in units:
        a, n = u.abbrev.lower(), u.name.lower()
        if v in (a, n, n + "s") or a == v + "b":
            return u.size
    return None


def parse_size(text: str, units: Sequence[Unit] = DATA_UNITS) -> int:
    """Bytes for a size such as ``100 gigabytes``, ``0.8TB``, ``1.5GiB`` (``readSize``).

    Raises SizeError("Unable to parse size.") where git-annex fails.
    """
    try:
        number, rest = _read_double(text, 0)
    except _NoParse:
        raise SizeError() from None
    i = _skip_spaces(text, rest)
    j = i
    while j < len(text) and hs_isalpha(text[j]):
        j += 1
    multiplier = _lookup_unit(units, text[i:j])
    if multiplier is None:
        raise SizeError()
    product = number * float(multiplier)
    if math.isnan(product):  # keep the NaN's sign whatever the FPU does
        product = math.copysign(math.nan, number)
    return round_double(product)


# ---------------------------------------------------------------------------------------------
# Printing (showSize / roughSize' / preciseSize, showPercentage)


def _show_size(
    n: int, show: Callable[[float], str], long_names: bool, units: Sequence[Unit]
) -> str:
    if n < 0:
        return "-" + _show_size(-n, show, long_names, units)
    ordered = sorted(units, reverse=True)
    unit = next((u for u in ordered if n >= u.size), ordered[-1])
    value = int_to_double(n) / int_to_double(unit.size)
    s = show(value)
    if not long_names:
        suffix = unit.abbrev
    elif s == "1":
        suffix = unit.name
    else:
        suffix = unit.name + "s"
    return f"{s} {suffix}"


def format_precise(n: int, long_names: bool = False, units: Sequence[Unit] = STORAGE_UNITS) -> str:
    """``preciseSize storageUnits False``, as ``git annex maxsize REPO``: ``300.0 GB``."""
    return _show_size(n, show_double, long_names, units)


def format_rough(
    n: int, decimals: int, long_names: bool = False, units: Sequence[Unit] = STORAGE_UNITS
) -> str:
    """``roughSize'``: ``3 kB`` (0 decimals, abbreviated), ``1.25 gigabytes`` (2, long names)."""
    if decimals < 0:
        raise ValueError("decimals must be >= 0")
    return _show_size(n, lambda v: show_imprecise(decimals, v), long_names, units)


def format_percentage(have: int, full: int, decimals: int = 0) -> str:
    """``showPercentage decimals (percentage full have)``: ``0%``, ``11%``, ``99.5%``."""
    if decimals < 0:
        raise ValueError("decimals must be >= 0")
    if full == 0:
        value = 0.0
    else:
        ratio = Fraction(have * 100, full)
        value = _ratio_to_double(ratio.numerator, ratio.denominator)
    return show_imprecise(decimals, value) + "%"
