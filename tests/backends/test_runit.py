"""The runit backend: the service directories it renders, and real deployments into
procmgmt's own runsvdir.

The lifecycle scenario (deploy, upgrade, rollback, undeploy, unprivileged and as
a throw-away user) runs in ``tests/e2e/test_lifecycle.py``, the root scenario with
a user per process in ``tests/e2e/test_root.py``; here what is runit's own: the
``check`` probe, the stop through ``control/d``, ``procmgmt stop NAME``, the
order that the run scripts keep when runsvdir starts everything by itself, and
what an undeploy leaves behind. Every test undeploys in a ``finally`` and then
kills, by PID, any process still mentioning its private state dir.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from procmgmt.backends import get_backend
from procmgmt.backends.base import Coverage, Ordering, Privilege, Support
from procmgmt.backends.runit import runsvdir
from procmgmt.deploy.build import evaluate, render
from tests import _lanes
from tests.conftest import EXAMPLES, golden_settings
from tests.e2e.util import (
    Runner,
    free_port_block,
    kill_leftovers,
    port_closed,
    start_lines,
    wait_http,
    wait_no_leftovers,
)
from tests.golden.test_golden import CASES, rendered_tree

ADVANCED = EXAMPLES / "webapps" / "processes-advanced.py"

STOP_MODEL = """\
from procmgmt import Instance, Process

def processes(settings):
    return {
        "fg": Instance(Process(name="fg", foreground_process="/bin/sleep",
                               foreground_process_args=["100"], stop_signal="SIGINT")),
        "dm": Instance(Process(name="dm", daemon="/usr/sbin/food", daemon_args=["-d"],
                               pid_file="/srv/pm/run/dm.pid", foreground_process=None,
                               stop_signal="quit")),
    }
"""


def _files(model: Path, privileged: bool = False) -> dict[str, str]:
    """name/path -> content of what the runit backend renders for ``model``."""
    settings = golden_settings(privileged, "runit")
    parsed, specs = evaluate(str(model), settings)
    result = render(parsed, specs, settings, get_backend("runit"))
    return {f"{r.spec.name}/{f.path}": f.content or "" for r in result.processes
            for f in r.files}


# --------------------------------------------------------------------------- rendering

def test_capabilities_say_what_runs() -> None:
    caps = get_backend("runit").capabilities
    assert caps.tested is Coverage.RUN and caps.ordering is Ordering.WAITS
    assert caps.dependencies is Support.EMULATED
    assert caps.privileges == {Privilege.ROOT, Privilege.UNPRIVILEGED}


def test_run_switches_user_only_when_privileged() -> None:
    root = _files(ADVANCED, privileged=True)
    user = _files(ADVANCED)
    assert root["webapp4/service/run"].endswith("exec chpst -P -u webapp4 -- ./proxy\n")
    assert user["webapp4/service/run"].endswith("exec chpst -P -- ./proxy\n")
    assert root["webapp4/service/log/run"].endswith("exec svlogd /srv/pm/log/webapp4\n")


GROUP_MODEL = """\
from procmgmt import Instance, Process

def processes(settings):
    def proc(name, **kw):
        return Instance(Process(name=name, foreground_process="/bin/sh",
                                foreground_process_args=["-c", "sleep 300 & wait"], **kw))
    plain = proc("plain")
    return {"plain": plain, "niced": proc("niced", nice=5),
            "init": proc("init", initialize="true"),
            "after": proc("after", dependencies=[plain.process])}
"""


def test_a_proxy_that_only_prepares_is_read_into_run(tmp_path: Path) -> None:
    """One sh less per start: ``run`` reads such a proxy in, and the proxy execs the
    program through the same ``chpst`` (process group, nice level) ``run`` would
    have used. A proxy that waits for dependencies, runs ``initialize`` or runs as
    the service's user (``chpst -u``) stays behind ``chpst``."""
    model = tmp_path / "processes.py"
    model.write_text(GROUP_MODEL)
    files = _files(model)
    for name, chpst in (("plain", "chpst -P --"), ("niced", "chpst -P -n 5 --")):
        assert files[f"{name}/service/run"].endswith("\n. ./proxy\n")
        assert files[f"{name}/service/proxy"].endswith(
            f"\nexec {chpst} /bin/sh -c 'sleep 300 & wait'\n")
    for name in ("init", "after"):
        assert files[f"{name}/service/run"].endswith("\nexec chpst -P -- ./proxy\n")
        assert "\nexec /bin/sh -c" in files[f"{name}/service/proxy"]
    root = _files(ADVANCED, privileged=True)
    assert root["webapp1/service/run"].endswith("exec chpst -P -u webapp1 -- ./proxy\n")
    assert _files(ADVANCED)["webapp1/service/run"].endswith("\n. ./proxy\n")


def test_dependencies_are_waited_for_in_the_proxy() -> None:
    files = _files(ADVANCED)
    proxy = files["webapp4/service/proxy"]
    for dep in ("webapp2", "webapp3"):
        pid_file = f"/srv/pm/run/procmgmt-pid/{dep}/{dep}.pid"
        assert f"procmgmt_wait_for_dependency '{dep}' '{pid_file}'" in proxy
    # A process without dependents writes its pid file all the same: a new
    # dependent must not change (and so restart) it.
    assert "procmgmt_proxy_pid_file='/srv/pm/run/procmgmt-pid/webapp4/webapp4.pid'" in proxy
    assert "procmgmt_wait_for_dependency" not in files["webapp1/service/proxy"]


def test_stop_signal_goes_to_the_process_group(tmp_path: Path) -> None:
    model = tmp_path / "processes.py"
    model.write_text(STOP_MODEL)
    files = _files(model)
    assert 'kill -s INT -- "-$procmgmt_pid"' in files["fg/service/control/d"]
    # runsv stops a wrapped daemon's proxy with TERM; the proxy sends QUIT.
    assert 'kill -s TERM -- "-$procmgmt_pid"' in files["dm/service/control/d"]
    assert "procmgmt_stop_signal=QUIT\n" in files["dm/service/proxy"]


@pytest.mark.parametrize("recorded", ["", "0", "1", "01", "12x", "-5", "4242\n", "4242"])
def test_control_d_signals_only_a_real_pid(tmp_path: Path, recorded: str) -> None:
    """``control/d`` reads runsv's ``supervise/pid`` (without a ``cat``) and signals its
    group; nothing for no pid, and never 0 (its own group) or 1 (-1 is everyone).
    Run with ``kill`` replaced by a recording function (sh looks up functions
    before regular built-ins), so a wrong target is only written down."""
    model = tmp_path / "processes.py"
    model.write_text(STOP_MODEL)
    (tmp_path / "control").mkdir()
    (tmp_path / "control" / "d").write_text(_files(model)["fg/service/control/d"])
    (tmp_path / "supervise").mkdir()
    (tmp_path / "supervise" / "pid").write_text(recorded)
    r = subprocess.run(["sh", "-c", 'kill() { echo "kill $*" >>kills; }; . ./control/d'],
                       cwd=tmp_path, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    kills = (tmp_path / "kills").read_text() if (tmp_path / "kills").exists() else ""
    if recorded.strip() == "4242":
        assert kills == "kill -s INT -- -4242\nkill -s CONT -- -4242\n"
    else:
        assert kills == ""


def test_down_and_finish_from_overrides(tmp_path: Path) -> None:
    """``down`` and ``finish`` are written only when an override asks for them; the
    manifest tells the activator to leave ``down`` in place after a start."""
    model = tmp_path / "processes.py"
    model.write_text(STOP_MODEL.replace(
        'stop_signal="SIGINT")', 'stop_signal="SIGINT", overrides={"runit": '
        '{"down": True, "finish": "#!/bin/sh\\nexit 0\\n"}})'))
    settings = golden_settings(False, "runit")
    parsed, specs = evaluate(str(model), settings)
    result = render(parsed, specs, settings, get_backend("runit"))
    by_name = {r.spec.name: r for r in result.processes}
    fg = {f.path: f for f in by_name["fg"].files}
    assert fg["service/down"].content == ""
    assert fg["service/finish"].content == "#!/bin/sh\nexit 0\n"
    assert fg["service/finish"].mode == 0o755
    assert by_name["fg"].extra["down"] is True
    dm = {f.path for f in by_name["dm"].files}
    assert "service/down" not in dm and "service/finish" not in dm
    assert by_name["dm"].extra["down"] is False


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_scripts_lint_clean(case: str) -> None:
    """Every script of a service directory passes shellcheck -s sh, sh -n and dash -n."""
    tree = rendered_tree("runit", case)
    scripts = [text for rel, text in tree.items() if "/service/" in rel]
    assert scripts
    _lanes.assert_lints_clean(scripts, _lanes.SHELLCHECK, _lanes.SH_N, _lanes.DASH_N)


def test_check_probes_once(tmp_path: Path) -> None:
    """``check`` (run by sv -w) exits 0 while the port listens and 1 with the reason
    when it does not, at once (one probe: runit repeats it)."""
    check = tmp_path / "check"
    check.write_text(_files(ADVANCED)["webapp1/service/check"].replace("5001", "{port}"))
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        check.write_text(check.read_text().replace("{port}", str(port)))
        assert subprocess.run(["sh", str(check)], capture_output=True,
                              check=False).returncode == 0
    started = time.monotonic()
    r = subprocess.run(["sh", str(check)], capture_output=True, text=True, check=False)
    assert r.returncode == 1 and r.stderr.strip()
    assert time.monotonic() - started < 5


# --------------------------------------------------------------------------- real runs

@pytest.fixture
def runit_state(tmp_path: Path) -> Iterator[tuple[Runner, Path, int]]:
    """A Runner for an unprivileged-style runit deployment in a private state dir."""
    _lanes.require_tool("runsvdir")
    base = free_port_block(7)
    state = tmp_path / "state"
    run = Runner(state, "runit", json.dumps({"port_base": base}), cwd=tmp_path)
    try:
        yield run, state, base
    finally:
        run("switch", "--undeploy", check=False)
        kill_leftovers(str(state))


def _scan(state: Path) -> Path:
    return state / "lib" / "procmgmt" / "runit" / "processes" / "scan"


def _entry(state: Path, name: str) -> Path:
    (entry,) = [p for p in _scan(state).iterdir() if p.name.startswith(f"{name}@")]
    return entry


def _pgid(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        return int(f.read().rsplit(")", 1)[-1].split()[2])


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
        return [int(c) for c in f.read().split()]


@pytest.mark.e2e
def test_the_program_leads_its_process_group_and_a_stop_reaches_it_all(
        runit_state: tuple[Runner, Path, int], tmp_path: Path) -> None:
    """Whether ``run`` reads the proxy in (plain, niced) or executes it (after, which
    waits for plain): the program runs under the pid its pid file names, leads a
    process group of its own (``chpst -P``) that its children share, and
    ``procmgmt stop`` ends the child too."""
    run, _state, _ = runit_state
    model = tmp_path / "processes.py"
    model.write_text(GROUP_MODEL.replace(', "init": proc("init", initialize="true")', ""))
    run("switch", model)
    pids = _status(run)
    for name in ("after", "plain", "niced"):  # a dependent stops before its dependency
        pid = pids[name]
        assert pid is not None
        assert _pgid(pid) == pid, name
        (child,) = _children(pid)
        assert _pgid(child) == pid, name
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            nice = int(f.read().rsplit(")", 1)[-1].split()[16])
        assert nice == (5 if name == "niced" else 0), name
        run("stop", name)
        for gone in (pid, child):
            deadline = time.monotonic() + 5
            while _alive(gone) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not _alive(gone), f"{name}: {gone} still runs after the stop"


def _status(run: Runner) -> dict[str, int | None]:
    out = run("status", "--json", check=False).stdout
    return {p["name"]: p["pid"] for p in json.loads(out)["processes"]}


@pytest.mark.e2e
def test_deploy_stop_one_and_undeploy(runit_state: tuple[Runner, Path, int]) -> None:
    """Dependency order, readiness through ./check, ``procmgmt stop NAME`` keeps it down
    (a ``down`` file), undeploy leaves no runsvdir, runsv or service behind."""
    run, state, base = runit_state
    out = run("switch", ADVANCED).stdout
    started = start_lines(out)
    assert started.index("webapp1") < started.index("webapp2") < started.index("webapp4")
    for i in range(1, 7):
        assert f"listening on port: {base + i}" in wait_http(base + i)
    scan = _scan(state)
    assert (scan.stat().st_mode & 0o022) == 0
    (pid,) = runsvdir.find_running(str(state / "run" / "runsvdir-processes.pid"), str(scan))
    entry = _entry(state, "webapp4")
    assert not (entry / "down").exists(), "a started service must come back after a restart"
    # sv check runs ./check: ready.
    assert subprocess.run(["sv", "check", str(entry)], capture_output=True,
                          check=False).returncode == 0

    run("stop", "webapp4")
    assert port_closed(base + 4)
    assert _status(run)["webapp4"] is None
    assert (entry / "down").exists()
    # svlogd's file, as `procmgmt logs` finds it: the requests wait_http made.
    assert '"GET / HTTP/1.1" 200' in (state / "log" / "webapp4" / "current").read_text()
    assert '"GET / HTTP/1.1" 200' in run("logs", "webapp4").stdout
    run("start", "webapp4")
    assert f"listening on port: {base + 4}" in wait_http(base + 4)

    run("switch", "--undeploy")
    for i in range(7):
        assert port_closed(base + i)
    assert wait_no_leftovers(str(state)) == []
    assert list(scan.iterdir()) == []
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}") and _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "runsvdir still runs after the undeploy"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.e2e
def test_order_holds_when_runsvdir_starts_everything(
        runit_state: tuple[Runner, Path, int]) -> None:
    """A runsvdir restarted on the scan dir (as at boot) starts every service itself;
    with webapp1 kept down, its dependents wait in their run scripts while the
    unrelated webapp5/webapp6 come up; once webapp1 runs, the rest follows."""
    run, state, base = runit_state
    run("switch", ADVANCED)
    scan = _scan(state)
    pid_file = state / "run" / "runsvdir-processes.pid"
    (old,) = runsvdir.find_running(str(pid_file), str(scan))
    # "Reboot": SIGHUP makes runsvdir stop every runsv (and so every service).
    os.kill(old, signal.SIGHUP)
    for i in range(1, 7):
        deadline = time.monotonic() + 20
        while not port_closed(base + i) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert port_closed(base + i)
    webapp1 = _entry(state, "webapp1")
    (webapp1 / "down").write_text("")
    new = runsvdir.start(str(scan), str(pid_file), str(state / "log" / "boot.log"))
    try:
        assert f"listening on port: {base + 6}" in wait_http(base + 6, timeout=20)
        for i in (1, 2, 3, 4):
            assert port_closed(base + i), f"webapp{i} started before webapp1"
        subprocess.run(["sv", "-w", "20", "start", str(webapp1)], check=True,
                       capture_output=True)
        for i in (1, 2, 3, 4):
            assert f"listening on port: {base + i}" in wait_http(base + i, timeout=30)
    finally:
        run("switch", "--undeploy", check=False)
        if _alive(new):
            os.kill(new, signal.SIGTERM)


CRASH_MODEL = """\
from procmgmt import Instance, Process

def processes(settings):
    return {"bad": Instance(Process(name="bad", foreground_process="/bin/sh",
                                    foreground_process_args=["-c", "echo boom; @RUN@exit 3"]))}
"""


@pytest.mark.e2e
@pytest.mark.parametrize(("run_for", "caught_by"), [
    # Usually the activator's own message ("runit service bad failed to start: it
    # exited right after starting"); on a busy machine its probe may see the short
    # run, and the start grace catches it then: both say this.
    ("", "exited right after starting"),
    ("sleep 0.1; ", "bad exited right after starting: the process is not running")])
def test_a_crashing_service_fails_the_switch_at_once(
        runit_state: tuple[Runner, Path, int], tmp_path: Path, run_for: str,
        caught_by: str) -> None:
    """runsv would restart it every second and ``sv -w`` wait its whole timeout: the
    activator sees it run and go down (a process that exits at once), or the start
    grace finds it down (one that ran 0.1 s: its start counted once it ran), and the
    switch fails with its log; the restored (empty) generation leaves no runsvdir
    and no service directory."""
    run, state, _ = runit_state
    model = tmp_path / "crash.py"
    model.write_text(CRASH_MODEL.replace("@RUN@", run_for))
    started = time.monotonic()
    r = run("switch", model, check=False)
    assert r.returncode == 1
    assert caught_by in r.stderr
    assert "boom" in r.stderr
    assert time.monotonic() - started < 20
    assert [p.name for p in _scan(state).iterdir()] == []
    assert runsvdir.find_running(str(state / "run" / "runsvdir-processes.pid"),
                                 str(_scan(state))) == []


def test_log_rotation_becomes_svlogd_config(tmp_path: Path) -> None:
    """--log-max-bytes/--log-backups are svlogd's ``s``/``n``; without them log/run
    empties ``config`` (svlogd's defaults), so no older setting stays in force."""
    settings = dataclasses.replace(golden_settings(False, "runit"), log_max_bytes=4096,
                                   log_backups=2)
    parsed, specs = evaluate(str(ADVANCED), settings)
    result = render(parsed, specs, settings, get_backend("runit"))
    log_run = {f.path: f.content for f in result.processes[0].files}["service/log/run"]
    assert "printf '%s' 's4096\nn2\n' > /srv/pm/log/webapp1/config || exit 1\n" in log_run
    plain = _files(ADVANCED)["webapp1/service/log/run"]
    assert "printf '%s' '' > /srv/pm/log/webapp1/config || exit 1\n" in plain


@pytest.mark.e2e
def test_svlogd_rotates_the_log(tmp_path: Path) -> None:
    """A deployment with --log-max-bytes 4K --log-backups 2: after many requests the
    log directory holds ``current`` below the limit and at most two rotated files."""
    _lanes.require_tool("runsvdir")
    base = free_port_block(2)
    state = tmp_path / "state"
    run = Runner(state, "runit", json.dumps({"port_base": base}), cwd=tmp_path)
    try:
        run("switch", "--log-max-bytes", "4K", "--log-backups", "2",
            EXAMPLES / "webapps" / "processes.py")
        for _ in range(400):
            wait_http(base)
        logs = state / "log" / "webapp"
        deadline = time.monotonic() + 10
        while len(list(logs.glob("@*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        rotated = list(logs.glob("@*"))
        assert len(rotated) == 2, sorted(p.name for p in logs.iterdir())
        assert (logs / "config").read_text() == "s4096\nn2\n"
        assert (logs / "current").stat().st_size <= 4096
    finally:
        run("switch", "--undeploy", check=False)
        kill_leftovers(str(state))


@pytest.mark.e2e
def test_a_dead_runsvdir_is_reported_and_the_next_switch_restarts_it(
        runit_state: tuple[Runner, Path, int]) -> None:
    """runsvdir killed behind procmgmt's back: the runsv processes keep the
    services up, status warns and exits 3; a switch to the same generation starts a
    new runsvdir and status is clean again."""
    run, state, _ = runit_state
    run("switch", EXAMPLES / "webapps" / "processes.py")
    pid_file = str(state / "run" / "runsvdir-processes.pid")
    (pid,) = runsvdir.find_running(pid_file, str(_scan(state)))
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while runsvdir.find_running(pid_file, str(_scan(state))) and time.monotonic() < deadline:
        time.sleep(0.05)
    shown = run("status", "--json", check=False)
    report = json.loads(shown.stdout)
    assert shown.returncode == 3 and all(p["running"] for p in report["processes"])
    assert [m for m in report["manager_problems"] if "runsvdir" in m and "not running" in m]
    run("switch", "--switch-generation", "1")
    assert runsvdir.find_running(pid_file, str(_scan(state)))
    shown = run("status", "--json", check=False)
    assert shown.returncode == 0 and json.loads(shown.stdout)["manager_problems"] == []


ONCE_MODEL = """\
from procmgmt import Instance, Process

RUN = 'echo run >> "$RUNS"; sleep 3; exit "$STATUS"'


def processes(settings):
    def once(name, policy, status):
        return Instance(Process(
            name=name, foreground_process="/bin/sh", foreground_process_args=["-c", RUN, name],
            environment={"RUNS": f"{settings.state_dir}/runs-{name}", "STATUS": str(status)},
            restart=policy))

    return {"once": once("once", "no", 1), "clean": once("clean", "on-failure", 0),
            "failing": once("failing", "on-failure", 3),
            "server": Instance(Process(name="server", foreground_process="/bin/sleep",
                                       foreground_process_args=["1000"], restart="no"))}
"""


def test_restart_no_and_on_failure_get_a_finish(tmp_path: Path) -> None:
    """runsv restarts after every exit: restart "no" and "on-failure" get a ./finish
    that writes "d" to runsv's control fifo (always, or after exit status 0), the
    policy reaches the activator; "always" (runit's own) writes none; a user's
    finish override wins."""
    model = tmp_path / "processes.py"
    model.write_text(ONCE_MODEL)
    files = _files(model)
    assert "procmgmt_restart=no\n" in files["once/service/finish"]
    assert "procmgmt_restart=on-failure\n" in files["clean/service/finish"]
    assert 'printf d >supervise/control' in files["clean/service/finish"]
    model.write_text(ONCE_MODEL.replace('"no", 1)', '"always", 1)'))
    assert "once/service/finish" not in _files(model)
    settings = golden_settings(False, "runit")
    parsed, specs = evaluate(str(model), settings)
    result = render(parsed, specs, settings, get_backend("runit"))
    extra = {r.spec.name: r.extra for r in result.processes}
    assert extra["clean"]["restart"] == "on-failure" and "restart" not in extra["once"]


def _finish_runs(finish: str, code: str, tmp_path: Path) -> bytes:
    """What the generated ./finish writes to supervise/control (a plain file here)
    when ./run exited with ``code``."""
    (tmp_path / "supervise").mkdir(exist_ok=True)
    control = tmp_path / "supervise" / "control"
    control.write_bytes(b"")
    script = tmp_path / "finish"
    script.write_text(finish)
    script.chmod(0o755)
    result = subprocess.run([str(script), code, "0"], cwd=tmp_path, check=False)
    assert result.returncode == 0
    return control.read_bytes()


@pytest.mark.parametrize(("policy", "code", "written"), [
    ("no", "0", b"d"), ("no", "1", b"d"), ("no", "-1", b"d"),
    ("on-failure", "0", b"d"), ("on-failure", "1", b""), ("on-failure", "-1", b"")])
def test_finish_keeps_down_what_the_policy_does_not_restart(
        policy: str, code: str, written: bytes, tmp_path: Path) -> None:
    from procmgmt.backends.runit.service import finish_script
    assert _finish_runs(finish_script(policy), code, tmp_path) == written


def _runs(state: Path, name: str) -> int:
    path = state / f"runs-{name}"
    return len(path.read_text().splitlines()) if path.exists() else 0


def _rows(run: Runner) -> dict[str, dict[str, object]]:
    out = run("status", "--json", check=False).stdout
    return {p["name"]: p for p in json.loads(out)["processes"]}


@pytest.mark.e2e
def test_restart_policies_no_and_on_failure_with_procmgmts_own_commands(
        runit_state: tuple[Runner, Path, int], tmp_path: Path) -> None:
    """"no" runs once, "on-failure" again only after a failure; status says a process
    exited and is not restarted; ``procmgmt start NAME`` runs it again (at once after
    it exited: the activator waits for ./finish); stop, start and restart of a
    running "no" process behave as for any other."""
    run, state, _ = runit_state
    model = tmp_path / "once.py"
    model.write_text(ONCE_MODEL)
    run("switch", model)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _runs(state, "failing") < 2:
        time.sleep(0.2)
    assert _runs(state, "failing") >= 2, "on-failure did not restart after exit status 3"
    time.sleep(1.5)
    assert _runs(state, "once") == 1, "restart='no' restarted"
    assert _runs(state, "clean") == 1, "on-failure restarted after exit status 0"
    rows = _rows(run)
    assert rows["once"]["state"] == "down" and rows["once"]["pid"] is None
    assert "exited, not restarted (restart='no')" in str(rows["once"]["detail"])
    assert "exited with status 0, not restarted (restart='on-failure')" in str(
        rows["clean"]["detail"])
    assert "not restarted" not in str(rows["failing"]["detail"])
    assert rows["server"]["state"] == "running"

    # Started again by hand; and at once again right after it exited.
    run("start", "clean")
    assert _runs(state, "clean") == 2
    while _rows(run)["clean"]["state"] == "running":
        time.sleep(0.05)
    run("start", "clean")
    assert _runs(state, "clean") == 3
    while _rows(run)["clean"]["state"] == "running":
        time.sleep(0.05)
    time.sleep(2)
    assert _runs(state, "clean") == 3

    # A running "no" process: stop keeps it down (by hand), start and restart run it.
    first = _rows(run)["server"]["pid"]
    run("stop", "server")
    assert _rows(run)["server"]["state"] == "stopped by hand"
    run("start", "server")
    second = _rows(run)["server"]["pid"]
    assert _rows(run)["server"]["state"] == "running" and second != first
    run("restart", "server")
    third = _rows(run)["server"]["pid"]
    assert _rows(run)["server"]["state"] == "running" and third not in (first, second)
