"""The foreground proxy: static checks of the generated sh, and real runs.

The real runs start each proxy in a new session so that every helper it
spawns (``sleep``) can be found afterwards by session id: a proxy that
exits must leave nothing of its own behind. The daemon itself calls
``setsid``, so it is tracked by its pid file instead. Everything started is
killed by PID in ``finally`` blocks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from procmgmt.backends._activation import pid_alive
from procmgmt.backends.shared.proxy import ProxyOptions, check_options, generate
from tests import _lanes
from tests.backends._helpers import get_body, session_members
from tests.conftest import EXAMPLES
from tests.e2e.util import free_port_block

WEBAPP = str(EXAMPLES / "webapps" / "webapp.py")

VARIANTS = {
    "foreground": ProxyOptions(name="fg", command=("/bin/echo", "a b", "$x", "`y`", "it's")),
    "foreground-everything": ProxyOptions(
        name="fg2", command=("/bin/echo", "x"), initialize="mkdir -p /tmp/x\necho 'done'\n",
        directory="/tmp/some dir", umask="0027", nice=-3, user="nobody",
        environment={"A": "x y", "B": "it's \"q\""}),
    "daemon": ProxyOptions(name="d", command=(sys.executable, WEBAPP, "-D"), wrap_daemon=True,
                           pid_file="/run/d.pid"),
    "daemon-everything": ProxyOptions(
        name="we'ird", command=(sys.executable, WEBAPP, "-D"), wrap_daemon=True,
        pid_file="/tmp/a dir/$d.pid", initialize="true", directory="/", umask="0022", nice=5,
        user="nobody", pid_file_timeout=3, kill_after=None),
}


@pytest.fixture
def cleanup() -> Iterator[list[int]]:
    """PIDs to kill (SIGKILL) after the test, whatever happened."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _write(tmp_path: Path, opts: ProxyOptions) -> Path:
    script = tmp_path / f"{opts.name}-proxy"
    script.write_text(generate(opts))
    script.chmod(0o755)
    return script


# --------------------------------------------------------------------------- static

@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_shellcheck_clean(tmp_path: Path, variant: str) -> None:
    """Every proxy variant is POSIX sh that shellcheck accepts without findings."""
    script = _write(tmp_path, VARIANTS[variant])
    _lanes.assert_lints_clean(script.read_text(), _lanes.SHELLCHECK)


@pytest.mark.requires_tool("dash")
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_dash_parses(tmp_path: Path, variant: str) -> None:
    """dash (a strict POSIX shell, Debian's /bin/sh) parses every variant."""
    script = _write(tmp_path, VARIANTS[variant])
    subprocess.run(["dash", "-n", str(script)], check=True)


def test_invalid_options_rejected() -> None:
    """A daemon without a pid file or a NUL in an argument cannot become a proxy."""
    assert check_options(ProxyOptions(name="x", command=("a",), wrap_daemon=True))
    assert check_options(ProxyOptions(name="x", command=("a\0b",)))
    with pytest.raises(ValueError, match="pid file"):
        generate(ProxyOptions(name="x", command=("a",), wrap_daemon=True))


def test_nice_before_privilege_drop() -> None:
    """nice runs first (a negative level needs root), setpriv then drops to the user."""
    text = generate(VARIANTS["foreground-everything"])
    assert "exec nice -n -3 setpriv --reuid=nobody" in text
    assert text.index("mkdir -p /tmp/x") < text.index("cd '/tmp/some dir'")


# --------------------------------------------------------------------------- real runs

@pytest.mark.e2e
def test_wraps_daemon_and_stops_it(tmp_path: Path, cleanup: list[int]) -> None:
    """The proxy starts the self-daemonizing webapp, stays in the foreground while it
    serves, and on SIGTERM stops it and exits 0 without leaving anything behind."""
    port = free_port_block(1)
    pid_file = tmp_path / "webapp.pid"
    script = _write(tmp_path, ProxyOptions(
        name="webapp", command=(sys.executable, WEBAPP, "-D"), wrap_daemon=True,
        pid_file=str(pid_file)))
    env = {**os.environ, "PORT": str(port), "PID_FILE": str(pid_file)}
    proxy = subprocess.Popen([str(script)], env=env, start_new_session=True,
                             stderr=subprocess.PIPE, text=True)
    cleanup.append(proxy.pid)
    try:
        assert f"listening on port: {port}" in get_body(port)
        daemon = int(pid_file.read_text())
        cleanup.append(daemon)
        assert daemon != proxy.pid and pid_alive(daemon)
        assert proxy.poll() is None, "the proxy stays in the foreground"
        started = time.monotonic()
        proxy.send_signal(signal.SIGTERM)
        _, err = proxy.communicate(timeout=10)
        assert proxy.returncode == 0, err
        assert time.monotonic() - started < 3, "the stop is handled promptly"
        deadline = time.monotonic() + 5
        while pid_alive(daemon) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(daemon), "the daemon was stopped"
        assert session_members(proxy.pid) == [], "no stray child (sleep) left behind"
    finally:
        if proxy.poll() is None:
            proxy.kill()
            proxy.wait()


@pytest.mark.e2e
def test_daemon_exiting_ends_proxy(tmp_path: Path, cleanup: list[int]) -> None:
    """When the daemon dies on its own, the proxy notices and exits non-zero, so
    the supervisor sees an unexpected exit (and can restart it)."""
    port = free_port_block(1)
    pid_file = tmp_path / "webapp.pid"
    script = _write(tmp_path, ProxyOptions(
        name="webapp", command=(sys.executable, WEBAPP, "-D"), wrap_daemon=True,
        pid_file=str(pid_file)))
    env = {**os.environ, "PORT": str(port), "PID_FILE": str(pid_file)}
    proxy = subprocess.Popen([str(script)], env=env, start_new_session=True,
                             stderr=subprocess.PIPE, text=True)
    cleanup.append(proxy.pid)
    try:
        get_body(port)
        daemon = int(pid_file.read_text())
        cleanup.append(daemon)
        os.kill(daemon, signal.SIGKILL)
        _, err = proxy.communicate(timeout=10)
        assert proxy.returncode == 1
        assert f"daemon {daemon} exited" in err
        assert session_members(proxy.pid) == []
    finally:
        if proxy.poll() is None:
            proxy.kill()
            proxy.wait()


@pytest.mark.e2e
def test_gives_up_without_pid_file(tmp_path: Path, cleanup: list[int]) -> None:
    """A daemon that never writes its pid file fails the proxy with a clear error
    after the timeout, instead of hanging."""
    script = _write(tmp_path, ProxyOptions(
        name="nopid", command=("/bin/true",), wrap_daemon=True,
        pid_file=str(tmp_path / "never.pid"), pid_file_timeout=1))
    started = time.monotonic()
    proxy = subprocess.Popen([str(script)], start_new_session=True, stderr=subprocess.PIPE,
                             text=True)
    cleanup.append(proxy.pid)
    _, err = proxy.communicate(timeout=10)
    assert proxy.returncode != 0
    assert "nopid: giving up: no pid in" in err
    assert time.monotonic() - started < 5
    assert session_members(proxy.pid) == []


def test_failing_start_command(tmp_path: Path) -> None:
    """A daemon start command that fails makes the proxy fail with its status."""
    script = _write(tmp_path, ProxyOptions(
        name="bad", command=("/bin/sh", "-c", "exit 7"), wrap_daemon=True,
        pid_file=str(tmp_path / "bad.pid")))
    result = subprocess.run([str(script)], capture_output=True, text=True, timeout=10,
                            check=False)
    assert result.returncode == 7
    assert "start command failed with exit status 7" in result.stderr


def test_failing_initialize(tmp_path: Path) -> None:
    """A failing initialize snippet fails the start and names the status."""
    script = _write(tmp_path, ProxyOptions(name="init", command=("/bin/true",),
                                           initialize="echo preparing\nfalse"))
    result = subprocess.run([str(script)], capture_output=True, text=True, timeout=10,
                            check=False)
    assert result.returncode == 1
    assert "init: initialize failed with exit status 1" in result.stderr


def test_foreground_exec(tmp_path: Path) -> None:
    """In foreground mode the proxy runs initialize, then cd/umask, then execs the
    program (same pid: the supervisor signals the program itself), with the
    argv and environment intact."""
    out = tmp_path / "out"
    workdir = tmp_path / "work dir"
    code = ("import os,sys,json; u=os.umask(0); print(json.dumps([os.getpid(), os.getcwd(), "
            "u, sys.argv[1:], os.environ['WEIRD']]))")
    script = _write(tmp_path, ProxyOptions(
        name="fg", command=(sys.executable, "-c", code, "a b", "$HOME", "`x`", "it's", ""),
        initialize=f"mkdir -p '{workdir}'", directory=str(workdir), umask="0027",
        environment={"WEIRD": "a 'b' \"c\" $d `e` \\f"}))
    proc = subprocess.Popen([str(script)], stdout=subprocess.PIPE, text=True)
    stdout, _ = proc.communicate(timeout=10)
    out.write_text(stdout)
    import json

    pid, cwd, umask, argv, weird = json.loads(stdout)
    assert pid == proc.pid
    assert cwd == str(workdir)
    assert umask == 0o027
    assert argv == ["a b", "$HOME", "`x`", "it's", ""]
    assert weird == "a 'b' \"c\" $d `e` \\f"
