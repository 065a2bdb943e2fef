"""The CPU of a small GET's two in-process halves, with no I/O of the session: the protocol
exchange and the store look-ups. A machine shared with other jobs moves a whole session's CPU
by more than these halves weigh (shellcpu.py); timed alone, best of many repeats, they do not.

* `protocol`: one server `Connection` in the state after VERSION 2: the GET line in, `DATA`,
  a 4 KiB body and `VALID` out, `SUCCESS` in.
* `stores`: what a cluster GET of a key on a local node asks of the object stores: the
  gateway's own store (no objects), a node without the key and the node with it
  (`has_object` each), that node's transfer records (`list_transfers`, none there) and
  `present` (the checks before the object is opened).

Each runs in a subprocess per checkout (this one, and `--baseline DIR` if given), alternating.

    python bench/getpath.py [--baseline DIR] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NUMBER = 4000
REPEAT = 9


def protocol_exchange() -> Callable[[], object]:
    from annextui.proxycore import protocol as p

    key = "SHA256E-s4096--f5f4dab4dbb71da46e196c7a838139c895cf6ae21d0b0e71fda03da9469bdc8b.bin"
    conn = p.Connection(p.Role.SERVER, greeting=True)
    conn.send(p.AuthSuccess("40de0000-0000-4000-8000-000000000001"))
    conn.receive_data(b"VERSION 2\n")
    conn.next_event()
    conn.send(p.Version(2))
    body = bytes(4096)
    line = f"GET 0 f {key}\n".encode()

    # What the server asks before VALID: may_send, or sendable() in a checkout without it.
    may_send = getattr(conn, "may_send", None) or (lambda cls: cls in conn.sendable())

    def one() -> object:
        conn.receive_data(line)
        ev = conn.next_event()
        out = bytearray(conn.send(p.DataHeader(len(body))))
        out += conn.send_data(body)
        if may_send(p.Valid):
            out += conn.send(p.Valid())
        conn.receive_data(b"SUCCESS\n")
        conn.next_event()
        assert conn.next_event() is p.NEED_DATA
        return ev

    return one


def store_lookups(root: Path) -> Callable[[], object]:
    from annextui.backend.keys import hashdir_lower, key_file, key_for_content
    from annextui.proxycore.objectstore import ObjectStore
    from annextui.proxycore.transfers import list_transfers

    stores = []
    for name in ("gw", "node1", "node2"):
        (root / name / "annex" / "objects").mkdir(parents=True)
        stores.append(ObjectStore(root / name, bare=True))
    key = key_for_content(b"x" * 4096, "SHA256E", ".bin")
    kf = key_file(key)
    obj = root / "node2" / "annex" / "objects" / hashdir_lower(key) / kf / kf
    obj.parent.mkdir(parents=True)
    obj.write_bytes(b"x" * 4096)
    gw, node1, node2 = stores
    annexdir = root / "gw" / "annex"
    node = "40de0000-0000-4000-8000-000000000002"

    def one() -> object:
        assert not gw.has_object(key)
        assert not node1.has_object(key)
        assert node2.has_object(key)
        assert not list_transfers(annexdir, node)
        return node2.present(key)

    return one


def measure(which: str) -> float:
    """Best CPU seconds of one call of `which`, in this process."""
    with tempfile.TemporaryDirectory(prefix="getpath-") as tmp:
        fn = protocol_exchange() if which == "protocol" else store_lookups(Path(tmp))
        runs = timeit.repeat(fn, number=NUMBER, repeat=REPEAT, timer=time.process_time)
    return min(runs) / NUMBER


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--baseline", type=Path, help="another annextui checkout, timed beside this")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--measure", choices=("protocol", "stores"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.measure is not None:  # the child: one figure, this process's checkout
        print(measure(args.measure))
        return 0
    roots = {"ours": ROOT}
    if args.baseline is not None:
        roots["base"] = args.baseline.resolve()
    best: dict[tuple[str, str], float] = {}
    for rnd in range(args.rounds):
        order = list(roots) if rnd % 2 == 0 else list(reversed(roots))
        for which in ("protocol", "stores"):
            for name in order:
                env = {**os.environ, "PYTHONPATH": str(roots[name])}
                out = subprocess.run(
                    [sys.executable, __file__, "--measure", which],
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                got = float(out)
                best[(which, name)] = min(got, best.get((which, name), got))
    print(f"µs of CPU per GET, best of {args.rounds} x {REPEAT} x {NUMBER} calls")
    print(f"{'part':10} " + " ".join(f"{name:>8}" for name in roots))
    for which in ("protocol", "stores"):
        cells = " ".join(f"{best[(which, name)] * 1e6:8.1f}" for name in roots)
        print(f"{which:10} {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
