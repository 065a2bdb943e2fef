"""Who may do what: git-annex p2phttp's permission matrix (`P2P/Http/State.hs`,
`Command/P2PHttp.hs`), pure.

Users come from the environment: `GIT_ANNEX_P2PHTTP_PASSWORD_<user>=<password>`, with
`GIT_ANNEX_P2PHTTP_PERMISSIONS_<user>=readonly|appendonly` (full access otherwise). Credentials
count only with `--authenv` over HTTPS or `--authenv-http`; a wrong password is treated as no
credentials with credential checking off, so it gets 403 where an anonymous caller would be
asked (401).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field

from annextui.proxycore.http.routes import Action, HttpError

PASSWORD_PREFIX = "GIT_ANNEX_P2PHTTP_PASSWORD_"
PERMISSIONS_PREFIX = "GIT_ANNEX_P2PHTTP_PERMISSIONS_"
WWW_AUTHENTICATE = ("WWW-Authenticate", 'Basic realm="git-annex", charset="UTF-8"')


class Mode(enum.Enum):
    """git-annex's P2P.ServerMode."""

    READONLY = "readonly"
    APPENDONLY = "appendonly"
    READWRITE = "readwrite"


@dataclass(frozen=True)
class Access:
    """What one caller gets: None mode is CannotServeRequests (401 for everything)."""

    mode: Mode | None
    unauth_locking: bool = False
    can_authenticate: bool = False


@dataclass(frozen=True)
class AuthPolicy:
    authenv: bool = False
    authenv_http: bool = False
    unauth_readonly: bool = False
    unauth_appendonly: bool = False
    unauth_nolocking: bool = False
    wideopen: bool = False
    users: Mapping[str, tuple[str, Mode]] = field(default_factory=dict)

    @staticmethod
    def users_from_env(env: Mapping[str, str]) -> dict[str, tuple[str, Mode]]:
        perms = {
            k[len(PERMISSIONS_PREFIX) :]: Mode(v)
            for k, v in env.items()
            if k.startswith(PERMISSIONS_PREFIX) and v in ("readonly", "appendonly")
        }
        return {
            k[len(PASSWORD_PREFIX) :]: (v, perms.get(k[len(PASSWORD_PREFIX) :], Mode.READWRITE))
            for k, v in env.items()
            if k.startswith(PASSWORD_PREFIX)
        }

    def _anonymous(self, can_auth: bool) -> Access:
        locking = not self.unauth_nolocking
        if self.wideopen:
            return Access(Mode.READWRITE, locking, False)
        if self.unauth_appendonly:
            return Access(Mode.APPENDONLY, locking, can_auth)
        if self.unauth_readonly:
            return Access(Mode.READONLY, locking, can_auth)
        return Access(None)

    def access(self, authorization: str | None, secure: bool) -> Access:
        """The caller's access from its `Authorization` header and the transport."""
        accepts = (secure and self.authenv) or (not secure and self.authenv_http)
        if authorization is None:
            return self._anonymous(self.authenv or self.authenv_http)
        if accepts:
            creds = basic_credentials(authorization)
            if creds is not None:
                entry = self.users.get(creds[0])
                if entry is not None and hmac.compare_digest(
                    entry[0].encode("utf-8", "surrogateescape"),
                    creds[1].encode("utf-8", "surrogateescape"),
                ):
                    return Access(entry[1], False, False)
        return self._anonymous(False)


def permitted(access: Access, action: Action) -> Mode:
    """The mode a request runs in (checkAuthActionClass), or HttpError 401/403."""
    mode = access.mode
    if mode is None:
        raise HttpError(401, headers=(WWW_AUTHENTICATE,))
    if mode is Mode.READWRITE:
        return mode
    if access.unauth_locking and action is Action.LOCK:
        return Mode.READONLY
    if mode is Mode.APPENDONLY and action is not Action.REMOVE:
        return mode
    if mode is Mode.READONLY and action is Action.READ:
        return mode
    if access.can_authenticate:
        raise HttpError(401, headers=(WWW_AUTHENTICATE,))
    raise HttpError(403)


def basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        text = base64.b64decode(value.strip(), validate=True).decode("utf-8", "surrogateescape")
    except (binascii.Error, ValueError):
        return None
    user, sep, password = text.partition(":")
    return (user, password) if sep else None
