"""Pre-flight: a switch that can know it will fail fails before anything is stopped.

Generation 1 (``examples/webapps/processes.py``) runs for real with sysvinit
or supervisord. Each failing switch must exit 1 listing every problem at
once, and leave generation 1 exactly as it was: the same PIDs, no
``stopping`` line, no journal, generation 1 current. Without the pre-flight
these switches stopped ``webapp`` first and found the problem at a start.

Readiness that asks *who* listens: a port taken, after the pre-flight, by a
program that is not the process being started no longer makes that process
look ready (``models/preflight.py``, ``squatter``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.util import free_port_block, start_lines, stop_lines, wait_http
from tests.faults import (
    MODELS,
    SIMPLE,
    SIMPLE_PORTS,
    Cli,
    assert_generations_consistent,
    assert_serves,
    cleanup,
    marked_names,
    running_pids,
    wait_marked_names,
)

BACKENDS = ["sysvinit", "supervisord"]
MODEL = MODELS / "preflight.py"

pytestmark = pytest.mark.e2e


def _cli(backend: str, tmp_path: Path, **params: object) -> tuple[Cli, Path, int]:
    base = free_port_block(4)
    state = tmp_path / "state"
    return Cli(state, backend, {"port_base": base, **params}, cwd=tmp_path), state, base


def _foreign_server(port: int) -> subprocess.Popen[bytes]:
    """A program outside the deployment holding ``port`` (stopped by the test, by PID)."""
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                             "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd="/")
    wait_http(port)
    return proc


def _assert_untouched(run: Cli, state: Path, base: int, before: dict[str, int | None],
                      proc: subprocess.CompletedProcess[str]) -> None:
    """Nothing was stopped or started, and generation 1 is exactly as it was."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert stop_lines(proc.stdout) == [] and start_lines(proc.stdout) == [], proc.stdout
    assert running_pids(run) == before, "a process of the running generation was restarted"
    assert_serves(base, SIMPLE_PORTS)
    assert_generations_consistent(run, current=1)
    assert not (state / "lib" / "procmgmt" / "profiles" / "processes.journal").exists()
    assert marked_names(state) == set(SIMPLE_PORTS)


@pytest.fixture
def foreign() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port_block(1, start=27000)
    server = _foreign_server(port)
    try:
        yield port, server
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_problem_at_once_and_nothing_stopped(
        backend: str, tmp_path: Path, foreign: tuple[int, subprocess.Popen[bytes]]) -> None:
    """A misspelled executable, a port another program holds (named with its PID and
    command) and a port a kept process holds: one pre-flight error lists all three,
    and the running generation keeps its PIDs."""
    port, server = foreign
    run, state, base = _cli(backend, tmp_path, foreign_port=port,
                            problems=["executable", "port", "kept_port"])
    try:
        run("switch", SIMPLE)
        assert_serves(base, SIMPLE_PORTS)
        before = running_pids(run)
        proc = run("switch", "--replace", MODEL, check=False, fresh=True)
        err = proc.stderr
        assert "pre-flight found 3 problems; nothing was stopped or changed" in err, err
        assert "misspelled: executable /bin/sleeep does not exist" in err, err
        assert (f"listener: port {port} is already in use by pid {server.pid} "
                f"({sys.executable} -m http.server {port}") in err, err
        assert (f"listener2: port {base + 1} is already in use by pid {before['webapp1']}"
                in err), err
        assert "webapp1 of the current generation, which keeps running" in err, err
        _assert_untouched(run, state, base, before, proc)
    finally:
        cleanup(run, state)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_taken_port_fails_the_first_deploy(backend: str, tmp_path: Path) -> None:
    """The reported case: a python http.server already holds webapp's port. supervisord
    used to report webapp ready (the connection reached the server) and exit 0 while
    webapp crash-looped in BACKOFF; now the pre-flight names the holder, nothing starts."""
    run, state, base = _cli(backend, tmp_path)
    server = _foreign_server(base)
    try:
        proc = run("switch", SIMPLE, check=False, fresh=True)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert (f"webapp: port {base} is already in use by pid {server.pid} "
                f"({sys.executable} -m http.server {base}") in proc.stderr, proc.stderr
        assert start_lines(proc.stdout) == [] and marked_names(state) == set()
        assert "nothing deployed" in run("status", check=False).stdout
    finally:
        server.terminate()
        server.wait(10)
        cleanup(run, state)


def _unavailable(backend: str) -> str | None:
    """Why ``backend`` cannot activate on this machine, None when it could."""
    if backend == "bsdrc":
        return None if not os.path.exists("/etc/rc.subr") else "this machine has rc.subr"
    if backend == "launchd":
        return None if shutil.which("launchctl") is None else "this machine has launchctl"
    if backend == "cygrunsrv":
        return None if shutil.which("cygrunsrv") is None else "this machine has cygrunsrv"
    if shutil.which("systemctl") is None:
        return None
    reach = subprocess.run(["systemctl", "show", "--property=Version"], capture_output=True,
                           check=False)
    return None if reach.returncode != 0 else "systemd runs here"


@pytest.mark.parametrize(("backend", "says"), [
    ("bsdrc", "rc.subr not found (/etc/rc.subr)"),
    ("launchd", "launchctl not found ('launchctl' on PATH)"),
    ("cygrunsrv", "cygrunsrv not found ('cygrunsrv' on PATH)"),
    ("systemd", "systemd: "),
])
def test_a_backend_this_machine_lacks_stops_nothing(backend: str, says: str,
                                                    tmp_path: Path) -> None:
    """Switching a supervisord deployment to a process manager this machine does not
    have fails at the pre-flight: supervisord's processes keep running, same PIDs."""
    why = _unavailable(backend)
    if why:
        pytest.skip(why)
    run, state, base = _cli("supervisord", tmp_path)
    other = Cli(state, backend, {"port_base": base}, cwd=tmp_path)
    try:
        run("switch", SIMPLE)
        before = running_pids(run)
        proc = other("switch", SIMPLE, check=False, fresh=True)
        assert "pre-flight found" in proc.stderr and says in proc.stderr, proc.stderr
        _assert_untouched(run, state, base, before, proc)
    finally:
        cleanup(run, state)


@pytest.mark.parametrize("backend", BACKENDS)
def test_readiness_is_not_fooled_by_another_listener(backend: str, tmp_path: Path) -> None:
    """``claimant`` never listens; ``squatter`` (another process, started after the
    pre-flight) holds the port claimant's TCP check probes. The connection succeeds,
    but the listener is not claimant's: the switch fails naming squatter's PID and
    command, and generation 1 is restored."""
    squat = free_port_block(1, start=27000)
    run, state, base = _cli(backend, tmp_path, squat_port=squat, problems=["squatter"])
    try:
        run("switch", SIMPLE)
        before = running_pids(run)
        proc = run("switch", "--replace", MODEL, check=False, fresh=True)
        err = proc.stderr
        assert proc.returncode == 1, proc.stdout + err
        assert "claimant did not become ready within" in err, err
        assert f"port {squat} is held by pid " in err and "-m http.server" in err, err
        assert "not by claimant (pid " in err, err
        assert "the previous generation was restored" in err, err
        assert_serves(base, SIMPLE_PORTS)
        assert_generations_consistent(run, current=1)
        assert wait_marked_names(state, set(SIMPLE_PORTS)) == set(SIMPLE_PORTS)
        assert running_pids(run)["webapp1"] == before["webapp1"]
    finally:
        cleanup(run, state)


@pytest.mark.root
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_state_dir_the_service_users_cannot_reach(backend: str) -> None:
    """As root with user changes, a state dir under a 0700 parent: the webapp users could
    not reach their pid files. The pre-flight says so for each, and no account is
    created and nothing started (before, the accounts were created and the start failed)."""
    from tests.e2e.test_root import account_names, root_env

    with root_env(backend) as env:
        private = env.root / "private"
        private.mkdir(mode=0o700)
        env.state = private / "state"
        env.state.mkdir(mode=0o755)
        users, groups = account_names()
        proc = env.run("switch", env.examples / "processes.py", check=False)
        err = proc.stderr
        assert proc.returncode == 1, proc.stdout + err
        assert "pre-flight found" in err, err
        for name in ("webapp", "webapp1"):
            assert (f"{name}: user {name} cannot reach its pid file's directory "
                    f"{env.state / 'run' / 'procmgmt-pid' / name}: no search permission on "
                    f"{private} (drwx------ "
                    "root:root)") in err, err
        assert account_names() == (users, groups), "the failed switch created accounts"
        assert start_lines(proc.stdout) == [], proc.stdout
        assert "nothing deployed" in env.run("status", check=False).stdout


def test_systemd_user_manager_without_a_bus_fails_at_the_preflight(tmp_path: Path) -> None:
    """``-P systemd`` in user mode from a login without a session bus: the pre-flight
    names the user manager it cannot reach and how to get one; nothing is created."""
    from tests import _lanes

    _lanes.require_tool("systemctl")
    base = free_port_block(4)
    state = tmp_path / "state"
    run = Cli(state, "systemd", {"port_base": base}, cwd=tmp_path)
    nowhere = tmp_path / "no-runtime-dir"
    nowhere.mkdir()
    proc = run("switch", SIMPLE, check=False, fresh=True,
               env={"PROCMGMT_SYSTEMD_USER": "1", "XDG_RUNTIME_DIR": str(nowhere),
                    "DBUS_SESSION_BUS_ADDRESS": f"unix:path={nowhere}/bus"})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "pre-flight found" in proc.stderr, out
    assert "cannot reach your user manager with systemctl" in proc.stderr, out
    assert "loginctl enable-linger" in proc.stderr, out
    assert "Traceback" not in out, out
    assert not list(state.rglob("*.journal")), "a journal was written"
    assert "starting" not in proc.stdout, out
