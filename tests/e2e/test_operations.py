"""Day-two operations on a running generation, with real processes, per runnable backend:
``start``/``stop``/``restart`` of single processes (only their PIDs change), the
stopped-by-hand record across switches, the dependents refusal, ``logs`` and ``status``.

Model: tests/e2e/models/chatty.py (base; app needs base; solo).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.util import Runner, kill_leftovers, ordered, start_lines, stop_lines

BACKENDS = ["sysvinit", "supervisord"]
MODEL = Path(__file__).parent / "models" / "chatty.py"


@pytest.fixture(params=BACKENDS)
def deployed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runner]:
    """The chatty model deployed with the backend (undeployed and checked afterwards)."""
    state = tmp_path / "state"
    run = Runner(state, request.param, json.dumps({}), cwd=tmp_path)
    try:
        run("switch", MODEL)
        yield run
    finally:
        run("switch", "--undeploy", check=False)
        kill_leftovers(str(state))


def status(run: Runner) -> tuple[int, dict[str, dict[str, object]]]:
    """Exit status and name -> row of ``status --json``."""
    proc = run("status", "--json", check=False)
    return proc.returncode, {p["name"]: p for p in json.loads(proc.stdout)["processes"]}


def pids(run: Runner) -> dict[str, object]:
    """name -> pid (None when down)."""
    return {name: row["pid"] for name, row in status(run)[1].items()}


@pytest.mark.e2e
def test_restart_stop_start_one_process(deployed: Runner) -> None:
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

    out = run("switch", MODEL).stdout
    assert "found not running" not in out and start_lines(out) == []
    assert status(run)[1]["solo"]["state"] == "stopped by hand"

    out = run("start", "solo").stdout
    assert start_lines(out) == ["solo"]
    code, rows = status(run)
    assert code == 0 and rows["solo"]["state"] == "running"
    assert rows["base"]["pid"] == after["base"]


@pytest.mark.e2e
def test_dependents_refusal_and_order(deployed: Runner) -> None:
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
def test_switch_that_changes_it_starts_it(deployed: Runner) -> None:
    """A process stopped by hand runs again after a switch that changes it."""
    run = deployed
    run("stop", "solo")
    changed = Runner(run.state_dir, run.backend, json.dumps({"tag": "v2"}), cwd=run.cwd)
    out = changed("switch", MODEL).stdout
    assert start_lines(out) == ["solo"]
    code, rows = status(changed)
    assert code == 0 and rows["solo"]["state"] == "running"
    assert not (run.state_dir / "lib" / "procmgmt" / "profiles" / "processes.stopped").exists()


@pytest.mark.e2e
def test_unknown_process_name(deployed: Runner) -> None:
    """A misspelled name: exit 2, did you mean, nothing changed."""
    before = pids(deployed)
    proc = deployed("stop", "sol", check=False)
    assert proc.returncode == 2
    assert "no process 'sol'" in proc.stderr and "did you mean 'solo'?" in proc.stderr
    assert pids(deployed) == before
