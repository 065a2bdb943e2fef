"""Trust levels (``Types/TrustLevel.hs``): one type for trust.log, git config and preferred content.

The order is git-annex's (``DeadTrusted < UnTrusted < SemiTrusted < Trusted``), the one
``copies=LEVEL+:N`` counts with; the names are ``readTrustLevel``/``showTrustLevel``'s.
"""

from __future__ import annotations

from enum import IntEnum


class TrustLevel(IntEnum):
    DEAD = 0
    UNTRUSTED = 1
    SEMITRUSTED = 2
    TRUSTED = 3

    @classmethod
    def parse(cls, text: str) -> TrustLevel | None:
        """``readTrustLevel``: exactly ``trusted``/``untrusted``/``semitrusted``/``dead``, else None
        (``remote.NAME.annex-trustlevel``, ``copies=LEVEL:N``)."""
        return _BY_LABEL.get(text)

    @property
    def label(self) -> str:
        """``showTrustLevel``."""
        return self.name.lower()


_BY_LABEL = {t.label: t for t in TrustLevel}
