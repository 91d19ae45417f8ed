"""The s6 backend: service directories as rendered, and deployments run for real.

The rendering tests read the generated files; the end-to-end tests (marked
e2e) deploy the webapps example with Debian's s6 through the CLI, as root
with user changes and unprivileged, and check that nothing is left running
afterwards (every process is found by the test's private state dir and
killed by PID if it was)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from procmgmt.backends import get_backend
from procmgmt.backends.base import Ordering, Support
from procmgmt.backends.s6.activator import svstat_status
from procmgmt.deploy.build import RenderResult, evaluate, render
from procmgmt.manifest import DeployedProcess
from procmgmt.settings import Settings
from tests import _lanes
from tests.conftest import EXAMPLES, golden_settings
from tests.e2e.util import (
    Runner,
    free_port_block,
    http_get,
    kill_leftovers,
    port_closed,
    wait_no_leftovers,
)

ADVANCED = EXAMPLES / "webapps" / "processes-advanced.py"
SIMPLE = EXAMPLES / "webapps" / "processes.py"


def rendered(model: Path, privileged: bool = False,
             extra: dict[str, object] | None = None) -> tuple[RenderResult, Settings]:
    settings = dataclasses.replace(golden_settings(privileged, "s6"), extra_params=extra or {})
    m, specs = evaluate(str(model), settings)
    return render(m, specs, settings, get_backend("s6")), settings


def files(result: RenderResult, name: str) -> dict[str, str]:
    (proc,) = [r for r in result.processes if r.spec.name == name]
    return {f.path.removeprefix(f"s6/{name}/"): f.content or "" for f in proc.files}


def test_capabilities_say_what_the_files_do() -> None:
    caps = get_backend("s6").capabilities
    assert caps.ordering is Ordering.WAITS
    assert caps.readiness is Support.NATIVE
    assert caps.unprivileged


def test_service_directory_waits_for_ready_dependencies() -> None:
    """webapp4 waits for webapp2 and webapp3 to be ready (both notify), starts under
    s6-notifyoncheck, is down until procmgmt starts it, and logs through s6-log."""
    result, settings = rendered(ADVANCED)
    f = files(result, "webapp4")
    assert "if ! s6-svwait -U -t 60000 ../webapp2; then" in f["run"]
    assert "if ! s6-svwait -U -t 60000 ../webapp3; then" in f["run"]
    assert f["run"].rstrip().endswith("./data/start")
    assert "s6-notifyoncheck -d -3 3" in f["run"]
    assert f["notification-fd"] == "3\n"
    assert "procmgmt_ready_tcp 127.0.0.1" in f["data/check"]
    assert f["down"] == ""
    assert f["log/run"].endswith(f"{settings.log_dir}/webapp4\n")
    assert "exec " in f["data/start"]
    assert "s6-svwait" not in files(result, "webapp1")["run"]


def test_log_rotation_options_become_s6_log_directives() -> None:
    """--log-max-bytes/--log-backups are s6-log's ``s``/``n`` (they were once ignored);
    a size below s6-log's 4096-byte floor is raised to it with a warning; without
    them the defaults stay."""
    def log_run(**rotation: int) -> tuple[str, list[str]]:
        settings = dataclasses.replace(golden_settings(False, "s6"), **rotation)
        m, specs = evaluate(str(ADVANCED), settings)
        result = render(m, specs, settings, get_backend("s6"))
        return files(result, "webapp1")["log/run"], result.warnings

    run, warnings = log_run(log_max_bytes=50000, log_backups=2)
    assert "exec s6-log -b -- n2 s50000 " in run and not warnings
    run, warnings = log_run(log_max_bytes=600, log_backups=3)
    assert "exec s6-log -b -- n3 s4096 " in run
    assert any("--log-max-bytes 600 becomes 4096" in w for w in warnings), warnings
    run, _ = log_run()
    assert "exec s6-log -b -- n10 s1000000 " in run


def test_status_says_a_crash_looping_process_is_restarting() -> None:
    """Down but wanted up (s6-supervise restarts it at once): the status says so and
    names the last exit code or signal; a process that is up or taken down stays
    plain (s6-svstat -o up,ready,pid,wantedup,exitcode,signal as s6 prints it)."""
    proc = DeployedProcess(name="crasher", hash="h", path="", rank=0)
    looping = svstat_status(proc, "false false -1 true 1 NA\n")
    assert not looping.running and looping.pid is None
    assert looping.detail == "restarting: it exits right after starting (exit code 1)"
    killed = svstat_status(proc, "false false -1 true -1 SIGSEGV\n")
    assert killed.detail.endswith("(signal SIGSEGV)")
    assert svstat_status(proc, "false false -1 false 0 NA\n").detail == "down"
    up = svstat_status(proc, "true false 42 true -1 NA\n")
    assert (up.running, up.pid, up.detail) == (True, 42, "up")


def test_daemon_only_process_is_wrapped() -> None:
    """A daemon-only process runs under the proxy, which waits for its pid file;
    s6 sends SIGTERM, which the proxy forwards."""
    result, _ = rendered(SIMPLE, extra={"webapp_mode": "daemon"})
    f = files(result, "webapp")
    assert "procmgmt_pid_file=" in f["data/start"]
    assert f["down-signal"] == "SIGTERM\n"


def test_shellcheck_clean() -> None:
    """Every generated script (run, data/start, data/check, log/run) passes shellcheck."""
    result, _ = rendered(ADVANCED, privileged=True)
    for proc in result.processes:
        for f in proc.files:
            if f.mode & 0o111 and f.content:
                _lanes.assert_lints_clean(f.content, _lanes.SHELLCHECK)


# --------------------------------------------------------------------------- end to end

def _require_s6() -> None:
    if not all(shutil.which(t) for t in ("s6-svscan", "s6-svc", "s6-notifyoncheck")):
        pytest.skip("s6 is not installed")


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    """A private state dir; whatever still mentions it afterwards is killed (by PID)
    and fails the test."""
    _require_s6()
    state = tmp_path / "s"
    yield state
    left = wait_no_leftovers(str(state), timeout=5)
    kill_leftovers(str(state))
    assert not left, f"processes left behind: {left}"


def _status(run: Callable[..., subprocess.CompletedProcess[str]]) -> dict[str, dict[str, object]]:
    out = run("status", "--json").stdout
    return {str(p["name"]): p for p in json.loads(out)["processes"]}


@pytest.mark.e2e
def test_webapps_lifecycle_unprivileged(state: Path) -> None:
    """Deploy, stop/start one, upgrade, roll back, undeploy without user changes."""
    base = free_port_block(7)
    run = Runner(state, "s6", json.dumps({"port_base": base}))
    lifecycle(run, state, base, ADVANCED, SIMPLE)


@pytest.mark.e2e
@pytest.mark.root("creates the example's accounts")
def test_webapps_lifecycle_as_root_with_users() -> None:
    """The same as root with user changes: every webapp runs as its own user (all
    four uids and gids), from a world-readable copy of procmgmt (tests.e2e.test_root)."""
    _require_s6()
    from tests.e2e.test_root import assert_runs_as_own_user, root_env

    with root_env("s6") as env:
        def run(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
            return env.run(*args, check=check)

        def check_users() -> None:
            assert_runs_as_own_user(env, [f"webapp{i}" for i in range(1, 7)])

        lifecycle(run, env.state, env.base, env.examples / "processes-advanced.py",
                  env.examples / "processes.py", check_users)


def lifecycle(run: Callable[..., subprocess.CompletedProcess[str]], state: Path, base: int,
              advanced: Path, simple: Path, check_users: Callable[[], None] | None = None,
              ) -> None:
    """Deploy the advanced webapps (in dependency order, readiness through
    s6-notifyoncheck), stop and start one, upgrade to the simple model, roll back,
    undeploy: nothing is left, not even s6-svscan."""
    out = run("switch", advanced).stdout
    lines = [ln.split()[1] for ln in out.splitlines() if ln.startswith("ready ")]
    for dep, name in (("webapp1", "webapp2"), ("webapp1", "webapp3"), ("webapp2", "webapp4"),
                      ("webapp3", "webapp4"), ("webapp5", "webapp6")):
        assert lines.index(dep) < lines.index(name), out
    for i in range(1, 7):
        assert f"listening on port: {base + i}" in (http_get(base + i) or "")
    status = _status(run)
    assert all(p["running"] for p in status.values()), status
    if check_users is not None:
        check_users()
    scan = next(state.glob("lib/procmgmt/s6/*/scan"))
    svstat = subprocess.run(["s6-svstat", "-o", "up,ready", str(scan / "webapp4")],
                            capture_output=True, text=True, check=True).stdout.split()
    assert svstat == ["true", "true"], "notified readiness through notification-fd"
    assert not os.stat(scan).st_mode & 0o022
    assert not os.stat(scan / "webapp4" / "supervise").st_mode & 0o077
    # Real directories (s6-supervise and run write into them); the files are links
    # into the store.
    svc = scan / "webapp4"
    for real in (svc, svc / "log", svc / "data"):
        assert real.is_dir() and not real.is_symlink()
    store_files = [os.path.realpath(svc / f) for f in ("run", "data/start", "log/run")]
    for f in ("run", "data/start", "log/run", "notification-fd"):
        assert (svc / f).is_symlink() and "/store/" in os.readlink(svc / f), f

    pid6 = status["webapp6"]["pid"]
    run("stop", "webapp6")
    assert port_closed(base + 6)
    assert not (scan / "webapp6").exists()
    run("start", "webapp6")
    assert f"listening on port: {base + 6}" in (http_get(base + 6) or "")
    assert _status(run)["webapp6"]["pid"] != pid6

    run("switch", "--replace", simple)
    assert f"listening on port: {base}" in (http_get(base) or "")
    assert port_closed(base + 4)
    run("switch", "--rollback")
    assert f"listening on port: {base + 4}" in (http_get(base + 4) or "")
    assert port_closed(base)

    run("switch", "--undeploy")
    assert wait_no_leftovers(str(state)) == []
    assert sorted(p.name for p in scan.iterdir()) == [".s6-svscan"]
    # Removing a service directory removed its links, never what they point to.
    assert all(os.path.isfile(f) for f in store_files)


@pytest.mark.e2e
def test_planted_symlink_at_a_log_dir_is_refused(state: Path, tmp_path: Path) -> None:
    """A symlink where s6-log's directory goes (``LOG/<name>``, planted by another
    user) was followed by s6-log, running as the deployer, into the link's target.
    Now the switch refuses it naming the path, rolls back and writes nothing there."""
    victim = tmp_path / "victim"
    victim.mkdir()
    run = Runner(state, "s6", "{}")
    (state / "log").mkdir(parents=True)
    (state / "log" / "solo").symlink_to(victim)
    proc = run("switch", Path(__file__).parents[1] / "e2e" / "models" / "chatty.py",
               check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{state / 'log' / 'solo'} is a symbolic link" in proc.stderr
    assert "the previous generation was restored" in proc.stderr
    assert list(victim.iterdir()) == []
    assert json.loads(run("status", "--json", check=False).stdout)["processes"] == []


@pytest.mark.e2e
def test_log_line_and_pid_file_readiness_through_notifyoncheck(state: Path) -> None:
    """LogLine and PidFile checks run as data/check under s6-notifyoncheck: s6 records
    both ready (s6-svstat), ``pidder`` starts only after ``logger`` wrote its line."""
    run = Runner(state, "s6", "{}")
    out = run("switch", Path(__file__).parent / "models" / "s6_checks.py").stdout
    ready = [ln.split()[1] for ln in out.splitlines() if ln.startswith("ready ")]
    assert ready.index("logger") < ready.index("pidder"), out
    scan = next(state.glob("lib/procmgmt/s6/*/scan"))
    for name in ("logger", "pidder"):
        svstat = subprocess.run(["s6-svstat", "-o", "up,ready", str(scan / name)],
                                capture_output=True, text=True, check=True).stdout.split()
        assert svstat == ["true", "true"], name
    assert "accepting connections" in (state / "logger-own.log").read_text()
    status = _status(run)
    pid_file = next(state.glob("run/**/pidder.pid"), None)
    assert pid_file is not None and int(pid_file.read_text()) == status["pidder"]["pid"]
    # run writes its log offset into the service's own data/, never into the store
    # entry its files link to (the store is immutable; not writable without root).
    offset = scan / "logger" / "data" / "ready-log-offset"
    assert offset.is_file() and not offset.is_symlink()
    assert not (scan / "logger" / "data").is_symlink()
    assert not list(state.glob("lib/procmgmt/store/*/s6/*/data/ready-log-offset"))
    run("switch", "--undeploy")
    assert wait_no_leftovers(str(state)) == []


@pytest.mark.e2e
def test_daemon_only_webapp_under_the_proxy(state: Path) -> None:
    """The webapp in daemon mode (it forks and writes a pid file): the shared proxy
    (data/start, the pid s6-supervise and so status report) stays up while the
    daemon named by the pid file lives; stop ends both, undeploy leaves nothing."""
    base = free_port_block(2)
    run = Runner(state, "s6", json.dumps({"port_base": base, "webapp_mode": "daemon"}))
    run("switch", SIMPLE)
    assert f"listening on port: {base}" in (http_get(base) or "")
    proxy = _status(run)["webapp"]["pid"]
    assert isinstance(proxy, int)
    assert "./data/start" in Path(f"/proc/{proxy}/cmdline").read_text()
    pid_file = next(state.glob("run/**/webapp.pid"))
    pid = int(pid_file.read_text())
    assert pid != proxy and os.path.exists(f"/proc/{pid}")
    run("stop", "webapp")
    assert port_closed(base)
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}"):  # init reaps the daemon (its parent)
        assert time.monotonic() < deadline, "stop left the daemon running"
        time.sleep(0.1)
    run("start", "webapp")
    assert f"listening on port: {base}" in (http_get(base) or "")
    run("switch", "--undeploy")
    assert wait_no_leftovers(str(state)) == []


@pytest.mark.e2e
def test_svscan_killed_then_switch_status_and_undeploy(state: Path) -> None:
    """s6-svscan killed with SIGKILL behind procmgmt's back: the orphaned
    s6-supervise processes keep the processes up (status says so), the next switch
    starts a new s6-svscan, and undeploy still stops everything."""
    run = Runner(state, "s6", "{}")
    model = Path(__file__).parents[1] / "e2e" / "models" / "chatty.py"
    run("switch", model)
    pid_file = next(state.glob("run/s6-svscan-*.pid"))
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    time.sleep(0.3)
    shown = run("status", "--json", check=False)
    report = json.loads(shown.stdout)
    assert all(p["running"] for p in report["processes"])
    # ... but status warns that the scanner is gone, and exits 3 for monitoring.
    assert shown.returncode == 3
    assert [m for m in report["manager_problems"] if "s6-svscan" in m and "not running" in m]
    assert "warning: s6-svscan of" in run("status", check=False).stdout
    run("switch", model)
    new = int(pid_file.read_text())
    assert "s6-svscan" in Path(f"/proc/{new}/cmdline").read_text()
    shown = run("status", "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["manager_problems"] == []
    assert all(p["running"] for p in _status(run).values())
    run("switch", "--undeploy")
    assert wait_no_leftovers(str(state)) == []


def test_an_install_that_fails_half_way_leaves_nothing(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A service directory that cannot be made (the disk fills after two links) is not
    installed and leaves nothing half-made in ``.build``; the error reaches the caller."""
    from procmgmt.backends.s6 import activator as s6act
    from procmgmt.manifest import DeployedProcess
    from tests.backends._helpers import tmp_settings

    store = tmp_path / "store" / "h-web"
    for f in ("run", "data/start", "log/run"):
        (store / "s6" / "web" / f).parent.mkdir(parents=True, exist_ok=True)
        (store / "s6" / "web" / f).write_text("#!/bin/sh\n")
    act = s6act.S6Activator(tmp_settings(tmp_path, manager="s6"))
    os.makedirs(act.scan_dir)
    os.makedirs(act.build_dir)
    links = [0]
    real_symlink = os.symlink

    def symlink(src: str, dst: str) -> None:
        links[0] += 1
        if links[0] > 2:
            raise OSError(28, "No space left on device")
        real_symlink(src, dst)

    monkeypatch.setattr(s6act.os, "symlink", symlink)
    proc = DeployedProcess("web", "h", str(store), 0, extra={})
    with pytest.raises(OSError, match="No space left"):
        act._install(proc, rescan=False)
    assert os.listdir(act.build_dir) == []
    assert not os.path.exists(act.service(proc))
