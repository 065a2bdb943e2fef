"""`NodePeer`: a node repository served inside the gateway process.

It is a `LocalPeer` whose records of the GETs it serves are lazy, as the gateway's own relay
records are (`records.Progress`): a record costs more file operations than serving a small file
from a local node, so one is written only for a large, slow or failed upload. Its own module so
that gateway.py imports local.py's dependencies only when a node on this machine is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from annextui.proxycore.local import LocalPeer
from annextui.proxycore.records import Progress

if TYPE_CHECKING:
    from annextui.backend.keys import Key
    from annextui.proxycore.transfers import TransferRecorder


class NodePeer(LocalPeer):
    def upload_recorder(self, key: Key, af: str | None, length: int) -> TransferRecorder | None:
        def start() -> TransferRecorder | None:
            return LocalPeer.upload_recorder(self, key, af, length)

        size = key.size if key.size is not None else length
        # Progress offers what LocalOutgoing uses of a TransferRecorder (progress_step,
        # progress, finish).
        return cast("TransferRecorder", Progress(start, 0, size))
