"""What `Connection.next_event` returns besides parsed messages."""

from __future__ import annotations

from enum import Enum
from typing import Final, Literal, TypeAlias

from annextui.values import Value

from .messages import Message


class Data(Value):
    """A piece of a DATA body, as it arrived; never more than the body has left."""

    data: bytes

    def __repr__(self) -> str:
        # Bodies can be megabytes: keep logs and assertion messages readable.
        head = self.data[:16]
        return f"Data({head!r}{'...' if len(self.data) > 16 else ''}, len={len(self.data)})"


class EndOfData(Value):
    """The DATA body is complete (also emitted right after `DATA 0`)."""


class ConnectionClosed(Value):
    """The peer closed its side at a message boundary."""


class Wait(Enum):
    NEED_DATA = "need-data"  # feed more bytes with receive_data()
    PAUSED = "paused"  # it is our turn to send; the peer's next bytes are not read yet


NEED_DATA: Final = Wait.NEED_DATA
PAUSED: Final = Wait.PAUSED

Event: TypeAlias = Message | Data | EndOfData | ConnectionClosed
NextEvent: TypeAlias = Event | Literal[Wait.NEED_DATA, Wait.PAUSED]
