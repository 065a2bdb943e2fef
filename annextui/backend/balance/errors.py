"""The one error of the balance report: bad input from the user."""

from __future__ import annotations

__all__ = ["BalanceError"]


class BalanceError(Exception):
    """Bad input: an unknown group or repository, a malformed scenario or expression."""
