"""Repositories the user running annextui may read but not write -- also when tests run as root.

`chmod a-w` alone stops nobody with CAP_DAC_OVERRIDE, and tests run as root here and in CI. So a
command under test runs through `setpriv` with every capability dropped, bounding set included:
it keeps uid 0 (it can still read the interpreter under /root) but is refused writes to files
without a write bit, exactly as an admin's account is on a repository another user owns. A
process started without privileges (CI as a plain user) needs no prefix: the modes suffice.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SETPRIV = ("setpriv", "--bounding-set=-all", "--inh-caps=-all", "--ambient-caps=-all")


def _writes_refused(prefix: list[str]) -> bool:
    """Does `prefix` really refuse a write into a directory without write bits?"""
    with tempfile.TemporaryDirectory() as tmp:
        ro = Path(tmp) / "ro"
        ro.mkdir(mode=0o555)
        try:
            probe = subprocess.run(
                [*prefix, "sh", "-c", f"touch '{ro}/x' 2>/dev/null"],
                capture_output=True,
                check=False,
            )
            return probe.returncode != 0 and not (ro / "x").exists()
        finally:
            ro.chmod(0o755)


def unprivileged_prefix() -> list[str] | None:
    """An argv prefix that runs a command without the power to ignore file modes, or None when
    this machine offers none (no setpriv, or capabilities that cannot be dropped)."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            return None
        prefix = list(SETPRIV)
    return prefix if _writes_refused(prefix) else None


@contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """Remove every write bit below `paths` (the trees themselves included); restore them after."""
    saved: list[tuple[str, int]] = []
    for top in paths:
        for root, dirs, files in os.walk(top):
            for name in [root, *(os.path.join(root, n) for n in (*dirs, *files))]:
                st = os.lstat(name)
                if stat.S_ISLNK(st.st_mode):
                    continue
                saved.append((name, stat.S_IMODE(st.st_mode)))
                os.chmod(name, stat.S_IMODE(st.st_mode) & ~0o222)
    try:
        yield
    finally:
        for name, mode in reversed(saved):
            os.chmod(name, mode)


def tree_fingerprint(top: Path) -> dict[str, bytes | str]:
    """Every file below `top` (path -> content, symlink -> target, directory -> ''): equal
    before and after means nothing at all was written there, lock files and temp files included."""
    out: dict[str, bytes | str] = {}
    for root, dirs, files in os.walk(top):
        for d in dirs:
            out[os.path.relpath(os.path.join(root, d), top) + "/"] = ""
        for f in files:
            p = os.path.join(root, f)
            rel = os.path.relpath(p, top)
            out[rel] = os.readlink(p) if os.path.islink(p) else Path(p).read_bytes()
    return out
