"""The one error of the size computation."""

from __future__ import annotations

__all__ = ["SizesError"]


class SizesError(Exception):
    """The sizes cannot be computed (git failed, the repository is damaged)."""
