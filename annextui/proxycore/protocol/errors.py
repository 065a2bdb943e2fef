"""Protocol errors. Each says whose fault it was, and what git-annex would answer on the wire."""

from __future__ import annotations


class ProtocolError(Exception):
    """A violation of the P2P protocol.

    `error_text` is the text git-annex puts in its `ERROR` line for this situation
    (`unknown command`, `expected DATA`, ...), or None when git-annex says nothing on the wire
    and just drops the connection.
    """

    def __init__(self, message: str, *, error_text: str | None = None) -> None:
        super().__init__(message)
        self.error_text = error_text


class LocalProtocolError(ProtocolError):
    """We tried to send something the protocol does not allow now.

    Nothing was produced for the wire and the connection state is unchanged, so the caller
    may send something else instead.
    """


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow now.

    When `fatal` is False the offending line has been consumed, the conversation has moved to
    the state git-annex recovers to, and we owe the peer `ERROR <error_text>` before anything
    else. When `fatal` is True the connection is unusable: at most one `ERROR` may still be
    sent before closing.
    """

    def __init__(self, message: str, *, error_text: str | None = None, fatal: bool) -> None:
        super().__init__(message, error_text=error_text)
        self.fatal = fatal


class ProtocolParseError(ProtocolError, ValueError):
    """A line that is not a well-formed message: git-annex's `ERROR unknown command` case."""

    def __init__(self, message: str) -> None:
        super().__init__(message, error_text="unknown command")
