"""The line messages of the git-annex P2P protocol (versions 0-4) and their pure codec.

One frozen dataclass per command word. `parse_message` and `serialize_message` are inverses on
everything `parse_message` accepts: `parse_message(serialize_message(m)) == m`.

Tokenizing follows git-annex's `Utility.SimpleProtocol`, because a gateway must split lines
exactly as the real peers do:

* the command word ends at the first whitespace character, which is dropped;
* an N-field message cuts each field but the last at the next single whitespace character, and
  the last field is the rest of the line (two spaces therefore make an empty field);
* a zero-field message must have nothing after that first separator, so `SUCCESS` and
  `SUCCESS ` parse (observed on git-annex 10.20261026) but `SUCCESS  ` and `UNLOCKCONTENT K` don't;
* list messages split the rest on whitespace runs;
* "whitespace" is Haskell's `isSpace`: tab to carriage return, space, U+00A0 and the other
  Unicode space separators, applied to the UTF-8 text (undecodable bytes survive as
  surrogate escapes, as in git-annex's file-system encoding).

Field values are stricter than git-annex's lenient `readish` on purpose: numbers are plain ASCII
decimals (git-annex also takes `6x` as 6, and crashes on `GET -1`), UUIDs are non-empty and keys
must be canonical (`annextui.backend.keys.parse_key`). Real peers only ever send canonical
forms, so this only changes which junk earns `ERROR unknown command`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from enum import StrEnum
from typing import Any, ClassVar, Final, dataclass_transform

from annextui.backend.keys import Key, parse_key
from annextui.values import Value

from .errors import ProtocolParseError

MAX_VERSION: Final = 4
"""The highest protocol version this implementation (and git-annex 10.20261026) speaks."""

# Haskell's isSpace: \t..\r, space, and the Unicode space separators (category Zs).
SPACE_CHARS: Final = (
    "\t\n\v\f\r \xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u202f\u205f\u3000"
)
_SPACE_SET: Final = frozenset(SPACE_CHARS)
_ONE_SPACE: Final = re.compile(f"[{re.escape(SPACE_CHARS)}]")
_DECIMAL: Final = re.compile(r"[0-9]+")
_SIGNED_DECIMAL: Final = re.compile(r"-?[0-9]+")
_AUTH_TOKEN: Final = re.compile(r"[A-Za-z0-9]*")


def split_word(text: str) -> tuple[str, str]:
    """Split at the first whitespace character, dropping it (SimpleProtocol's `splitWord`)."""
    m = _ONE_SPACE.search(text)
    if m is None:
        return text, ""
    return text[: m.start()], text[m.end() :]


def split_words(text: str) -> list[str]:
    """Split on whitespace runs, ignoring leading and trailing whitespace (Haskell's `words`)."""
    return [w for w in _ONE_SPACE.split(text) if w]


def encode_associated_file(path: str | None) -> str:
    """The wire form of an AssociatedFile: `%` -> `%%`, each whitespace char -> `%`, None -> ``."""
    if path is None:
        return ""
    if not path:
        raise ValueError("an empty associated file is written as None")
    if path.startswith("/"):
        raise ValueError(f"associated file {path!r} is absolute")
    return "".join("%%" if c == "%" else "%" if c in _SPACE_SET else c for c in path)


def decode_associated_file(text: str) -> str | None:
    """Undo `encode_associated_file`, lossily as git-annex does, for display and matching only.

    `%%` -> `%`, a lone `%` -> `_`, control characters -> `_`. An absolute path is refused,
    which makes the whole line unparsable (`ERROR unknown command`).
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "%":
            if text.startswith("%", i + 1):
                out.append("%")
                i += 2
                continue
            out.append("_")
        elif c < " " or "\x7f" <= c <= "\x9f":  # Unicode's Cc category, exactly
            out.append("_")
        else:
            out.append(c)
        i += 1
    path = "".join(out)
    if not path:
        return None
    if path.startswith("/"):
        raise ValueError(f"associated file {path!r} is absolute")
    return path


class _Codec(Value):
    """How one field travels. `encode` doubles as the constructor's validation."""

    decode: Callable[[str], Any]
    encode: Callable[[Any], str]


def _decode_nat(text: str) -> int:
    if not _DECIMAL.fullmatch(text):
        raise ValueError(f"{text!r} is not a decimal number")
    return int(text)


def _encode_nat(value: object) -> str:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{value!r} is not a non-negative integer")
    return str(value)


def _decode_exit(text: str) -> int:
    if not _SIGNED_DECIMAL.fullmatch(text):
        raise ValueError(f"{text!r} is not an exit code")
    return int(text)


def _encode_exit(value: object) -> str:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{value!r} is not an exit code")
    return str(value)


@functools.lru_cache(maxsize=64)
def parse_wire_key(text: str) -> Key:
    """`parse_key`, remembered for the last keys: a GET's key is checked when its line is
    parsed and parsed again by the server, and a cluster GET passes it on to a node (the Key
    is immutable, so one object can serve them all)."""
    return parse_key(text)


def _check_key(text: object) -> str:
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a key")
    parse_wire_key(text)  # KeyError_ is a ValueError
    return text


def _check_uuid(text: object) -> str:
    if not isinstance(text, str) or not text or any(c in _SPACE_SET for c in text):
        raise ValueError(f"{text!r} is not a UUID (non-empty, no whitespace)")
    return text


def _check_token(text: object) -> str:
    if not isinstance(text, str) or not _AUTH_TOKEN.fullmatch(text):
        raise ValueError("an auth token is ASCII letters and digits only")
    return text


def _check_text(text: object) -> str:
    # The rest of a line can hold anything but the newline; a trailing CR would be eaten by
    # the receiver's CRLF handling, so it cannot round-trip either.
    if not isinstance(text, str) or "\n" in text or text.endswith("\r"):
        raise ValueError(f"{text!r} cannot be sent as the rest of a line")
    return text


def _check_af(value: object) -> str:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{value!r} is not an associated file")
    return encode_associated_file(value)


class Service(StrEnum):
    """The git services `CONNECT` can tunnel."""

    UPLOAD_PACK = "git-upload-pack"
    RECEIVE_PACK = "git-receive-pack"


def _check_service(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a git service")
    return Service(value).value


NAT: Final = _Codec(_decode_nat, _encode_nat)
EXIT_CODE: Final = _Codec(_decode_exit, _encode_exit)
KEY: Final = _Codec(_check_key, _check_key)
UUID: Final = _Codec(_check_uuid, _check_uuid)
TOKEN: Final = _Codec(_check_token, _check_token)
TEXT: Final = _Codec(_check_text, _check_text)
ASSOCIATED_FILE: Final = _Codec(decode_associated_file, _check_af)
SERVICE: Final = _Codec(Service, _check_service)
REF: Final = _Codec(_check_uuid, _check_uuid)  # CHANGED items: any non-whitespace token


@dataclass_transform(frozen_default=True, eq_default=True)
class Message:
    """Base of every line message. Subclasses declare their wire word and field codecs.

    `CODECS` lists one codec per field, in order; list messages instead set `ITEM` and have a
    single `tuple[str, ...]` field. Subclasses are frozen value classes, declared like
    dataclasses (type checkers see them as such through `dataclass_transform`); their methods
    are the shared ones below rather than code generated per class, because
    `dataclasses.dataclass` spends ~0.4 ms per class and the shell imports these on every
    client connection.
    """

    __slots__ = ()
    WORD: ClassVar[str] = ""
    CODECS: ClassVar[tuple[_Codec, ...]] = ()
    ITEM: ClassVar[_Codec | None] = None
    FIELDS: ClassVar[tuple[str, ...]] = ()
    _DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        own = [
            name
            # not inspect.get_annotations: importing inspect costs the shell ~4 ms per start
            for name, ann in cls.__dict__.get("__annotations__", {}).items()  # noqa: RUF063
            if not str(ann).startswith(("ClassVar", "typing.ClassVar"))
        ]
        cls.FIELDS = (*cls.FIELDS, *own)
        cls._DEFAULTS = {n: cls.__dict__[n] for n in cls.FIELDS if n in cls.__dict__}
        # For class patterns (`case Get(offset=o)`); mypy refuses a plain assignment here.
        setattr(cls, "__match_args__", cls.FIELDS)  # noqa: B010

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if not self.WORD:
            raise TypeError("Message is abstract: use one of its subclasses")
        names = self.FIELDS
        if not kwargs and len(args) == len(names) and self.ITEM is None:
            # Every field given by position (how messages are sent): set them, then check them
            # once by encoding them, keeping that encoding for the wire.
            fields = self.__dict__
            for name, value in zip(names, args, strict=True):
                fields[name] = value
            fields[_WIRE] = _wire_fields(self)
            return
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__} takes {len(names)} fields, got {len(args)}")
        values = dict(zip(names, args, strict=False))
        for name, value in kwargs.items():
            if name not in names or name in values:
                raise TypeError(f"{type(self).__name__}: unexpected or repeated field {name!r}")
            values[name] = value
        for name in names:
            if name not in values:
                if name not in self._DEFAULTS:
                    raise TypeError(f"{type(self).__name__}: missing field {name!r}")
                values[name] = self._DEFAULTS[name]
            object.__setattr__(self, name, values[name])
        if self.ITEM is not None:
            # Accept any iterable for convenience, but store a tuple so messages stay hashable.
            items = values[names[0]]
            if isinstance(items, str):
                raise TypeError(f"{self.WORD} takes a sequence of strings, not one string")
            object.__setattr__(self, names[0], tuple(items))
        self.__dict__[_WIRE] = _wire_fields(self)

    @classmethod
    def _decoded(cls, values: list[Any]) -> Message:
        """A message of fields its codecs' `decode` produced from a received line. Every value
        a decode produces encodes again (what `__init__` checks), so they are set unchecked."""
        msg = cls.__new__(cls)
        msg.__dict__.update(zip(cls.FIELDS, values, strict=True))
        return msg

    def _astuple(self) -> tuple[Any, ...]:
        return tuple(getattr(self, n) for n in self.FIELDS)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._astuple() == other._astuple()

    def __hash__(self) -> int:
        return hash((self.__class__, self._astuple()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.FIELDS)
        return f"{type(self).__name__}({inner})"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: messages are frozen")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: messages are frozen")

    def __str__(self) -> str:
        wire = self.__dict__.get(_WIRE)
        if wire is None:  # a received message: encoded when first asked
            wire = _wire_fields(self)
        return " ".join([self.WORD, *wire]) if wire else self.WORD


# Where a message keeps its encoded fields (not a field: equality and repr never see it).
_WIRE: Final = "_wire"


def _values(msg: Message) -> list[Any]:
    return [getattr(msg, n) for n in msg.FIELDS]


def _wire_fields(msg: Message) -> list[str]:
    """The encoded fields of a message; raises ValueError if a value cannot be sent."""
    if msg.ITEM is not None:
        item = msg.ITEM
        return [item.encode(v) for v in _values(msg)[0]]
    if not msg.CODECS:
        return []
    out = [codec.encode(v) for codec, v in zip(msg.CODECS, _values(msg), strict=True)]
    # Only the last field may hold whitespace: any other would shift the fields after it.
    for text in out[:-1]:
        if any(c in _SPACE_SET for c in text):
            raise ValueError(f"field {text!r} of {msg.WORD} contains whitespace")
    "".join(out).encode("utf-8", "surrogateescape")  # lone surrogates could not be sent
    return out


# --- connection start -------------------------------------------------------------------------


class Auth(Message):
    """`AUTH <uuid> <token>`: a tor/p2p peer authenticating; p2pstdio answers `ERROR`."""

    WORD = "AUTH"
    CODECS = (UUID, TOKEN)
    uuid: str
    token: str


class AuthSuccess(Message):
    """`AUTH-SUCCESS <uuid>`: git-annex-shell's unsolicited greeting, or the reply to AUTH."""

    WORD = "AUTH-SUCCESS"
    CODECS = (UUID,)
    uuid: str


class AuthFailure(Message):
    WORD = "AUTH-FAILURE"


class Version(Message):
    """`VERSION <n>`: the client's offer, or the server's answer min(offer, server max)."""

    WORD = "VERSION"
    CODECS = (NAT,)
    version: int


class Bypass(Message):
    """`BYPASS <uuid>...` (v2+): gateways not to route through; never answered."""

    WORD = "BYPASS"
    ITEM = UUID
    uuids: tuple[str, ...] = ()


# --- requests ---------------------------------------------------------------------------------


class CheckPresent(Message):
    WORD = "CHECKPRESENT"
    CODECS = (KEY,)
    key: str


class LockContent(Message):
    """`LOCKCONTENT <key>`; after `SUCCESS` the client's next line must be bare UNLOCKCONTENT."""

    WORD = "LOCKCONTENT"
    CODECS = (KEY,)
    key: str


class UnlockContent(Message):
    WORD = "UNLOCKCONTENT"


class Remove(Message):
    WORD = "REMOVE"
    CODECS = (KEY,)
    key: str


class RemoveBefore(Message):
    """`REMOVE-BEFORE <t> <key>` (v3+): fail if the server's monotonic clock reached t."""

    WORD = "REMOVE-BEFORE"
    CODECS = (NAT, KEY)
    timestamp: int
    key: str


class GetTimestamp(Message):
    WORD = "GETTIMESTAMP"


class Timestamp(Message):
    """`TIMESTAMP <n>`: whole seconds of the server's monotonic clock."""

    WORD = "TIMESTAMP"
    CODECS = (NAT,)
    timestamp: int


class Get(Message):
    """`GET <offset> <af> <key>`: the server sends DATA from offset to the end."""

    WORD = "GET"
    CODECS = (NAT, ASSOCIATED_FILE, KEY)
    offset: int
    associated_file: str | None
    key: str


class Put(Message):
    WORD = "PUT"
    CODECS = (ASSOCIATED_FILE, KEY)
    associated_file: str | None
    key: str


class PutFrom(Message):
    """`PUT-FROM <offset>`: bytes of the key the server already holds in its temp file."""

    WORD = "PUT-FROM"
    CODECS = (NAT,)
    offset: int


class Connect(Message):
    WORD = "CONNECT"
    CODECS = (SERVICE,)
    service: Service


class ConnectDone(Message):
    WORD = "CONNECTDONE"
    CODECS = (EXIT_CODE,)
    exit_code: int


class NotifyChange(Message):
    WORD = "NOTIFYCHANGE"


class Changed(Message):
    """`CHANGED <ref>...`: git-annex actually sends the new SHA values."""

    WORD = "CHANGED"
    ITEM = REF
    refs: tuple[str, ...] = ()


# --- data -------------------------------------------------------------------------------------


class DataHeader(Message):
    """`DATA <n>`: exactly n raw bytes follow the line, with no newline after them."""

    WORD = "DATA"
    CODECS = (NAT,)
    length: int


class DataPresent(Message):
    """`DATA-PRESENT` (v4): sent instead of DATA when the content was placed out of band."""

    WORD = "DATA-PRESENT"


class Valid(Message):
    """`VALID` (v1+): the data sender's file did not change while it was sent."""

    WORD = "VALID"


class Invalid(Message):
    WORD = "INVALID"


# --- replies ----------------------------------------------------------------------------------


class Success(Message):
    WORD = "SUCCESS"


class Failure(Message):
    WORD = "FAILURE"


class SuccessPlus(Message):
    """`SUCCESS-PLUS <uuid>...` (v2+, proxies): the repositories that now have / lost the key."""

    WORD = "SUCCESS-PLUS"
    ITEM = UUID
    uuids: tuple[str, ...] = ()


class FailurePlus(Message):
    """`FAILURE-PLUS <uuid>...` (v2+, proxies): failed overall, but these were changed."""

    WORD = "FAILURE-PLUS"
    ITEM = UUID
    uuids: tuple[str, ...] = ()


class AlreadyHave(Message):
    WORD = "ALREADY-HAVE"


class AlreadyHavePlus(Message):
    WORD = "ALREADY-HAVE-PLUS"
    ITEM = UUID
    uuids: tuple[str, ...] = ()


class Error(Message):
    """`ERROR <text>`: from the server a failed request; from the client, giving up."""

    WORD = "ERROR"
    CODECS = (TEXT,)
    text: str


MESSAGE_TYPES: Final[tuple[type[Message], ...]] = (
    Auth, AuthSuccess, AuthFailure, Version, Bypass,
    CheckPresent, LockContent, UnlockContent, Remove, RemoveBefore, GetTimestamp, Timestamp,
    Get, Put, PutFrom, DataHeader, DataPresent, Valid, Invalid,
    Success, Failure, SuccessPlus, FailurePlus, AlreadyHave, AlreadyHavePlus,
    Connect, ConnectDone, NotifyChange, Changed, Error,
)  # fmt: skip
_BY_WORD: Final[dict[str, type[Message]]] = {cls.WORD: cls for cls in MESSAGE_TYPES}


def _split_fields(rest: str, count: int) -> list[str]:
    out: list[str] = []
    for _ in range(count - 1):
        head, rest = split_word(rest)
        out.append(head)
    out.append(rest)
    return out


def _decode(cls: type[Message], rest: str) -> list[Any]:
    if cls.ITEM is not None:
        return [tuple(cls.ITEM.decode(w) for w in split_words(rest))]
    if not cls.CODECS:
        if rest:
            raise ValueError(f"{cls.WORD} takes no fields")
        return []
    texts = _split_fields(rest, len(cls.CODECS))
    return [codec.decode(t) for codec, t in zip(cls.CODECS, texts, strict=True)]


def parse_message(line: bytes) -> Message:
    """Parse one protocol line (an optional trailing `\\n`, then one `\\r`, are stripped).

    Raises ProtocolParseError for anything git-annex would answer with `ERROR unknown command`.
    """
    if line.endswith(b"\n"):
        line = line[:-1]
    if line.endswith(b"\r"):
        line = line[:-1]
    if b"\n" in line:
        raise ProtocolParseError("a message is a single line")
    text = line.decode("utf-8", "surrogateescape")
    word, rest = split_word(text)
    cls = _BY_WORD.get(word)
    if cls is None:
        raise ProtocolParseError(f"unknown command word {word[:40]!r}")
    try:
        return cls._decoded(_decode(cls, rest))
    except ValueError as e:
        raise ProtocolParseError(f"malformed {word}: {e}") from e


def serialize_message(msg: Message) -> bytes:
    """The wire form of a message, with its trailing newline."""
    return (str(msg) + "\n").encode("utf-8", "surrogateescape")
