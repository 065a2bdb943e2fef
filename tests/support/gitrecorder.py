"""A directory whose `git` records every run, to put first on a process's PATH.

Each run appends `PID ARGS` to `runs.log` (the PID is the wrapper's own: the process a
`subprocess.Popen` of `git` gets), then runs the real git. A `git cat-file --batch` also has
every request line it reads appended to `batch.log`, so a test can tell which look-ups went
through the batch process (and not through a `git` process each, nor dulwich).
"""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GitRecorder:
    bin_dir: Path
    log: Path
    batch_log: Path

    def runs(self) -> list[tuple[int, str]]:
        """(wrapper PID, arguments) of every run so far, oldest first."""
        try:
            lines = self.log.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [(int(pid), args) for pid, _, args in (line.partition(" ") for line in lines)]

    def cat_files(self) -> list[tuple[int, str]]:
        """The runs of `git cat-file` (any mode)."""
        return [(pid, args) for pid, args in self.runs() if " cat-file" in f" {args}"]

    def batch_requests(self) -> list[str]:
        """Every line the `git cat-file --batch` runs were asked, in order."""
        try:
            return self.batch_log.read_text().splitlines()
        except FileNotFoundError:
            return []

    def path(self, base: str) -> str:
        """`base` (a PATH value) with this `git` first."""
        return os.pathsep.join([str(self.bin_dir), base])


def write_git_recorder(bin_dir: Path, base_path: str) -> GitRecorder:
    """`bin_dir/git` recording each run, then running the `git` that `base_path` finds."""
    real = shutil.which("git", path=base_path)
    if real is None:
        raise FileNotFoundError("git is not on PATH")
    bin_dir.mkdir(parents=True, exist_ok=True)
    log, batch_log = bin_dir / "runs.log", bin_dir / "batch.log"
    q = shlex.quote
    script = bin_dir / "git"
    # One short printf to an O_APPEND file per run, so concurrent runs do not mix. A batch
    # run's requests pass through tee on their way to git (tee writes each read at once, so
    # the answers come as promptly as without it); the wrapper waits for both and ends with
    # git's status, so whoever waits for this PID has waited for the whole batch process.
    script.write_text(
        "#!/bin/sh\n"
        f'printf \'%s %s\\n\' "$$" "$*" >> {q(str(log))}\n'
        'case " $* " in\n'
        f'  *" cat-file --batch "*) tee -a {q(str(batch_log))} | {q(real)} "$@"; exit $? ;;\n'
        "esac\n"
        f'exec {q(real)} "$@"\n'
    )
    script.chmod(0o755)
    return GitRecorder(bin_dir, log, batch_log)
