"""Day-two operations on a running generation, with real processes, per runnable backend:
``start``/``stop``/``restart`` of single processes (only their PIDs change), the
stopped-by-hand record across switches, the dependents refusal, ``logs`` and ``status``.

Model: tests/e2e/models/chatty.py (base; app needs base; solo).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import pwd
import re
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from procmgmt.backends import get_backend
from tests import _lanes
from tests.e2e.util import (
    Runner,
    kill_leftovers,
    ordered,
    other_user_tree,
    own_account_id,
    own_account_name,
    start_lines,
    stop_lines,
)

BACKENDS = ["sysvinit", "supervisord"]
MODEL = Path(__file__).parent / "models" / "chatty.py"


@pytest.fixture(params=[
    *BACKENDS,
    # s6 as this user only: its user changes are covered by tests/backends/test_s6.py.
    pytest.param("s6", marks=pytest.mark.requires_tool("s6-svscan")),
    *[pytest.param(f"{b}-user", marks=[pytest.mark.root("creates a throw-away user; the "
                                                          "other params run as this user"),
                                        pytest.mark.own_accounts])
      for b in BACKENDS],
    *[pytest.param(f"{b}-root", marks=[pytest.mark.root("creates the account 'solo' runs as"),
                                        pytest.mark.own_accounts])
      for b in BACKENDS]])
def deployed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployed]:
    """The chatty model deployed with the backend, as this user (user changes off);
    ``-user``: by a throw-away unprivileged user; ``-root``: as root with user changes,
    ``solo`` running as its own account. Undeployed and checked afterwards."""
    backend, _, mode = str(request.param).partition("-")
    state = tmp_path / "state"
    if not mode:
        yield from _deployed(Deployed(state, backend, json.dumps({}), cwd=tmp_path, model=MODEL))
        return
    if mode == "root":
        account = own_account_name("pmops")
        # The account must reach its log file: not under pytest's 0700 tmp dir.
        state = Path("/tmp") / f"procmgmt-ops-root-{os.getpid()}-{backend}"
        state.mkdir(mode=0o755)
        try:
            params = json.dumps({"user": account, "id": own_account_id()})
            yield from _deployed(Deployed(state, backend, params,
                                          cwd=tmp_path, model=MODEL, user_change=True))
        finally:
            for dirpath, _, _ in os.walk(state):
                os.chmod(dirpath, 0o755)
            shutil.rmtree(state, ignore_errors=True)
            with contextlib.suppress(KeyError):
                pwd.getpwnam(account)
                raise AssertionError(f"the account {account} was left behind")
        return
    python = _lanes.require_system_python()
    root = Path("/tmp") / f"procmgmt-ops-{os.getpid()}-{backend}"
    root.mkdir(mode=0o755)
    try:
        with other_user_tree(root) as (user, tree, pythonpath):
            model = tree / "models" / MODEL.name
            model.parent.mkdir(mode=0o755)
            shutil.copyfile(MODEL, model)
            model.chmod(0o644)
            state = root / "state"
            state.mkdir(mode=0o755)
            pw = pwd.getpwnam(user)
            os.chown(state, pw.pw_uid, pw.pw_gid)
            yield from _deployed(Deployed(state, backend, json.dumps({}), python=python,
                                          pythonpath=pythonpath, user=user, cwd=tree,
                                          model=model))
    finally:
        for dirpath, _, _ in os.walk(root):
            os.chmod(dirpath, 0o755)
        shutil.rmtree(root, ignore_errors=True)


class Deployed(Runner):
    """A runner that knows the model file deployed (a copy for another user)."""

    def __init__(self, *args: Any, model: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model = model


def _deployed(run: Deployed) -> Iterator[Deployed]:
    try:
        run("switch", run.model)
        yield run
    finally:
        run("switch", "--undeploy", check=False)
        kill_leftovers(str(run.state_dir))


def status(run: Runner) -> tuple[int, dict[str, dict[str, object]]]:
    """Exit status and name -> row of ``status --json``."""
    proc = run("status", "--json", check=False)
    return proc.returncode, {p["name"]: p for p in json.loads(proc.stdout)["processes"]}


def pids(run: Runner) -> dict[str, object]:
    """name -> pid (None when down)."""
    return {name: row["pid"] for name, row in status(run)[1].items()}


@pytest.mark.e2e
def test_restart_stop_start_one_process(deployed: Deployed) -> None:
    """restart changes only that PID; stop leaves it stopped by hand (exit 3, others
    untouched) and a no-op switch does not start it again; start brings it back."""
    run = deployed
    before = pids(run)
    assert all(before.values())

    out = run("restart", "solo").stdout
    assert stop_lines(out) == ["solo"] and start_lines(out) == ["solo"]
    after = pids(run)
    assert after["solo"] != before["solo"]
    assert {k: v for k, v in after.items() if k != "solo"} == \
        {k: v for k, v in before.items() if k != "solo"}

    run("stop", "solo")
    code, rows = status(run)
    assert code == 3
    assert rows["solo"]["state"] == "stopped by hand" and rows["solo"]["pid"] is None
    assert rows["base"]["pid"] == after["base"] and rows["app"]["pid"] == after["app"]
    text = run("status", check=False).stdout
    assert "stopped by hand" in text

    out = run("switch", run.model).stdout
    assert "found not running" not in out and start_lines(out) == []
    assert status(run)[1]["solo"]["state"] == "stopped by hand"

    out = run("start", "solo").stdout
    assert start_lines(out) == ["solo"]
    code, rows = status(run)
    assert code == 0 and rows["solo"]["state"] == "running"
    assert rows["base"]["pid"] == after["base"]


@pytest.mark.e2e
def test_dependents_refusal_and_order(deployed: Deployed) -> None:
    """Stopping a dependency refuses naming its dependents (nothing stops); with
    --with-dependents they stop first; starting the dependent starts its dependency."""
    run = deployed
    before = pids(run)
    refused = run("stop", "base", check=False)
    assert refused.returncode == 2
    assert "needed by app (running)" in refused.stderr and "--with-dependents" in refused.stderr
    assert pids(run) == before

    out = run("stop", "base", "--with-dependents").stdout
    assert ordered(stop_lines(out), "app", "base")
    rows = status(run)[1]
    assert rows["base"]["state"] == rows["app"]["state"] == "stopped by hand"
    assert rows["solo"]["pid"] == before["solo"]

    out = run("start", "app").stdout
    assert start_lines(out) == ["base", "app"]
    code, rows = status(run)
    assert code == 0 and rows["solo"]["pid"] == before["solo"]


@pytest.mark.e2e
def test_switch_that_changes_it_starts_it(deployed: Deployed) -> None:
    """A process stopped by hand runs again after a switch that changes it."""
    run = deployed
    run("stop", "solo")
    changed = copy.copy(run)
    changed.extra_params = json.dumps({"tag": "v2"})
    out = changed("switch", run.model).stdout
    assert start_lines(out) == ["solo"]
    code, rows = status(changed)
    assert code == 0 and rows["solo"]["state"] == "running"
    assert not (run.state_dir / "lib" / "procmgmt" / "profiles" / "processes.stopped").exists()


@pytest.mark.e2e
def test_failed_start_names_the_process(deployed: Deployed) -> None:
    """A process that dies at once: start exits 1 naming it, and it is down (no longer
    stopped by hand); the others keep their PIDs."""
    run = deployed
    before = pids(run)
    run("stop", "solo")
    flag = run.state_dir / "fail-solo"
    flag.write_text("")
    try:
        proc = run("start", "solo", check=False)
        assert proc.returncode == 1
        assert "could not start solo" in proc.stderr and "Traceback" not in proc.stderr
        # Still failing: without the flag supervisord or s6 may have started it again
        # by the time status looks (seen on a busy machine).
        code, rows = status(run)
    finally:
        flag.unlink()
    assert code == 3 and rows["solo"]["state"] == "down"
    assert rows["base"]["pid"] == before["base"] and rows["app"]["pid"] == before["app"]


@pytest.mark.e2e
def test_unknown_process_name(deployed: Deployed) -> None:
    """A misspelled name: exit 2, did you mean, nothing changed."""
    before = pids(deployed)
    proc = deployed("stop", "sol", check=False)
    assert proc.returncode == 2
    assert "no process 'sol'" in proc.stderr and "did you mean 'solo'?" in proc.stderr
    assert pids(deployed) == before


@pytest.mark.e2e
def test_logs_last_lines(deployed: Deployed) -> None:
    """-n N: the last N lines of each named process, stdout and stderr, prefixed with its
    name (no colour when not on a terminal)."""
    wait_lines(deployed, "app", 6)
    out = deployed("logs", "-n", "4", "solo", "app").stdout
    assert "\033" not in out
    lines = out.splitlines()
    assert [ln.split(" |")[0].strip() for ln in lines] == ["solo"] * 4 + ["app"] * 4
    assert any(" | solo out " in ln for ln in lines) and any(" | solo err " in ln for ln in lines)
    every = deployed("logs", "-n", "1").stdout.splitlines()
    assert sorted(ln.split(" |")[0].strip() for ln in every) == ["app", "base", "solo"]


def wait_lines(run: Runner, name: str, count: int, timeout: float = 10.0) -> None:
    """Wait until ``name`` has written ``count`` lines."""
    deadline = time.monotonic() + timeout
    while len(run("logs", "-n", str(count), name).stdout.splitlines()) < count:
        assert time.monotonic() < deadline, f"{name} wrote fewer than {count} lines"
        time.sleep(0.1)


def read_until(proc: subprocess.Popen[str], wanted: str, timeout: float) -> list[str]:
    """Lines of ``proc``'s stdout up to and including one containing ``wanted``."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                break
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line.rstrip("\n"))
            if wanted in line:
                return seen
    raise AssertionError(f"no line with {wanted!r} within {timeout} s; got {seen[-10:]}")


@pytest.mark.e2e
def test_logs_follow_across_restart(deployed: Deployed) -> None:
    """logs -f keeps printing the process's lines after a restart (its counter starts
    again at 0) and no other process's lines when names are given."""
    run = deployed
    wait_lines(run, "solo", 10)  # past its 'out 0': an 'out 0' later is the new process's
    argv, env = run.command("logs", "-f", "-n", "0", "solo")
    follower = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, bufsize=1, env=env,
                                cwd=run.cwd)
    try:
        read_until(follower, "solo out ", timeout=10)
        run("restart", "solo")
        after = read_until(follower, "solo out 0", timeout=10)
        after += read_until(follower, "solo err 1", timeout=10)
        assert all(ln.startswith("solo | solo ") for ln in after)
    finally:
        os.kill(follower.pid, signal.SIGTERM)
        follower.wait(timeout=10)


@pytest.mark.e2e
def test_reload_signals_the_process(deployed: Deployed) -> None:
    """reload sends the declared signal through the manager (the process says so in its
    log, its PID stays); a process without a reload_signal is refused, by name."""
    run = deployed
    before = pids(run)
    wait_lines(run, "solo", 2)
    run("reload", "solo")
    deadline = time.monotonic() + 10
    # solo writes 20 lines a second: 400 lines reach back further than one slow
    # `logs` call (another user's interpreter on a busy machine) takes.
    while "solo | solo reloaded" not in run("logs", "-n", "400", "solo").stdout:
        assert time.monotonic() < deadline, "solo did not log its reload"
        time.sleep(0.1)
    assert pids(run) == before
    proc = run("reload", "base", check=False)
    assert proc.returncode != 0
    assert "base: declares no reload_signal" in proc.stderr
    assert "reloaded: solo" in run("reload", "--all").stdout


@pytest.mark.e2e
def test_status_fields_and_exit_codes(deployed: Deployed) -> None:
    """Per process state, PID, uptime, restart policy and log; the summary; exit 0 when
    all run, 3 when one is stopped by hand or down (killed behind procmgmt's back)."""
    run = deployed
    time.sleep(1.2)
    code, rows = status(run)
    assert code == 0
    for row in rows.values():
        assert row["state"] == "running" and isinstance(row["pid"], int)
        assert os.path.exists(f"/proc/{row['pid']}")
        started = row["started_at"]
        assert isinstance(started, float) and 1.0 <= time.time() - started < 120
        log = row["log"]
        assert isinstance(log, list) and len(log) == 1 and Path(str(log[0])).is_file()
    # No restart= in the model: the manager's own policy, named; no liveness check.
    default = get_backend(run.backend).capabilities.lifecycle.default_restart
    assert {(r["restart"], r["liveness"]) for r in rows.values()} == {(default, None)}
    text = run("status").stdout
    assert f"  restart {default}" in text
    assert text.splitlines()[-1] == "3 processes, 3 up"
    assert re.search(rf"solo +running +pid {rows['solo']['pid']} +uptime \d+s ", text), text
    if run.user_change:  # as root: solo runs as its own account, the others as root
        assert os.stat(f"/proc/{rows['solo']['pid']}").st_uid != 0
        assert os.stat(f"/proc/{rows['base']['pid']}").st_uid == 0

    run("stop", "solo")
    proc = run("status", check=False)
    assert proc.returncode == 3
    assert proc.stdout.splitlines()[-1] == "3 processes, 2 up, 1 stopped by hand"
    if run.backend == "s6":
        # s6-supervise restarts a killed process itself: it comes back under a new PID.
        victim = rows["app"]["pid"]
        assert isinstance(victim, int)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while status(run)[1]["app"]["pid"] in (victim, None):
            assert time.monotonic() < deadline, "s6 did not restart a killed process"
            time.sleep(0.1)
        return
    if run.backend == "supervisord":
        return  # it restarts a killed program itself: 'down' is sysvinit's case here
    victim = rows["app"]["pid"]
    assert isinstance(victim, int)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while status(run)[1]["app"]["state"] != "down":
        assert time.monotonic() < deadline, "a killed process is not reported down"
        time.sleep(0.1)
    proc = run("status", check=False)
    assert proc.returncode == 3
    assert proc.stdout.splitlines()[-1] == "3 processes, 1 up, 1 stopped by hand, 1 down"
    data = json.loads(run("status", "--json", check=False).stdout)
    assert data["summary"] == "3 processes, 1 up, 1 stopped by hand, 1 down"
    assert [r["state"] for r in data["processes"]] == ["running", "stopped by hand", "down"]


@pytest.mark.e2e
def test_run_shows_the_programs_output(tmp_path: Path) -> None:
    """``procmgmt run`` prints the programs' lines, prefixed with their names, and not
    supervisord's own log; SIGTERM ends it with status 0."""
    run = Runner(tmp_path / "state", "supervisord", json.dumps({}), cwd=tmp_path)
    argv, env = run.command("run", MODEL)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            bufsize=1, env=env, cwd=tmp_path, start_new_session=True)
    try:
        seen = read_until(proc, "solo | solo err 2", timeout=30)
        seen += read_until(proc, "app  | app out 2", timeout=10)
        assert not [ln for ln in seen if " | " not in ln], seen
        assert not [ln for ln in seen if "INFO" in ln or "spawned" in ln], seen
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "spawned" not in out + err and "INFO" not in out + err
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        kill_leftovers(str(run.state_dir))


@pytest.mark.e2e
# One deployment per rotating program: sysvinit's log writer (backends/sh/log_writer.sh),
# supervisord's own rotation and s6-log. The -user/-root deployments run the same
# writers as another deployer or with another service user, which the other tests
# here cover.
@pytest.mark.parametrize("deployed", [
    *BACKENDS, pytest.param("s6", marks=pytest.mark.requires_tool("s6-svscan"))],
    indirect=True)
def test_rotated_logs_followed_and_since(deployed: Deployed) -> None:
    """With --log-max-bytes/--log-backups the log rotates (FILE.1, FILE.2, no more);
    logs -f follows across rotations without losing or repeating a line; --since
    a while ago shows the rotated files' lines too, --since the future none."""
    run = deployed
    run("switch", "--log-max-bytes", "600", "--log-backups", "2", run.model)
    wait_lines(run, "solo", 4)
    argv, env = run.command("logs", "-f", "-n", "0", "solo")
    follower = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, bufsize=1, env=env,
                                cwd=run.cwd)
    try:
        first = read_until(follower, "solo out ", timeout=10)[-1]
        start = int(first.rsplit(" ", 1)[1])
        seen = read_until(follower, f"solo out {start + 70}", timeout=30)
    finally:
        os.kill(follower.pid, signal.SIGTERM)
        follower.wait(timeout=10)
    numbers = [int(ln.rsplit(" ", 1)[1]) for ln in seen if " | solo out " in ln]
    assert numbers == list(range(start + 1, start + 71)), numbers
    log = Path(str(status(run)[1]["solo"]["log"][0]))  # type: ignore[index]
    if run.backend == "s6":
        # s6-log rotates at 4096 bytes at the least and names archives @TAI64N.s, not
        # FILE.N: `logs --since` does not read those archives (a limit, docs/backends.md).
        deadline = time.monotonic() + 30
        while not (archives := [p.name for p in log.parent.iterdir()
                                if p.name.startswith("@")]):
            assert time.monotonic() < deadline, "s6-log did not rotate at 4096 bytes"
            time.sleep(0.2)
        assert len(archives) <= 2, archives
        return
    # The writer goes on writing: a listing between a rotation's two renames
    # (FILE.1 -> FILE.2, FILE -> FILE.1) misses FILE.1, so look until it is whole
    # (a FILE.3 would never go away).
    expected = [log.name, f"{log.name}.1", f"{log.name}.2"]
    deadline = time.monotonic() + 5
    while (rotated := sorted(p.name for p in log.parent.iterdir()
                             if p.name.startswith(log.name))) != expected \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rotated == expected
    assert all((log.parent / n).stat().st_size < 600 + 40 for n in rotated)
    recent = run("logs", "--since", "1h", "solo").stdout.splitlines()
    assert len(recent) > len(log.read_text().splitlines())  # rotated files included
    assert run("logs", "--since", "2099-01-01T00:00", "solo").stdout == ""


@pytest.mark.e2e
def test_status_watch_repeats_and_ctrl_c_exits_0(deployed: Deployed) -> None:
    """Not on a terminal, --watch prints the report again every interval; SIGINT to its
    process group (a terminal's Ctrl-C) ends it with status 0 and nothing on stderr."""
    argv, env = deployed.command("status", "--watch", "--interval", "0.2")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            bufsize=1, env=env, cwd=deployed.cwd, start_new_session=True)
    try:
        read_until(proc, "3 processes, 3 up", timeout=20)
        read_until(proc, "3 processes, 3 up", timeout=20)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and err == "", err
    assert "\033" not in out
