"""A directory whose `git-annex-shell` runs annextui-shell, to put first on PATH.

A wrapper script, not a symlink: git-annex is a multi-call binary dispatching on argv[0], and
whatever looks up `git-annex-shell` on PATH (git-annex's ssh transport, `git annex test`'s fake
ssh, sshd sessions) must end in our shell. Each invocation's arguments are logged, one line
each, so a test can tell that our shell (not upstream's, found later on PATH) served it.
"""

from __future__ import annotations

import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.support.annex import default_path

SHELL_PROGRAM = "annextui-shell"


@dataclass(frozen=True)
class ShellWrapper:
    bin_dir: Path
    log: Path

    def invocations(self) -> list[str]:
        """The argument lines of every run so far (oldest first)."""
        try:
            return self.log.read_text().splitlines()
        except FileNotFoundError:
            return []


def write_shell_wrapper(bin_dir: Path, program: str | None = None) -> ShellWrapper:
    """`bin_dir/git-annex-shell` exec'ing `program` (default: annextui-shell next to this
    interpreter, so it imports the annextui that PYTHONPATH selects)."""
    target = program or shutil.which(SHELL_PROGRAM, path=default_path())
    if target is None:
        raise FileNotFoundError(f"{SHELL_PROGRAM} is not installed next to the interpreter")
    bin_dir.mkdir(parents=True, exist_ok=True)
    log = bin_dir / "invocations.log"
    script = bin_dir / "git-annex-shell"
    # printf to an O_APPEND file: one short write per line, so concurrent shells do not mix.
    script.write_text(
        "#!/bin/sh\n"
        f"printf '%s\\n' \"$*\" >> {shlex.quote(str(log))}\n"
        f'exec {shlex.quote(target)} "$@"\n'
    )
    script.chmod(0o755)
    return ShellWrapper(bin_dir, log)
