"""Failures the user causes or can fix, and their one-line message for the CLI and the console.

A repository we may not write, a path that is not there, input git-annex would refuse, git
refusing to run: each is reported as one line (`annextui: ...` on the command line, an error
dialog in the console), never as a traceback. Any OSError counts: it names a file and a reason,
which is all the user needs.
"""

from __future__ import annotations

import json
import subprocess
import sys

from annextui.backend.admin import AdminError
from annextui.backend.journal import JournalError
from annextui.backend.repo import GitConfigError, NotAnnexRepository

USER_ERRORS: tuple[type[Exception], ...] = (
    AdminError,
    NotAnnexRepository,
    JournalError,
    GitConfigError,
    OSError,
    subprocess.CalledProcessError,  # git refusing (a broken ~/.gitconfig, say): its own words
)


def one_line(exc: BaseException) -> str:
    """The message of `exc` on one line; an OSError as `FILE: reason` (no `[Errno 13]`)."""
    if isinstance(exc, OSError) and exc.strerror and len(exc.args) > 1:
        names = [str(f) for f in (exc.filename, exc.filename2) if f is not None]
        text = ": ".join([*names, exc.strerror])
    elif isinstance(exc, subprocess.CalledProcessError):
        argv = exc.cmd if isinstance(exc.cmd, str) else " ".join(map(str, exc.cmd))
        said = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        text = f"{argv} failed: {said}" if said else str(exc)
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def report(command: str | None, exc: BaseException, *, as_json: bool) -> None:
    """Tell the user: a `success: false` record on stdout with --json, one line on stderr."""
    message = one_line(exc)
    if as_json:
        print(json.dumps({"command": command, "error-messages": [message], "success": False}))
    print(f"annextui: {message}", file=sys.stderr)
