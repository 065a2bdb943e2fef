"""Keys of external backends (`XFOO-…`), verified by their `git-annex-backend-XFOO` program.

git-annex's doc/design/external_backend_protocol: a line protocol on the program's stdin and
stdout (`GETVERSION` → `VERSION 1`, `CANVERIFY` → `CANVERIFY-YES|NO`,
`ISCRYPTOGRAPHICALLYSECURE` → `…-YES|NO`, `VERIFYKEYCONTENT KEY FILE` → `PROGRESS n`… then
`VERIFYKEYCONTENT-SUCCESS|FAILURE`; `ERROR msg` at any time ends the conversation).

As in git-annex (Backend/External.hs): the program sees keys without the `E` variant's file
extension; a key whose program is not installed, or that says `CANVERIFY-NO`, cannot be
verified and is kept on its size alone (like WORM keys); a program that breaks the protocol
fails the verification.
"""

from __future__ import annotations

import contextlib
import enum
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from annextui.backend.keys import Key

PROGRAM_PREFIX = "git-annex-backend-"


class Verdict(enum.Enum):
    VALID = "valid"
    INVALID = "invalid"
    UNVERIFIABLE = "unverifiable"  # no program, or it cannot verify: keep on size alone


@dataclass(frozen=True, slots=True)
class ExternalName:
    """`XFOOE` → name FOO with an extension; the program is always `git-annex-backend-XFOO`."""

    name: str
    has_extension: bool

    @property
    def program(self) -> str:
        return f"{PROGRAM_PREFIX}X{self.name}"


def external_name(key: Key) -> ExternalName | None:
    """parseKeyVariety: any variety starting with `X` names an external backend."""
    v = key.variety
    if not v.startswith("X") or len(v) < 2:
        return None
    rest = v[1:]
    if rest.endswith("E") and len(rest) > 1:
        return ExternalName(rest[:-1], True)
    return ExternalName(rest, False)


def protocol_key(key: Key, ext: ExternalName) -> str:
    """toProtoKey: the key as the program made it (the extension is everything from the first
    `.`; the protocol forbids dots in the names programs generate)."""
    if not ext.has_extension:
        return str(key)
    plain = Key(f"X{ext.name}", key.name.split(".", 1)[0], key.size, key.mtime)
    return str(plain)


class ExternalBackendError(Exception):
    """The program broke the protocol or said ERROR."""


class ExternalBackend:
    """One running backend program."""

    def __init__(self, program: str, *, stderr: int | None = None) -> None:
        self._proc = subprocess.Popen(
            [program],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            encoding="utf-8",
            errors="surrogateescape",
            bufsize=1,
        )
        try:
            version = self._ask("GETVERSION", {"VERSION"})
            if version.strip() != "1":
                raise ExternalBackendError(f"{program} speaks protocol version {version!r}")
        except ExternalBackendError:
            self.close()
            raise

    def _send(self, line: str) -> None:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise ExternalBackendError(f"backend program went away: {exc}") from exc

    def _reply(self, on_progress: Callable[[int], None] | None = None) -> tuple[str, str]:
        assert self._proc.stdout is not None
        while True:
            line = self._proc.stdout.readline()
            if not line:
                raise ExternalBackendError("backend program exited")
            word, _, rest = line.rstrip("\n").partition(" ")
            if word == "DEBUG":
                continue
            if word == "PROGRESS":
                if on_progress is not None and rest.isdigit():
                    on_progress(int(rest))
                continue
            if word == "ERROR":
                raise ExternalBackendError(rest or "backend program failed")
            return word, rest

    def _ask(self, request: str, expected: set[str]) -> str:
        self._send(request)
        word, rest = self._reply()
        if word not in expected:
            raise ExternalBackendError(f"unexpected reply to {request.split()[0]}: {word}")
        return rest

    def can_verify(self) -> bool:
        return self._ask_bool("CANVERIFY")

    def is_secure(self) -> bool:
        return self._ask_bool("ISCRYPTOGRAPHICALLYSECURE")

    def _ask_bool(self, question: str) -> bool:
        self._send(question)
        word, _ = self._reply()
        if word == f"{question}-YES":
            return True
        if word == f"{question}-NO":
            return False
        raise ExternalBackendError(f"unexpected reply to {question}: {word}")

    def verify(
        self, key: str, path: Path, on_progress: Callable[[int], None] | None = None
    ) -> bool:
        if any(c in key for c in "\n\r") or "\n" in str(path):
            return False
        self._send(f"VERIFYKEYCONTENT {key} {path}")
        word, _ = self._reply(on_progress)
        if word == "VERIFYKEYCONTENT-SUCCESS":
            return True
        if word == "VERIFYKEYCONTENT-FAILURE":
            return False
        raise ExternalBackendError(f"unexpected reply to VERIFYKEYCONTENT: {word}")

    def close(self) -> None:
        proc = self._proc
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def find_program(ext: ExternalName, path: str | None = None) -> str | None:
    return shutil.which(ext.program, path=path if path is not None else os.environ.get("PATH"))


@dataclass
class _Running:
    backend: ExternalBackend
    can_verify: bool | None = None
    secure: bool | None = None


# One program per backend for the whole session, as git-annex keeps it running: a session of
# many small files would otherwise start it (and pay its start-up) once per key.
_RUNNING: dict[str, _Running] = {}


def _running(key: Key) -> tuple[_Running, ExternalName] | None:
    ext = external_name(key)
    program = find_program(ext) if ext is not None else None
    if ext is None or program is None:
        return None
    run = _RUNNING.get(program)
    if run is None:
        try:
            run = _Running(ExternalBackend(program))
        except (OSError, ExternalBackendError):
            return None  # git-annex's unavailBackend: the program cannot be used
        _RUNNING[program] = run
    return run, ext


def _forget(run: _Running) -> None:
    for program, r in list(_RUNNING.items()):
        if r is run:
            del _RUNNING[program]
    run.backend.close()


def verify_content(key: Key, path: Path) -> Verdict:
    """Ask the key's backend program whether `path` holds the key's content."""
    found = _running(key)
    if found is None:
        return Verdict.UNVERIFIABLE
    run, ext = found
    try:
        if run.can_verify is None:
            run.can_verify = run.backend.can_verify()
        if not run.can_verify:
            return Verdict.UNVERIFIABLE
        ok = run.backend.verify(protocol_key(key, ext), path)
        return Verdict.VALID if ok else Verdict.INVALID
    except ExternalBackendError:
        _forget(run)  # it broke the protocol: a fresh one for the next key
        return Verdict.INVALID


def is_secure(key: Key) -> bool:
    """isCryptographicallySecure of an external key: what its program says (no program: no)."""
    found = _running(key)
    if found is None:
        return False
    run, _ext = found
    try:
        if run.secure is None:
            run.secure = run.backend.is_secure()
        return run.secure
    except ExternalBackendError:
        _forget(run)
        return False


def close_all() -> None:
    """End every program started (they also end on their own when we exit: stdin closes)."""
    for run in list(_RUNNING.values()):
        _forget(run)
