"""Balanced preferred content: the HMAC picker and the candidate rules (spec §6-7).

Ported from ``Annex/Balanced.hs`` and the ``limitFullyBalanced``/``limitFullySizeBalanced``
parts of ``Limit.hs``:

* picker: ``n = HMAC-SHA256(key = concat(sorted ALL group members), msg = serialized key)`` as a
  big-endian integer; the i-th pick is ``sorted(candidates)[(n + i) mod |candidates|]``. The
  secret always uses every member, also when some are excluded from the candidates.
* fullybalanced candidates: members that have space (``has_space``); with ``--rebalance`` and
  N > 1, when N > members - too-full members, the sizebalanced rule is used instead.
* (fully)sizebalanced candidates: the N members with the largest free fraction among those with
  a recorded maxsize > 0 and space; ties go to the higher UUID.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Collection, Iterable

from annextui.values import Value

__all__ = [
    "SELF_TEST_HMAC",
    "BalancedPicker",
    "Candidates",
    "free_fraction",
    "fully_balanced_candidates",
    "has_space",
    "hmac_sha256_int",
    "self_test",
    "size_balanced_candidates",
    "too_full",
]

#: Upstream test vector: HMAC-SHA256(key "foo", message "bar").
SELF_TEST_HMAC = ("foo", "bar", "f9320baf0249169e73850cd6156ded0106e2bb6ad8cab01b7bbbebe6d1065317")


def _b(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def hmac_sha256_int(secret: bytes, message: bytes) -> int:
    return int.from_bytes(hmac.new(secret, message, hashlib.sha256).digest(), "big")


class BalancedPicker:
    """``balancedPicker``: built once per group (the HMAC state is precomputed)."""

    __slots__ = ("_mac", "members", "secret")

    def __init__(self, members: Iterable[str]) -> None:
        self.members: tuple[str, ...] = tuple(sorted(set(members)))
        self.secret = b"".join(_b(u) for u in self.members)
        self._mac = hmac.new(self.secret, digestmod=hashlib.sha256)

    def hash(self, key: str) -> int:
        mac = self._mac.copy()
        mac.update(_b(key))
        return int.from_bytes(mac.digest(), "big")

    def pick(self, candidates: Collection[str], key: str, n: int) -> list[str]:
        """The picks in pick order, without repeats (``n`` larger than the candidate count
        picks every candidate; ``n <= 0`` or no candidates picks nobody)."""
        if n <= 0 or not candidates:
            return []
        c = sorted(set(candidates))
        h = self.hash(key)
        return [c[(h + i) % len(c)] for i in range(min(n, len(c)))]


def self_test() -> bool:
    """Upstream's ``prop_balanced_stable`` plus the HMAC test vector."""
    us = [str(i) for i in range(1, 501)]
    p = BalancedPicker(us)
    k, m, hexdigest = SELF_TEST_HMAC
    return (
        p.pick(us, "WORM--test", 1) == ["332"]
        and p.pick(us, "WORM--test", 3) == ["332", "333", "334"]
        and hmac.new(k.encode(), m.encode(), hashlib.sha256).hexdigest() == hexdigest
    )


def _double(n: int) -> float:
    try:
        return float(n)
    except OverflowError:
        return float("inf") if n > 0 else float("-inf")


def has_space(keysize: int, in_repo: bool, size: int, maxsize: int) -> bool:
    """``repoHasSpace``: a holder needs size <= maxsize, others size + keysize <= maxsize."""
    return size <= maxsize if in_repo else size + keysize <= maxsize


def too_full(size: int | None, maxsize: int | None, threshold: float) -> bool:
    """fullybalanced's ``toofull``: maxsize recorded, non-zero, size >= maxsize * threshold."""
    if maxsize is None or maxsize == 0 or size is None:
        return False
    return _double(size) >= _double(maxsize) * threshold


def free_fraction(keysize: int, in_repo: bool, size: int, maxsize: int) -> float:
    """``proportionfree`` (maxsize > 0): free space not counting the key if already held."""
    return _double(maxsize - size + (keysize if in_repo else 0)) / _double(maxsize)


class Candidates(Value):
    """Which members may want the key, and why the others may not.

    members: all group members (sorted); candidates: the filtered set (sorted);
    excluded: member -> reason; size_ranked: for the size rule, (uuid, fraction) best first;
    size_rule: whether the size rule chose the candidates.
    """

    members: tuple[str, ...]
    candidates: tuple[str, ...]
    excluded: dict[str, str]
    size_rule: bool = False
    size_ranked: tuple[tuple[str, float], ...] = ()


SizeLookup = Callable[[str], "int | None"]


def size_balanced_candidates(
    n: int,
    keysize: int,
    locations: Collection[str],
    members: Iterable[str],
    maxsize_of: SizeLookup,
    size_of: SizeLookup,
) -> Candidates:
    """``filterCandidatesFullySizeBalanced``."""
    ordered = sorted(set(members))
    excluded: dict[str, str] = {}
    ranked: list[tuple[str, float]] = []
    for u in ordered:
        maxsize = maxsize_of(u)
        if maxsize is None:
            excluded[u] = "no maxsize recorded"
            continue
        size = size_of(u)
        size = 0 if size is None else size
        in_repo = u in locations
        if not has_space(keysize, in_repo, size, maxsize):
            excluded[u] = f"full (size {size} of maxsize {maxsize})"
            continue
        if maxsize <= 0:
            excluded[u] = "maxsize 0"
            continue
        ranked.append((u, free_fraction(keysize, in_repo, size, maxsize)))
    # sortOn snd is stable; reversing makes ties go to the later (higher) UUID
    ranked.sort(key=lambda x: x[1])
    ranked.reverse()
    chosen = ranked[: max(n, 0)]
    for u, frac in ranked[max(n, 0) :]:
        excluded[u] = f"free fraction {frac:.4g} not among the {max(n, 0)} emptiest"
    return Candidates(
        tuple(ordered),
        tuple(sorted(u for u, _ in chosen)),
        excluded,
        size_rule=True,
        size_ranked=tuple(ranked),
    )


def fully_balanced_candidates(
    n: int,
    keysize: int,
    locations: Collection[str],
    members: Iterable[str],
    maxsize_of: SizeLookup,
    size_of: SizeLookup,
    *,
    rebalance: bool = False,
    threshold: float = 0.9,
) -> Candidates:
    """``limitFullyBalanced'``'s candidate filter."""
    ordered = sorted(set(members))
    if rebalance and n > 1:
        full = sum(1 for u in ordered if too_full(size_of(u), maxsize_of(u), threshold))
        if n > len(ordered) - full:
            return size_balanced_candidates(n, keysize, locations, ordered, maxsize_of, size_of)
    excluded: dict[str, str] = {}
    cands: list[str] = []
    for u in ordered:
        maxsize, size = maxsize_of(u), size_of(u)
        if (
            maxsize is not None
            and size is not None
            and not has_space(keysize, u in locations, size, maxsize)
        ):
            excluded[u] = f"no space (size {size}, key {keysize}, maxsize {maxsize})"
            continue
        cands.append(u)
    return Candidates(tuple(ordered), tuple(cands), excluded)
