"""A cluster's nodes as one client session sees them: how to reach each, whether it is
down, and why a request to one failed."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from annextui.proxycore.peer import (
    Peer,
    Unreachable,
)
from annextui.proxycore.remote import NodeError
from annextui.values import Value

if TYPE_CHECKING:
    from annextui.backend.keys import Key


class NodeSpec(Value):
    """A node as the cluster needs it: identity, cost, and how to reach it."""

    uuid: str
    name: str
    cost: float
    connect: Callable[[int, frozenset[str]], Peer]  # (offered version, bypass) -> peer
    # Served in this process (a path remote): asking it whether it holds a key is a stat.
    in_process: bool = False
    # Whether its object file for a key is there, looked at without a session (a server's
    # pooled node: leasing its peer and giving it back costs what the location log does);
    # None: ask its peer.
    holds: Callable[[Key], bool | None] | None = None


class Node:
    """One node of this session: its peer (opened on first use) and whether it is down."""

    def __init__(self, spec: NodeSpec) -> None:
        self.spec = spec
        self.uuid = spec.uuid
        self.name = spec.name
        self.cost = spec.cost
        self._peer: Peer | None = None
        self.down: str | None = None

    def peer(self, offer: int, bypass: frozenset[str]) -> Peer:
        if self.down is not None:
            raise NodeError(self.down)
        if self._peer is None:
            try:
                peer = self.spec.connect(offer, bypass)
                peer.open(offer)
            except NodeError as exc:
                self.down = str(exc)
                raise
            except Exception as exc:
                self.down = f"cannot reach {self.name}: {exc}"
                raise NodeError(self.down) from exc
            self._peer = peer
        return self._peer

    @property
    def opened(self) -> Peer | None:
        return self._peer

    def mark_down(self, exc: Unreachable) -> None:
        """Unreachable for the rest of the session (a repository that vanished mid-upload is
        not asked again: each request would only fail, or worse, write where it was)."""
        if self.down is None:
            self.down = f"cannot reach {self.name}: {exc}"

    def close(self) -> None:
        peer, self._peer = self._peer, None
        if peer is not None:
            peer.close()


class Failed(Value):
    error: str | None  # the node's ERROR text, or None when the connection failed
    elsewhere: bool = True  # worth trying another node (down, full); not when it was busy
