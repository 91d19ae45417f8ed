"""``procmgmt doctor`` finds marked processes no deployed process explains, and stops them.

A stray is made by hand the way a crash or an escaped daemon would leave
one: a process with a deployed process's environment (so it carries the
deployment marker) that is neither a deployed process, nor its descendant,
nor in its process group. A normal deployment has none.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.util import free_port_block
from tests.faults import SIMPLE, SIMPLE_PORTS, Cli, _environ, assert_serves, cleanup, marked

BACKENDS = ["sysvinit", "supervisord"]


def _pids(status_json: str) -> dict[str, tuple[bool, int | None]]:
    """Name -> (running, pid) of ``status --json``."""
    return {p["name"]: (p["running"], p["pid"]) for p in json.loads(status_json)["processes"]}


@pytest.mark.e2e
@pytest.mark.parametrize("backend", BACKENDS)
def test_doctor_lists_and_stops_a_stray(backend: str, tmp_path: Path) -> None:
    """No stray in a normal deployment (exit 0); a hand-made stray is listed (exit 1) with
    its pid and process name; --stop stops it and leaves the deployment running."""
    base = free_port_block(2)
    state = tmp_path / "state"
    run = Cli(state, backend, {"port_base": base}, cwd=tmp_path)
    stray: subprocess.Popen[bytes] | None = None
    try:
        run("switch", SIMPLE)
        clean = run("doctor", check=False)
        assert clean.returncode == 0 and "no stray processes" in clean.stdout, clean.stdout

        deployed = _pids(run("status", "--json").stdout)
        webapp_pid = next(pid for pid, name in marked(state).items() if name == "webapp1")
        env = _environ(webapp_pid)
        assert env.get("PROCMGMT_DEPLOYMENT") == f"{state}:processes", env
        # Its own session: not in any deployed process's group, not anyone's child.
        stray = subprocess.Popen(["/bin/sleep", "600"], env=env, start_new_session=True,
                                 stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while stray.pid not in marked(state) and time.monotonic() < deadline:
            time.sleep(0.02)

        found = run("doctor", check=False)
        assert found.returncode == 1, found.stdout + found.stderr
        assert f"pid {stray.pid}" in found.stdout and "webapp1" in found.stdout, found.stdout
        assert "1 stray process" in found.stdout and "doctor --stop" in found.stdout
        assert stray.poll() is None, "doctor without --stop must not stop anything"

        stopped = run("doctor", "--stop", check=False)
        assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stdout
        assert stray.wait(timeout=5) == -15, "the stray was not stopped by SIGTERM"
        assert stray.pid not in marked(state)
        # The deployment itself is untouched.
        assert_serves(base, SIMPLE_PORTS)
        # Same processes, same PIDs (the manager's own detail, e.g. supervisord's
        # STARTING -> RUNNING, may move on meanwhile).
        assert _pids(run("status", "--json").stdout) == deployed
        again = run("doctor", check=False)
        assert again.returncode == 0 and "no stray processes" in again.stdout, again.stdout
    finally:
        if stray is not None and stray.poll() is None:
            stray.kill()
            stray.wait()
        cleanup(run, state)
    assert marked(state) == {}, "processes of the deployment survived the undeploy"
