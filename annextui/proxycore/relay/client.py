"""`annextui-relay`: hand an ssh connection to the long-running `annextui p2phttp` server.

Used as the gateway account's forced command (`command="annextui-relay"`, the client's
request in $SSH_ORIGINAL_COMMAND) or as its `annex-shell`, in place of annextui-shell. It
connects to the server's unix socket (ANNEXTUI_RELAY_SOCKET, default ~/.annextui/relay.sock),
sends one header (below) with its stdin, stdout and stderr attached (SCM_RIGHTS), and waits:
the server serves the P2P session on those descriptors itself, in a worker thread, with the
repositories, branch state and ssh connections to nodes it keeps open, then answers
`exit N`. The bytes of the session never pass through this process.

When the socket is absent or refuses, or the server answers `fallback` (a command it does not
serve in-process, such as git's own traffic or configlist, or no free worker), this process
becomes annextui-shell (ANNEXTUI_RELAY_SHELL, default `annextui-shell` on PATH) with the same
arguments, so a stopped server never breaks ssh access.

Exit status, once the server holds the descriptors:
* `exit N` from the server: N, the session's status as annextui-shell would exit with it;
  a session failing in a way the shell does not report is answered `exit 1`;
* the server stopped (SIGTERM) during the session: 0, as when the client hangs up. The session
  sees its input end and answers `exit 0` itself; one that cannot end in time (blocked on its
  client's pipe or on a node) is answered `exit 0` by the stopping server before it exits;
* `error MESSAGE` (a refused header): 1, MESSAGE on stderr;
* the socket closed without any of these: 1, "the server ended the session without an exit
  status": the server died without stopping (killed, crashed), and what the session did last
  is unknown.

Start-up is the point of it: this file imports nothing but CPython's builtin `_socket`, `os`
and `sys`, and runs as a plain script, so `python3 -I -S /path/to/client.py` starts it without
`site` (see docs/deployment.md; bench/bench_relay.py measures it). It must stay free of
annextui imports.

Header (parsed strictly by proxycore/relay/header.py), all in one message:
    b"annextui-relay 1\\n" LENGTH b"\\n" BODY
LENGTH is the decimal size of BODY (at most MAX_HEADER); BODY is NUL-terminated items, each
`A<argument>` (the command line, in order) or `E<NAME>=<value>` (the environment variables
the shell honours: NAME is HOME or starts with one of ENV_PREFIXES).
"""

import os
import sys

MAGIC = b"annextui-relay 1\n"
MAX_HEADER = 64 * 1024
MAX_ITEMS = 256
ENV_PREFIXES = ("GIT_ANNEX_SHELL_", "SSH_")
ENV_NAMES = ("HOME",)
SOCKET_ENV = "ANNEXTUI_RELAY_SOCKET"
SHELL_ENV = "ANNEXTUI_RELAY_SHELL"
DEFAULT_SHELL = "annextui-shell"
REPLY_LIMIT = 4096
CONNECT_TIMEOUT = 10.0


def default_socket() -> str:
    home = os.environ.get("HOME") or os.path.expanduser("~")
    return os.path.join(home, ".annextui", "relay.sock")


def relayed_env(environ: "dict[str, str] | os._Environ[str]") -> "list[tuple[str, str]]":
    """The variables a relay passes on: those the shell's restrictions read."""
    return sorted(
        (k, v) for k, v in environ.items() if k in ENV_NAMES or k.startswith(ENV_PREFIXES)
    )


def encode_header(args: "list[str]", env: "list[tuple[str, str]]") -> bytes:
    items = [b"A" + os.fsencode(a) for a in args]
    items += [b"E" + os.fsencode(k) + b"=" + os.fsencode(v) for k, v in env]
    body = b"".join(i + b"\0" for i in items)
    return MAGIC + str(len(body)).encode() + b"\n" + body


def command_line(argv: "list[str]") -> "list[str]":
    """Our arguments; none (a forced command): the client's request, as sshd passes it."""
    if not argv:
        original = os.environ.get("SSH_ORIGINAL_COMMAND")
        if original is not None:
            return ["-c", original]
    return argv


def _fallback(args: "list[str]") -> int:
    shell = os.environ.get(SHELL_ENV) or DEFAULT_SHELL
    try:
        os.execvp(shell, [shell, *args])
    except OSError as exc:
        sys.stderr.write(f"annextui-relay: cannot run {shell}: {exc}\n")
        return 1
    return 1  # not reached


def _say(text: str) -> None:
    sys.stderr.write(f"annextui-relay: {text}\n")
    sys.stderr.flush()


def main() -> int:
    args = command_line(sys.argv[1:])
    import _socket

    header = encode_header(args, relayed_env(os.environ))
    if len(header) - len(MAGIC) > MAX_HEADER + 16:
        _say("command line and environment too long to relay")
        return 1
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(CONNECT_TIMEOUT)  # a server that does not accept (stopped): fall back
        sock.connect(os.environ.get(SOCKET_ENV) or default_socket())
        fds = b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in (0, 1, 2))
        sent = sock.sendmsg([header], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
    except OSError:
        sock.close()
        return _fallback(args)  # no server (or it refuses): serve this connection ourselves
    try:
        # The server holds our descriptors now: from here on, never serve them twice.
        if sent < len(header):
            sock.sendall(header[sent:])
        sock.settimeout(None)  # the session lasts as long as the client wants
    except OSError as exc:
        sock.close()
        _say(f"cannot pass the session to the server: {exc}")
        return 1
    reply = b""
    while not reply.endswith(b"\n") and len(reply) < REPLY_LIMIT:
        try:
            chunk = sock.recv(REPLY_LIMIT)
        except InterruptedError:
            continue
        except OSError:
            chunk = b""
        if not chunk:
            break
        reply += chunk
    sock.close()
    word, _, rest = reply.strip().decode("utf-8", "replace").partition(" ")
    if word == "exit" and rest.isdigit():
        return int(rest)
    if word == "fallback" and reply.endswith(b"\n"):
        return _fallback(args)
    if word == "error":
        _say(rest)
        return 1
    _say("the server ended the session without an exit status")
    return 1


if __name__ == "__main__":
    sys.exit(main())
