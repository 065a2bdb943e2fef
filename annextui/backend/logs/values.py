"""Codecs for the VALUE part of specific logs (proxy, cluster, trust, group, remote config)."""

from __future__ import annotations

import re

from annextui.backend.trust import TrustLevel
from annextui.values import Value

# trust.log values (Logs/Trust/Pure.hs buildTrustLevel)
_TRUST_LOG_VALUES = {
    "1": TrustLevel.TRUSTED,
    "0": TrustLevel.UNTRUSTED,
    "X": TrustLevel.DEAD,
    "?": TrustLevel.SEMITRUSTED,
}


def parse_trust(value: str) -> TrustLevel:
    """trustLevelParser: an empty value is the old log's "trusted"; an unknown one reads as
    semitrusted (room for future levels)."""
    if value == "":
        return TrustLevel.TRUSTED
    return _TRUST_LOG_VALUES.get(value, TrustLevel.SEMITRUSTED)


def parse_groups(value: str) -> frozenset[str]:
    return frozenset(value.split())


def serialize_groups(groups: frozenset[str] | set[str]) -> str:
    return " ".join(sorted(groups, key=lambda g: g.encode()))


class ProxiedRemote(Value):
    uuid: str
    name: str

    # ordered by (uuid, name), as proxy.log lists them
    def __lt__(self, other: ProxiedRemote) -> bool:
        return (self.uuid, self.name) < (other.uuid, other.name)

    def __le__(self, other: ProxiedRemote) -> bool:
        return (self.uuid, self.name) <= (other.uuid, other.name)

    def __gt__(self, other: ProxiedRemote) -> bool:
        return (self.uuid, self.name) > (other.uuid, other.name)

    def __ge__(self, other: ProxiedRemote) -> bool:
        return (self.uuid, self.name) >= (other.uuid, other.name)


# git's check-ref-format rules for a remote name, as far as git-annex's proxy loader checks them.
_BAD_REMOTE_NAME = re.compile(
    r"(^[.-])|(\.\.)|([\x00-\x20~^:?*\[\\\x7f])|(\.lock$)|(/$)|(@\{)|(^@$)"
)


def legal_remote_name(name: str) -> bool:
    return bool(name) and not _BAD_REMOTE_NAME.search(name)


def parse_proxy_value(value: str) -> list[ProxiedRemote]:
    """`UUID:NAME` words; entries with an illegal remote name are ignored, as by clients."""
    out = []
    for word in value.split():
        uuid, sep, name = word.partition(":")
        if sep and uuid and legal_remote_name(name):
            out.append(ProxiedRemote(uuid, name))
    return out


def serialize_proxy_value(proxied: list[ProxiedRemote] | set[ProxiedRemote]) -> str:
    return " ".join(f"{p.uuid}:{p.name}" for p in sorted(set(proxied)))


def parse_cluster_nodes(value: str) -> frozenset[str]:
    return frozenset(value.split())


def serialize_cluster_nodes(nodes: frozenset[str] | set[str]) -> str:
    return " ".join(sorted(nodes))


_ESCAPE_RE = re.compile(r"&([0-9]+);")


def parse_remote_config(value: str) -> dict[str, str]:
    """remote.log VALUE: `k=v` words with whitespace and `&` escaped as `&N;`."""
    out: dict[str, str] = {}
    for word in value.split():
        k, sep, v = word.partition("=")
        if sep:
            out[k] = _ESCAPE_RE.sub(lambda m: chr(int(m.group(1))), v)
    return out


def serialize_remote_config(config: dict[str, str]) -> str:
    def esc(v: str) -> str:
        return "".join(f"&{ord(c)};" if c.isspace() or c == "&" else c for c in v)

    return " ".join(f"{k}={esc(v)}" for k, v in sorted(config.items()))
