"""cProfile of annextui-shell sessions, without touching the shell's own code path.

`write_wrapper` makes an executable that a client's `remote.R.annex-shell` can name: it runs
annextui-shell's `main` under cProfile and dumps one `.prof` file per process into a directory
(the shell serves one connection per process). `summary` merges those files and prints where
the serving loop spent its time, per request: the time between a GET's request line and its
first DATA byte is `Server._get` minus the write of the reply.
"""

from __future__ import annotations

import io
import pstats
import sys
from pathlib import Path

# The functions whose cumulative time is reported per GET, as (file suffix, function name).
_PER_GET = (
    ("proxycore/server.py", "_get"),
    ("proxycore/server.py", "_get_small"),
    ("proxycore/server.py", "_get_ack"),
    ("cluster/peer.py", "get"),
    ("cluster/peer.py", "_holders"),
    ("cluster/peer.py", "open_get"),
    ("proxycore/records.py", "locations"),
    ("proxycore/records.py", "busy"),
    ("proxycore/records.py", "progress"),
    ("proxycore/local.py", "get"),
    ("proxycore/server.py", "write"),
    ("protocol/blocking.py", "next_event"),
)

_PROFILED = """#!{python}
import cProfile, os, sys, time
sys.path.insert(0, {root!r})
from annextui.proxycore import shell
prof = cProfile.Profile({timer})
try:
    rc = prof.runcall(shell.main, sys.argv[1:])  # with argv: returns (no os._exit)
finally:
    prof.dump_stats(os.path.join({out!r}, "shell-%d.prof" % os.getpid()))
sys.exit(rc)
"""

_PLAIN = """#!{python}
import sys
sys.path.insert(0, {root!r})
from annextui.proxycore import shell
sys.exit(shell.main())
"""


def write_wrapper(
    path: Path, root: Path, out_dir: Path | None = None, *, cpu_time: bool = False
) -> Path:
    """An annex-shell replacement at `path` running annextui-shell from the checkout `root`
    (e.g. an older commit, for a before/after run), under cProfile into `out_dir` if given
    (timed by the process's CPU time with `cpu_time`, else by the wall clock)."""
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    text = (_PROFILED if out_dir is not None else _PLAIN).format(
        python=sys.executable,
        root=str(root),
        out=str(out_dir),
        timer="time.process_time" if cpu_time else "",
    )
    path.write_text(text)
    path.chmod(0o755)
    return path


def _stats(out_dir: Path) -> pstats.Stats | None:
    files = sorted(str(f) for f in out_dir.glob("shell-*.prof"))
    if not files:
        return None
    return pstats.Stats(*files, stream=io.StringIO())


def summary(out_dir: Path, gets: int, *, top: int = 25) -> str:
    """Per-GET time of the serving path's functions, then the top functions by own time."""
    st = _stats(out_dir)
    if st is None:
        return f"no profiles in {out_dir}"
    raw = st.stats  # type: ignore[attr-defined]  # {(file, line, name): (cc, nc, tt, ct, callers)}
    lines = [f"annextui-shell profile: {gets} GETs, per GET (µs, cumulative incl. callees):"]
    for suffix, name in _PER_GET:
        for (file, _line, fn), (_cc, nc, _tt, ct, _callers) in raw.items():
            if fn == name and file.endswith(suffix):
                lines.append(f"  {suffix}:{name:<12} calls {nc:>6}  {ct / gets * 1e6:9.1f} µs/GET")
    lines.append(f"top {top} by own time (µs per GET):")
    rows = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    for (file, line, fn), (_cc, nc, tt, ct, _callers) in rows:
        where = "/".join(Path(file).parts[-2:]) if file != "~" else ""
        lines.append(
            f"  {tt / gets * 1e6:8.1f} own {ct / gets * 1e6:8.1f} cum {nc:>7}x  "
            f"{where}:{line}({fn})"
        )
    return "\n".join(lines)
