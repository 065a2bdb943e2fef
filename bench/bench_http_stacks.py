"""Which HTTP stack `annextui p2phttp` is built on: three candidates measured side by side.

Each candidate serves the same tiny app in a child process on loopback:
* `PUT /blob`  streams the request body (chunked) into a sink, 1 MiB reads;
* `GET /blob`  streams SIZE bytes back (chunked), 1 MiB writes;
* `GET /small` answers a 20-byte JSON body.

Workloads (a stdlib `http.client` client, so no client library is measured): one 64 MiB PUT,
one 64 MiB GET, then 2000 small GETs on one keep-alive connection, then 2000 small GETs on
4 keep-alive connections in 4 threads. Figures: wall seconds per workload and the server's peak
RSS (VmHWM) after all of them, so a stack that buffers a body shows it.

Candidates:
* `h11`      h11 (sans-IO HTTP/1.1) driven by one thread per connection over blocking sockets;
* `aiohttp`  aiohttp.web with streamed request/response bodies;
* `uvicorn`  uvicorn with httptools and a minimal ASGI app.

    python bench/bench_http_stacks.py [--mib 64] [--small 2000]
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import subprocess
import sys
import threading
import time

BLOCK = 1 << 20
SMALL = b'{"present":false}   '


# -- servers (run in the child) ------------------------------------------------------------------


def serve_h11(port: int, size: int) -> None:
    import h11

    def handle(sock: socket.socket) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        view = memoryview(bytearray(BLOCK))

        def event() -> object:
            while True:
                ev = conn.next_event()
                if ev is h11.NEED_DATA:
                    n = sock.recv_into(view)
                    conn.receive_data(bytes(view[:n]) if n else b"")
                    continue
                return ev

        try:
            while True:
                req = event()
                if not isinstance(req, h11.Request):
                    return
                ev = req
                while not isinstance(ev, h11.EndOfMessage):
                    ev = event()  # the body, into a sink
                head = h11.Response(status_code=200, headers=[("transfer-encoding", "chunked")])
                sock.sendall(conn.send(head))
                if req.target == b"/blob" and req.method == b"GET":
                    chunk = memoryview(bytes(BLOCK))
                    left = size
                    while left:
                        n = min(BLOCK, left)
                        # h11 frames the chunk; the block itself is sent without a copy
                        sock.sendall(b"%x\r\n" % n)
                        sock.sendall(chunk[:n])
                        sock.sendall(b"\r\n")
                        conn.send_with_data_passthrough(h11.Data(data=b""))
                        left -= n
                elif req.target == b"/small":
                    sock.sendall(conn.send(h11.Data(data=SMALL)))
                sock.sendall(conn.send(h11.EndOfMessage()))
                conn.start_next_cycle()
        except (h11.ProtocolError, OSError):
            return
        finally:
            sock.close()

    lsock = socket.create_server(("127.0.0.1", port), backlog=128)
    print("ready", flush=True)
    while True:
        s, _ = lsock.accept()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handle, args=(s,), daemon=True).start()


def serve_aiohttp(port: int, size: int) -> None:
    from aiohttp import web

    async def put(req: web.Request) -> web.Response:
        while await req.content.read(BLOCK):
            pass
        return web.Response(body=b"")

    async def get(req: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(req)
        chunk = bytes(BLOCK)
        left = size
        while left:
            n = min(BLOCK, left)
            await resp.write(chunk[:n])
            left -= n
        await resp.write_eof()
        return resp

    async def small(req: web.Request) -> web.Response:
        return web.Response(body=SMALL)

    app = web.Application(client_max_size=0)
    app.router.add_put("/blob", put)
    app.router.add_get("/blob", get)
    app.router.add_get("/small", small)
    print("ready", flush=True)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def serve_uvicorn(port: int, size: int) -> None:
    import uvicorn

    async def app(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        more = True
        while more:
            msg = await receive()
            more = msg.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if path == "/blob" and method == "GET":
            chunk = bytes(BLOCK)
            left = size
            while left:
                n = min(BLOCK, left)
                left -= n
                await send({"type": "http.response.body", "body": chunk[:n], "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        else:
            await send({"type": "http.response.body", "body": SMALL if path == "/small" else b""})

    print("ready", flush=True)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        http="httptools",
        log_level="error",
        access_log=False,
        lifespan="off",
    )


SERVERS = {"h11": serve_h11, "aiohttp": serve_aiohttp, "uvicorn": serve_uvicorn}


# -- client --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(port: int) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def put_big(port: int, size: int) -> None:
    c = http.client.HTTPConnection("127.0.0.1", port)
    chunk = bytes(BLOCK)

    def body():  # type: ignore[no-untyped-def]
        left = size
        while left:
            n = min(BLOCK, left)
            left -= n
            yield chunk[:n]

    c.request("PUT", "/blob", body=body(), encode_chunked=True)
    r = c.getresponse()
    r.read()
    assert r.status == 200, r.status
    c.close()


def get_big(port: int, size: int) -> None:
    c = http.client.HTTPConnection("127.0.0.1", port)
    c.request("GET", "/blob")
    r = c.getresponse()
    got = 0
    buf = bytearray(BLOCK)
    while n := r.readinto(buf):
        got += n
    assert got == size, got
    c.close()


def small_gets(port: int, n: int) -> None:
    c = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(n):
        c.request("GET", "/small")
        r = c.getresponse()
        assert r.read() == SMALL
    c.close()


def parallel_small(port: int, n: int, threads: int) -> None:
    ts = [threading.Thread(target=small_gets, args=(port, n // threads)) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def measure(name: str, size: int, small: int) -> dict[str, float]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", name, "--port", str(port), "--size", str(size)],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_up(port)
        out: dict[str, float] = {"rss_start": peak_rss_mib(proc.pid)}
        for label, fn in (
            ("put", lambda: put_big(port, size)),
            ("get", lambda: get_big(port, size)),
            ("small", lambda: small_gets(port, small)),
            ("small4", lambda: parallel_small(port, small, 4)),
        ):
            t = time.perf_counter()
            fn()
            out[label] = time.perf_counter() - t
        out["rss_peak"] = peak_rss_mib(proc.pid)
        return out
    finally:
        proc.terminate()
        proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--small", type=int, default=2000)
    ap.add_argument("--serve")
    ap.add_argument("--port", type=int)
    ap.add_argument("--size", type=int)
    ap.add_argument("--only", nargs="*", default=list(SERVERS))
    a = ap.parse_args()
    if a.serve:
        SERVERS[a.serve](a.port, a.size)
        return 0
    size = a.mib << 20
    print(f"load average {os.getloadavg()[0]:.2f}; {a.mib} MiB bodies, {a.small} small GETs")
    print(
        f"{'stack':10} {'PUT s':>7} {'GET s':>7} {'small s':>8} {'us/req':>7} "
        f"{'4 conns s':>9} {'RSS start':>9} {'RSS peak':>9}"
    )
    for name in a.only:
        r = measure(name, size, a.small)
        print(
            f"{name:10} {r['put']:7.3f} {r['get']:7.3f} {r['small']:8.3f} "
            f"{r['small'] / a.small * 1e6:7.0f} {r['small4']:9.3f} "
            f"{r['rss_start']:8.1f}M {r['rss_peak']:8.1f}M"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
