"""Never hangs, never leaks: upstream's p2phttp bug reports (doc/bugs/*p2phttp* in git-annex)
turned into tests against `annextui p2phttp`, plus the bounds of our own server.

* p2phttp_deadlocks_with_concurrent_clients  -> test_concurrent_clients_at_low_jobs
* p2phttp_can_get_stuck_with_interrupted_clients -> test_killed_clients_free_everything
* p2phttp_timely_journal_commit                 -> test_journal_committed_while_running
* Number_of_p2phttp_OS_threads_scales_with_-J_flag -> test_threads_do_not_scale_with_jobs
* get_from_p2phttp_sometimes_stalls (last chunk) -> every GET body compared whole, here and in
  test_p2phttp_interop.py
* busy: 503 with Retry-After instead of a silent stall -> test_busy_is_503_then_recovers
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading

import pytest

from annextui.proxycore.transfers import list_transfers
from tests.gateway.topology import CLIENT, GW
from tests.p2phttp.support import Served, World, build, point_at, serve
from tests.support.annex import AnnexEnv

pytestmark = pytest.mark.slow
LINGER0 = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # SO_LINGER on, 0 s: close sends RST


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def _settled(served: Served, baseline: int) -> int:
    """The server's descriptor count once it stops falling (its threads end asynchronously
    after a client vanishes): asked through requests, never by sleeping a fixed time."""
    count = _fds(served.proc.pid)
    for _ in range(200):
        if count <= baseline:
            return count
        served.request("POST", f"/git-annex/{GW}/v4/gettimestamp?clientuuid={CLIENT}", b"")
        threading.Event().wait(0.05)
        count = _fds(served.proc.pid)
    return count


def _stored(env: AnnexEnv, w: World, files: dict[str, bytes]) -> dict[str, str]:
    env.add_files(w.client, files)
    env.annex(w.client, "copy", "--to", "origin", *files)
    return {n: env.annex(w.client, "lookupkey", n).stdout.strip() for n in files}


def _raw(served: Served, head: str, body: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", served.port))
    sock.sendall(head.encode() + body)
    return sock


def _kill(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
    sock.close()


@pytest.fixture
def world(annex_env: AnnexEnv) -> World:
    return build(annex_env, annex_env.root)


def test_concurrent_clients_at_low_jobs(annex_env: AnnexEnv, world: World) -> None:
    """-J 2 and eight clients at once, one of them holding a lock: all are answered."""
    with serve(annex_env, world.gw, ["--wideopen", "-J", "2"]) as served:
        point_at(world, served)
        keys = _stored(annex_env, world, {f"f{i}": os.urandom(50_000) for i in range(4)})
        base = f"/git-annex/{GW}/v4"
        _, keeper = served.keep_locked(keys["f0"])
        failures: list[str] = []

        def client(n: int) -> None:
            conn = served.conn()
            for i in range(15):
                key = keys[f"f{(n + i) % 4}"]
                for method, path in (
                    ("POST", f"{base}/checkpresent?key={key}&clientuuid={CLIENT}"),
                    ("GET", f"{base}/key/{key}?clientuuid={CLIENT}"),
                    ("POST", f"{base}/putoffset?key={key}&clientuuid={CLIENT}"),
                ):
                    conn.request(method, path, body=b"" if method == "POST" else None)
                    r = conn.getresponse()
                    data = r.read()
                    if r.status != 200 or (method == "GET" and len(data) != 50_000):
                        failures.append(f"{method} {path}: {r.status}")
            conn.close()

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert not any(t.is_alive() for t in threads)
        assert failures == []
        keeper.sendall(b'f\r\n{"unlock":true}\r\n0\r\n\r\n')
        keeper.close()


def test_killed_clients_free_everything(annex_env: AnnexEnv, world: World) -> None:
    """Clients killed mid-put, mid-get, mid-keeplocked and a real `git annex get` killed with
    -9: afterwards the server answers, its descriptors are back at the baseline, no transfer
    or content lock is held, and git-annex's fsck finds the repository clean."""
    env = annex_env
    with serve(env, world.gw, ["--wideopen", "-J", "3"]) as served:
        point_at(world, served)
        big = os.urandom(24 << 20)
        keys = _stored(env, world, {"big.bin": big, "small.txt": b"small\n"})
        base = f"/git-annex/{GW}/v4"
        served.request("POST", f"{base}/gettimestamp?clientuuid={CLIENT}", b"")
        baseline = _fds(served.proc.pid)
        # a put that dies half way
        env.add_files(world.client, {"up.bin": os.urandom(4 << 20)})
        upkey = env.annex(world.client, "lookupkey", "up.bin").stdout.strip()
        put = _raw(
            served,
            f"POST {base}/put?key={upkey}&clientuuid={CLIENT}&offset=0 HTTP/1.1\r\nHost: x\r\n"
            f"X-git-annex-data-length: {4 << 20}\r\nContent-Length: {4 << 20}\r\n\r\n",
            b"x" * (1 << 20),
        )
        # a get that reads a little and dies
        get = _raw(
            served,
            f"GET {base}/key/{keys['big.bin']}?clientuuid={CLIENT} HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        assert get.recv(4096).startswith(b"HTTP/1.1 200")
        # a lock kept by a client that dies
        _, keeper = served.keep_locked(keys["small.txt"])
        # a real client killed with -9 while it downloads
        env.annex(world.client, "drop", "big.bin")
        proc = subprocess.Popen(
            ["git-annex", "get", "--from", "origin", "big.bin"],  # no git in between to outlive
            cwd=world.client,
            env=env.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        tmp = world.client / ".git" / "annex" / "tmp"
        for _ in range(600):
            if tmp.is_dir() and any(p.stat().st_size for p in tmp.iterdir()):
                break
            if proc.poll() is not None:
                break
            threading.Event().wait(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for sock in (put, get, keeper):
            _kill(sock)
        assert _settled(served, baseline) <= baseline
        st, _, body = served.request(
            "POST", f"{base}/checkpresent?key={keys['big.bin']}&clientuuid={CLIENT}", b""
        )
        assert (st, json.loads(body)) == (200, {"present": True})
        assert list_transfers(world.gw / "annex") == []
        # the lock the dead client kept is gone: the content can be dropped at once
        env.annex(world.client, "drop", "--from", "origin", "--force", "small.txt")
        env.annex(world.client, "copy", "--to", "origin", "small.txt")
        # the partial upload stays for a resume: putoffset reports it
        _, _, body = served.request(
            "POST", f"{base}/putoffset?key={upkey}&clientuuid={CLIENT}", b""
        )
        assert json.loads(body) == {"offset": 1 << 20}
        env.annex(world.client, "get", "--from", "origin", "big.bin")
        assert (world.client / "big.bin").read_bytes() == big
        # the killed client's partial download was resumed, not fetched again from 0
        resumed = [
            line
            for line in served.log_text().splitlines()
            if f"/key/{keys['big.bin']}?" in line and "offset=" in line
        ]
        assert resumed, served.log_text()
    env.annex(world.gw, "fsck", "-q", "--all")


def test_journal_committed_while_running(annex_env: AnnexEnv, world: World) -> None:
    with serve(annex_env, world.gw, ["--wideopen", "-J", "2"]) as served:
        point_at(world, served)
        keys = _stored(annex_env, world, {"j.txt": b"journal\n"})
        # committed once the repository is idle (about a second), while the server runs on
        journal = world.gw / "annex" / "journal"
        for _ in range(400):
            if not (journal.is_dir() and list(journal.iterdir())):
                break
            threading.Event().wait(0.05)
        assert not (journal.is_dir() and list(journal.iterdir()))
        # what another client fetches from the branch lists the copy already
        out = annex_env.annex_json(world.gw, "whereis", "--key", keys["j.txt"])
        assert GW in {w["uuid"] for w in out[0]["whereis"]}
        assert served.proc.poll() is None


def test_threads_do_not_scale_with_jobs(annex_env: AnnexEnv, world: World) -> None:
    with serve(annex_env, world.gw, ["--wideopen", "-J", "200"]) as served:
        served.request("POST", f"/git-annex/{GW}/v4/gettimestamp?clientuuid={CLIENT}", b"")
        assert _threads(served.proc.pid) <= 3


def test_busy_is_503_then_recovers(annex_env: AnnexEnv, world: World) -> None:
    """Both slots of -J 2 taken by stalled uploads and no queue: the next request is refused
    at once with 503 and Retry-After; when the stalled clients die it is served again."""
    args = ["--wideopen", "-J", "2", "--max-queue", "0"]
    with serve(annex_env, world.gw, args) as served:
        base = f"/git-annex/{GW}/v4"
        stalled = []
        for i in range(2):
            key = f"SHA256E-s100--{i:064x}"
            sock = _raw(
                served,
                f"POST {base}/put?key={key}&clientuuid={CLIENT} HTTP/1.1\r\nHost: x\r\n"
                "X-git-annex-data-length: 100\r\nContent-Length: 100\r\n\r\n",
                b"x",
            )
            stalled.append(sock)
        # the stalled uploads have their slots once their temp files exist
        tmp = world.gw / "annex" / "tmp"
        for _ in range(600):
            if tmp.is_dir() and len(list(tmp.iterdir())) == 2:
                break
            threading.Event().wait(0.02)
        st, headers, _ = served.request("POST", f"{base}/gettimestamp?clientuuid={CLIENT}", b"")
        assert st == 503
        assert headers["retry-after"] == "1"
        for sock in stalled:
            _kill(sock)
        for _ in range(200):
            st, _, _ = served.request("POST", f"{base}/gettimestamp?clientuuid={CLIENT}", b"")
            if st == 200:
                break
            threading.Event().wait(0.05)
        assert st == 200


@pytest.mark.parametrize("as_json", [False, True])
def test_sigusr1_prints_status(annex_env: AnnexEnv, world: World, as_json: bool) -> None:
    args = ["--wideopen", "-J", "2", *(["--json"] if as_json else [])]
    with serve(annex_env, world.gw, args) as served:
        point_at(world, served)
        keys = _stored(annex_env, world, {"s.txt": b"status\n"})
        base = f"/git-annex/{GW}/v4"
        _, _, body = served.request(
            "POST", f"{base}/lockcontent?key={keys['s.txt']}&clientuuid={CLIENT}", b""
        )
        lockid = json.loads(body)["lockid"]
        served.proc.send_signal(signal.SIGUSR1)
        marker = '{"status": {' if as_json else "status:"
        for _ in range(200):
            if marker in served.log_text():
                break
            threading.Event().wait(0.05)
        text = served.log_text()
        if not as_json:
            assert "1 locks" in text
            assert f"lock {lockid} {keys['s.txt']}" in text
            return
        lines = [json.loads(x) for x in text.splitlines() if x.startswith("{")]
        status = next(x["status"] for x in lines if isinstance(x.get("status"), dict))
        assert status["locks"] == [{"kept": False, "key": keys["s.txt"], "lockid": lockid}]
        requests = [x for x in lines if "method" in x]
        assert {"client", "method", "path", "status", "bytes", "seconds"} <= set(requests[0])
        assert any(x["path"].endswith("/v4/put") or "/v4/put?" in x["path"] for x in requests)
