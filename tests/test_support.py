"""The shared test infrastructure works: command runner, annex helpers, private sshd."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support import procs, tasty
from tests.support.annex import AnnexEnv, CommandFailed, parse_json_lines, run
from tests.support.shellwrap import write_shell_wrapper
from tests.support.sshd import Sshd, free_port, keygen
from tests.support.waiting import wait_until

DATA = Path(__file__).parent / "data"

U1 = "11111111-0000-4000-8000-000000000001"
U2 = "22222222-0000-4000-8000-000000000002"

# --------------------------------------------------------------------------------------------
# run()


def test_run_failure_message_carries_output(tmp_path: Path) -> None:
    with pytest.raises(CommandFailed) as info:
        run(["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"], tmp_path)
    msg = str(info.value)
    assert "exit status 3" in msg
    assert "to-stdout" in msg
    assert "to-stderr" in msg
    assert str(tmp_path) in msg
    assert info.value.returncode == 3
    assert isinstance(info.value, AssertionError)


def test_run_check_false_and_input(tmp_path: Path) -> None:
    res = run(["sh", "-c", "cat; exit 4"], tmp_path, check=False, input="fed")
    assert (res.returncode, res.stdout) == (4, "fed")
    assert run(["sh", "-c", "cat"], tmp_path).stdout == ""  # stdin is /dev/null


class _Interrupted(Exception):
    pass


def test_run_interrupted_kills_its_command(tmp_path: Path) -> None:
    """pytest-timeout's failure (or ^C) raised while run() waits: the command is killed, not
    waited for without a bound by Popen's exit."""
    marker = f"interrupted-{os.getpid()}-{time.monotonic_ns()}"

    def interrupt(signum: int, frame: object) -> None:
        raise _Interrupted

    # SIGUSR1 rather than SIGALRM, which pytest-timeout itself uses
    old = signal.signal(signal.SIGUSR1, interrupt)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGUSR1))
    try:
        timer.start()
        with pytest.raises(_Interrupted):
            run([sys.executable, "-c", "import time; time.sleep(600)", marker], tmp_path)
        wait_until(lambda: not procs.mentioning(marker), "the command to be killed", 10)
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, old)
        procs.kill_pids(p.pid for p in procs.mentioning(marker))


def test_run_env_extra_sets_and_unsets(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "KEEP": "1", "DROP": "1"}
    out = run(
        ["sh", "-c", 'echo "$KEEP-${DROP:-unset}-$NEW"'],
        tmp_path,
        env=env,
        env_extra={"DROP": None, "NEW": "n"},
    ).stdout
    assert out == "1-unset-n\n"


def test_run_timeout_kills_the_process_group(tmp_path: Path) -> None:
    marker = f"sleep-{os.getpid()}-{time.monotonic_ns()}"
    start = time.monotonic()
    with pytest.raises(CommandFailed, match="timed out"):
        run(["sh", "-c", f"(exec -a {marker} sleep 30) & exec sleep 30"], tmp_path, timeout=0.5)
    assert time.monotonic() - start < 10
    time.sleep(0.1)
    assert not [p for p in procs.mentioning(marker) if procs.alive(p.pid)]


def test_outermost_drops_a_child_caught_between_fork_and_exec(tmp_path: Path) -> None:
    """A forked child that has not exec'd shows its parent's command line: one look at /proc
    finds the program twice, and `outermost` keeps the parent alone."""
    marker = f"forker-{os.getpid()}-{time.monotonic_ns()}"
    code = (
        "import os, sys, time\n"
        "if os.fork() == 0:\n"
        "    time.sleep(30); os._exit(0)\n"
        "print('forked', flush=True); time.sleep(30)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, marker], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "forked\n"
        found = procs.mentioning(marker)
        assert len(found) == 2, found  # the same command line twice
        assert {p.argv for p in found} == {found[0].argv}
        assert [p.pid for p in procs.outermost(found)] == [proc.pid]
    finally:
        procs.kill_pids(p.pid for p in procs.mentioning(marker))
        proc.wait(timeout=10)


def test_wait_until_returns_once_done_and_names_what_it_waited_for() -> None:
    calls: list[int] = []

    def third() -> bool:
        calls.append(1)
        return len(calls) == 3

    wait_until(third, "three calls")
    assert len(calls) == 3
    with pytest.raises(AssertionError, match=r"waited 0.05 s for the impossible"):
        wait_until(lambda: False, "the impossible", 0.05)


def test_parse_json_lines() -> None:
    assert parse_json_lines('{"a":1}\n\n{"b":2}\n') == [{"a": 1}, {"b": 2}]
    with pytest.raises(AssertionError, match="not JSON"):
        parse_json_lines("nope\n")


# --------------------------------------------------------------------------------------------
# git / git-annex helpers


def test_git_annex_bin_links_every_program(git_annex_bin: Path) -> None:
    for name in ("git-annex", "git-annex-shell", "git-remote-annex"):
        assert (git_annex_bin.parent / name).exists()


def test_annex_env_identity_home_and_path(annex_env: AnnexEnv) -> None:
    env = annex_env.env
    assert env["HOME"] == str(annex_env.home)
    assert not any(k in env for k in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"))
    cfg = annex_env.run(["git", "config", "--global", "--list"]).stdout
    assert "init.defaultbranch=main" in cfg
    assert "annex.sshcaching=false" in cfg
    ident = annex_env.run(["git", "var", "GIT_AUTHOR_IDENT"]).stdout
    assert ident.startswith("annextui test <test@annextui.invalid>")
    assert shutil.which("git-annex", path=env["PATH"]) == str(
        annex_env.bin_dir / "git-annex" if annex_env.bin_dir else ""
    )


def test_make_annex_repo_with_uuid_and_description(annex_env: AnnexEnv) -> None:
    annex_env.vector_clock = 1700000000
    repo = annex_env.make_annex_repo("a", uuid=U1, description="repo a")
    assert repo == annex_env.root / "a"
    assert annex_env.git(repo, "config", "annex.uuid") == U1
    assert annex_env.git(repo, "symbolic-ref", "HEAD") == "refs/heads/main"
    uuid_log = annex_env.git(repo, "show", "git-annex:uuid.log")
    assert uuid_log == f"{U1} repo a timestamp=1700000000s"
    bare = annex_env.make_annex_repo("b.git", uuid=U2, bare=True)
    assert annex_env.git(bare, "rev-parse", "--is-bare-repository") == "true"
    assert annex_env.git(bare, "config", "annex.uuid") == U2


def test_add_files_clone_and_json(annex_env: AnnexEnv) -> None:
    origin = annex_env.make_annex_repo("origin", uuid=U1, description="origin")
    keys = annex_env.add_files(origin, {"a.txt": "hello\n", "sub/b.bin": b"\x00\x01"})
    assert set(keys) == {"a.txt", "sub/b.bin"}
    assert keys["a.txt"].startswith("SHA256E-s6--")
    annex_env.add_files(origin, {"plain.txt": "in git\n"}, annex=False, message="plain")
    assert annex_env.git(origin, "log", "-1", "--format=%s") == "plain"
    found = {r["file"]: r["key"] for r in annex_env.annex_json(origin, "find")}
    assert found == keys

    clone = annex_env.clone(origin, "clone", uuid=U2, description="the clone")
    assert annex_env.git(clone, "config", "annex.uuid") == U2
    recs = annex_env.annex_json(clone, "get", "a.txt")
    assert [r["success"] for r in recs] == [True]
    assert (clone / "a.txt").read_text() == "hello\n"
    failed = annex_env.annex_json(clone, "get", "missing-file", check=False)
    assert failed == [] or failed[0]["success"] is False


# --------------------------------------------------------------------------------------------
# sshd


def test_ssh_alias_runs_commands(ssh_hosts: Sshd, tmp_path: Path) -> None:
    ssh_hosts.add_host("alpha")
    env = ssh_hosts.env()
    assert env["PATH"].split(os.pathsep)[0] == str(ssh_hosts.wrapper_dir)
    assert run(["ssh", "alpha", "echo hi"], tmp_path, env=env).stdout == "hi\n"
    # the default key's sessions: our HOME (no ~/.bashrc), git-annex-shell first in PATH
    out = run(["ssh", "alpha", 'echo "$HOME"; command -v git-annex-shell'], env=env).stdout
    home, shell = out.splitlines()
    assert home == str(ssh_hosts.server_home)
    assert Path(shell).name == "git-annex-shell"
    assert ssh_hosts.ssh_argv("alpha", "true")[1:3] == ["-F", str(ssh_hosts.config_path)]


def test_ssh_sessions_import_the_annextui_under_test(ssh_hosts: Sshd) -> None:
    """An annextui-shell run through sshd must test this checkout's code, not whichever
    annextui is installed (sshd hands sessions no environment of ours but the key's)."""
    import annextui

    ssh_hosts.add_host("pyhost")
    probe = f"{sys.executable} -c 'import annextui; print(annextui.__file__)'"
    out = run(["ssh", "pyhost", probe], env=ssh_hosts.env()).stdout
    assert Path(out.strip()).resolve() == Path(annextui.__file__).resolve()


def test_ssh_env_per_alias(ssh_hosts: Sshd, tmp_path: Path) -> None:
    for name in ("one", "two"):
        d = tmp_path / name
        d.mkdir()
        (d / "which-host").write_text(f'#!/bin/sh\necho {name} "$EXTRA"\n')
        (d / "which-host").chmod(0o755)
        ssh_hosts.add_host(f"h{name}", env={"PATH": f"{d}:/usr/bin:/bin", "EXTRA": f"x-{name}"})
    env = ssh_hosts.env()
    assert run(["ssh", "hone", "which-host"], env=env).stdout == "one x-one\n"
    assert run(["ssh", "htwo", "which-host"], env=env).stdout == "two x-two\n"
    assert (
        run(["ssh", "htwo", 'echo "$PATH"'], env=env).stdout
        == f"{tmp_path / 'two'}:/usr/bin:/bin\n"
    )


def test_ssh_forced_command(ssh_hosts: Sshd) -> None:
    ssh_hosts.add_host("forced", command='echo "forced: $SSH_ORIGINAL_COMMAND"')
    ssh_hosts.add_host("free")
    env = ssh_hosts.env()
    assert run(["ssh", "forced", "echo", "asked"], env=env).stdout == "forced: echo asked\n"
    assert run(["ssh", "free", "echo", "asked"], env=env).stdout == "asked\n"


def test_ssh_refuses_a_wrong_host_key(ssh_hosts: Sshd, tmp_path: Path) -> None:
    other = keygen(tmp_path / "impostor_key", "impostor").split()
    bad = tmp_path / "known_hosts_bad"
    bad.write_text(f"[127.0.0.1]:{ssh_hosts.port} {other[0]} {other[1]}\n")
    ssh_hosts.add_host("impostor", known_hosts=bad)
    res = run(["ssh", "impostor", "echo hi"], env=ssh_hosts.env(), check=False)
    assert res.returncode == 255
    assert res.stdout == ""
    assert "Host key verification failed" in res.stderr or "IDENTIFICATION HAS CHANGED" in (
        res.stderr
    )


def test_ssh_alias_on_closed_port(ssh_hosts: Sshd) -> None:
    ssh_hosts.add_host("down", port=free_port())
    res = run(["ssh", "down", "true"], env=ssh_hosts.env(), check=False)
    assert res.returncode == 255
    assert "refused" in res.stderr


def test_ssh_hosts_snapshot_restore(sshd: Sshd) -> None:
    snap = sshd.snapshot_hosts()
    sshd.add_host("temporary")
    assert "Host temporary" in sshd.config_path.read_text()
    sshd.restore_hosts(snap)
    assert "Host temporary" not in sshd.config_path.read_text()


def test_paramiko_reads_the_client_config(ssh_hosts: Sshd) -> None:
    paramiko = pytest.importorskip("paramiko")
    ssh_hosts.add_host("pm")
    conf = paramiko.SSHConfig.from_path(str(ssh_hosts.config_path)).lookup("pm")
    assert conf["hostname"] == "127.0.0.1"
    assert int(conf["port"]) == ssh_hosts.port
    assert conf["userknownhostsfile"] == str(ssh_hosts.known_hosts)


def test_git_annex_over_ssh(annex_env: AnnexEnv, ssh_hosts: Sshd) -> None:
    ssh_hosts.add_host("gw")
    annex_env.use_ssh(ssh_hosts)
    gw = annex_env.make_annex_repo("gw", uuid=U1, description="gateway")
    client = annex_env.clone(f"ssh://gw{gw}", "client", uuid=U2, description="client")
    keys = annex_env.add_files(client, {"f": "over ssh\n"})
    [rec] = annex_env.annex_json(client, "copy", "--to", "origin", "f")
    assert rec["success"] is True
    # the object arrived in the gateway repository
    location = annex_env.annex(gw, "contentlocation", keys["f"]).stdout.strip()
    assert (gw / location).read_text() == "over ssh\n"


def test_ssh_caching_masters_are_cleaned_up(annex_env: AnnexEnv, ssh_hosts: Sshd) -> None:
    ssh_hosts.add_host("gwc")
    annex_env.use_ssh(ssh_hosts)
    annex_env.global_config("annex.sshcaching", "true")
    gw = annex_env.make_annex_repo("gw", uuid=U1)
    client = annex_env.clone(f"ssh://gwc{gw}", "c", uuid=U2)
    annex_env.add_files(client, {"f": "x"})
    annex_env.annex(client, "copy", "--to", "origin", "f")
    # a connection master that outlives its command, as git-annex's can (ControlPath relative
    # to the repository, so only the wrapper's -F and the cwd identify it)
    annex_env.run(
        ["ssh", "-fN", "-o", "ControlMaster=yes", "-o", "ControlPersist=yes", "-S", "m", "gwc"],
        client,
    )
    masters = [p for p in procs.mentioning(str(ssh_hosts.root), {"ssh"}) if "-S" in p.argv]
    assert any(procs.cwd(p.pid) == str(client) for p in masters)
    annex_env.cleanup()
    time.sleep(0.05)
    left = [p for p in procs.mentioning(str(ssh_hosts.root), {"ssh"}) if procs.alive(p.pid)]
    assert not [p for p in left if procs.under(procs.cwd(p.pid) or "/", str(annex_env.root))]


# --------------------------------------------------------------------------------------------
# git-annex's test runners (tasty) and the git-annex-shell wrapper


def test_tasty_parse_reads_failures_with_redrawn_progress_lines() -> None:
    # a real `git annex test -p ... ssh remote` run whose locked get/move failed: the failure
    # transcripts hold progress lines redrawn with "\r" (ending in "\rfailed")
    text = (DATA / "tasty" / "ssh_remote_locked_failing.txt").read_bytes().decode()
    results = tasty.parse(text)
    assert len(results.outcomes) == results.summary_total == 8
    assert results.failed == {
        "Tests.Repo Tests v10 locked.get (ssh remote)",
        "Tests.Repo Tests v10 locked.move (ssh remote)",
    }
    assert "Tests.Repo Tests v10 unlocked.Init Tests.add" in results.passed
    assert any("Verification of content failed" in m for m in results.messages[min(results.failed)])


def test_tasty_parse_refuses_a_count_the_summaries_do_not_give() -> None:
    text = "Tests\n  a\n    one: OK\n    two: FAIL\n\n1 out of 3 tests failed (0.1s)\n"
    with pytest.raises(tasty.TastyParseError, match="read 2 tests"):
        tasty.parse(text)
    assert tasty.parse(text.replace("of 3", "of 2")).failed == {"Tests.a.two"}


def test_shell_wrapper_execs_its_program_and_logs_each_run(tmp_path: Path) -> None:
    wrapper = write_shell_wrapper(tmp_path / "bin", program="echo")
    assert not (tmp_path / "bin" / "git-annex-shell").is_symlink()
    env = {**os.environ, "PATH": f"{wrapper.bin_dir}{os.pathsep}{os.environ['PATH']}"}
    out = run(["git-annex-shell", "p2pstdio", "/some dir", "u"], env=env).stdout
    assert out == "p2pstdio /some dir u\n"
    run(["git-annex-shell", "configlist", "/r"], env=env)
    assert wrapper.invocations() == ["p2pstdio /some dir u", "configlist /r"]
