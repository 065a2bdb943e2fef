"""Size units exactly as git-annex parses and prints them.

Mirrors ``Utility/DataUnits.hs``, ``Utility/HumanNumber.hs`` and ``Utility/Percentage.hs`` of
git-annex (spec: ``sizes-and-maxsize.md`` §5-6), including the behaviour inherited from GHC:

* ``readSize`` reads the number with Haskell's ``reads :: ReadS Double`` (ghcread.py: leading
  whitespace, optional ``-``, balanced parentheses, ``0x``/``0o`` literals, ``NaN`` and
  ``Infinity``); the product ``number * multiplier`` is an IEEE double rounded half-to-even to
  an Integer.
  Rounding a non-finite double gives what GHC gives on amd64: ``±2**1024`` for infinities,
  ``∓1.5 * 2**1024`` for ``NaN``/``-NaN`` (``0/0`` has its sign bit set there).
* The value shown is ``fromInteger bytes / fromInteger unit`` in double precision; "precise"
  uses Haskell's ``show`` for doubles, "rough" uses ``showImprecise`` (half-even rounding).
* Percentages are exact rationals converted to the nearest double.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from annextui.backend.ghcread import hs_isalpha, int_to_double, read_double, skip_spaces

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
# Doubles as GHC handles them


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


def _hs_tolower(c: str) -> str:
    """``Data.Char.toLower``: the simple (one-to-one) lowercase mapping."""
    low = c.lower()
    return low if len(low) == 1 else low[0]  # only U+0130 maps to several characters


def _hs_lower(s: str) -> str:
    return "".join(_hs_tolower(c) for c in s)


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
    parsed = read_double(text)
    if parsed is None:
        raise SizeError()
    number, rest = parsed
    i = skip_spaces(text, rest)
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
