"""A p2phttp request line, parsed and checked as git-annex's server checks it (pure).

Paths are `/git-annex/<uuid>/key/<key>` (unversioned GET, as v0) and
`/git-annex/<uuid>/v<N>/<endpoint>`. An endpoint a version lacks, an unknown version or a
method the path does not take is answered `400 bad version`, as the real server answers
(not 404: the client steps down a version only on 404, so nothing is lost by it).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from urllib.parse import unquote, unquote_plus

from annextui.backend.keys import Key, parse_key
from annextui.proxycore.http.values import BadValue, decode_value


class HttpError(Exception):
    """A request answered with `status` and a short text body (and perhaps headers)."""

    def __init__(
        self, status: int, body: str = "", headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body
        self.headers = headers


class Action(enum.Enum):
    """What a request does, for the permission matrix (auth.py): by endpoint, not method."""

    READ = "read"
    WRITE = "write"
    REMOVE = "remove"
    LOCK = "lock"


class Endpoint(enum.Enum):
    GET = "key"
    CHECKPRESENT = "checkpresent"
    LOCKCONTENT = "lockcontent"
    KEEPLOCKED = "keeplocked"
    REMOVE = "remove"
    REMOVE_BEFORE = "remove-before"
    GETTIMESTAMP = "gettimestamp"
    PUT = "put"
    PUTOFFSET = "putoffset"

    @property
    def action(self) -> Action:
        return _ACTIONS[self]

    @property
    def lowest_version(self) -> int:
        return _LOWEST.get(self, 0)


_ACTIONS = {
    Endpoint.GET: Action.READ,
    Endpoint.CHECKPRESENT: Action.READ,
    Endpoint.GETTIMESTAMP: Action.READ,
    Endpoint.LOCKCONTENT: Action.LOCK,
    Endpoint.KEEPLOCKED: Action.LOCK,
    Endpoint.REMOVE: Action.REMOVE,
    Endpoint.REMOVE_BEFORE: Action.REMOVE,
    Endpoint.PUT: Action.WRITE,
    Endpoint.PUTOFFSET: Action.WRITE,
}
_LOWEST = {Endpoint.PUTOFFSET: 1, Endpoint.REMOVE_BEFORE: 3, Endpoint.GETTIMESTAMP: 3}
_BY_NAME = {e.value: e for e in Endpoint}
HIGHEST_VERSION = 4
BAD_VERSION = HttpError(400, "bad version")


@dataclass(frozen=True)
class ApiRequest:
    method: str
    uuid: str
    version: int  # the unversioned GET is served as v0
    endpoint: Endpoint
    params: dict[str, list[str]] = field(default_factory=dict)
    key_text: str | None = None  # GET's key, from the path
    versioned: bool = True  # False for `/git-annex/<uuid>/key/<key>`

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values else None

    def required(self, name: str) -> str:
        value = self.param(name)
        if value is None:
            raise HttpError(400, f"Query parameter {name} is required")
        return value

    def key(self) -> Key:
        text = self.key_text if self.key_text is not None else self.required("key")
        try:
            return parse_key(decode_value(text))
        except (BadValue, ValueError):
            raise HttpError(
                400, "Error parsing query parameter key failed: key parse error"
            ) from None

    def uuid_param(self, name: str) -> str:
        return _decoded(name, self.required(name))

    def optional_value(self, name: str) -> str | None:
        value = self.param(name)
        return None if value is None else _decoded(name, value)

    def number(self, name: str, *, default: int | None = None) -> int:
        text = self.param(name)
        if text is None:
            if default is None:
                raise HttpError(400, f"Query parameter {name} is required")
            return default
        if not text.isdigit():
            raise HttpError(400, f"Error parsing query parameter {name} failed: not a number")
        return int(text)

    def client_uuid(self) -> str:
        """`clientuuid`: required on every versioned endpoint but keeplocked."""
        if not self.versioned or self.endpoint is Endpoint.KEEPLOCKED:
            return self.optional_value("clientuuid") or ""
        return self.uuid_param("clientuuid")

    def bypass(self) -> tuple[str, ...]:
        return tuple(_decoded("bypass", v) for v in self.params.get("bypass", []))


def _decoded(name: str, text: str) -> str:
    try:
        return decode_value(text)
    except BadValue:
        raise HttpError(400, f"Error parsing query parameter {name} failed") from None


def parse_target(method: str, target: str) -> ApiRequest:
    """`target` is the request target (path and query) as sent. Raises HttpError: 404 for a
    path outside the API, 400 for a bad version, method or value."""
    path, _, query = target.partition("?")
    parts = [unquote(p, errors="surrogateescape") for p in path.split("/")]
    if len(parts) < 5 or parts[0] != "" or parts[1] != "git-annex":
        raise HttpError(404)
    try:
        uuid = decode_value(parts[2])
    except BadValue:
        raise HttpError(400, "Error parsing uuid") from None
    params = parse_query(query)
    rest = parts[3:]
    if rest[0] == "key" and len(rest) == 2:
        if method not in ("GET", "HEAD"):
            raise BAD_VERSION
        return ApiRequest(method, uuid, 0, Endpoint.GET, params, rest[1], versioned=False)
    word = rest[0]
    if not (word.startswith("v") and word[1:].isdigit()):
        raise HttpError(404)
    version = int(word[1:])
    if version > HIGHEST_VERSION:
        raise BAD_VERSION
    if rest[1] == "key" and len(rest) == 3:
        if method not in ("GET", "HEAD"):
            raise BAD_VERSION
        return ApiRequest(method, uuid, version, Endpoint.GET, params, rest[2])
    endpoint = _BY_NAME.get(rest[1]) if len(rest) == 2 else None
    if endpoint is None or endpoint is Endpoint.GET:
        raise HttpError(404)
    if method != "POST" or version < endpoint.lowest_version:
        raise BAD_VERSION
    return ApiRequest(method, uuid, version, endpoint, params)


def parse_query(query: str) -> dict[str, list[str]]:
    """Query parameters decoded as wai decodes them (`+` is a space), in order, repeatable."""
    out: dict[str, list[str]] = {}
    if not query:
        return out
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        key = unquote_plus(name, errors="surrogateescape")
        out.setdefault(key, []).append(unquote_plus(value, errors="surrogateescape"))
    return out
