"""``Process.liveness`` with real processes: a process that stops answering is
killed by its liveness watcher and started again by its restart policy.

Model: tests/e2e/models/liveness.py. One scenario per backend, as the user
running the tests (root here: user changes disabled) and, as root, again as a
throw-away unprivileged user: the server answers and reloads (same PID); after
SIGUSR1 it closes its listener; within a few seconds a new PID answers,
``status`` shows it running with its restart policy, liveness check and (where
the manager counts) one restart, and ``logs`` shows why it was killed. The
undeploy leaves no watcher behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from tests import _lanes
from tests.e2e.util import (
    Runner,
    free_port_block,
    kill_leftovers,
    other_user_tree,
    port_closed,
    wait_no_leftovers,
)

pytestmark = pytest.mark.e2e

MODEL = Path(__file__).parent / "models" / "liveness.py"
BACKENDS = ["sysvinit", "supervisord",
            pytest.param("runit", marks=pytest.mark.requires_tool("runsvdir")),
            pytest.param("s6", marks=pytest.mark.requires_tool("s6-svscan"))]
#: Backends whose manager counts restarts (status "restarts"); the others say None.
COUNTING = {"sysvinit", "s6"}


def status(run: Runner) -> dict[str, object]:
    out = run("status", "--json", check=False).stdout
    row: dict[str, object] = json.loads(out)["processes"][0]
    return row


def server_pid(port: int) -> int | None:
    """The server program's pid (for sysvinit, status names its restart loop)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")[:-1]
        except OSError:
            continue
        if argv and argv[0].endswith(b"python3") and argv[-1] == str(port).encode():
            return int(entry)
    return None


def scenario(run: Runner, model: Path, port: int, marker: str) -> None:
    run("switch", model)
    first = status(run)
    counting = run.backend in COUNTING
    assert first["restarts"] == (0 if counting else None), first
    assert first["state"] == "running" and isinstance(first["pid"], int)
    assert not port_closed(port)
    assert first["restart"] == "always"
    assert "tcp 127.0.0.1" in str(first["liveness"])
    hung = server_pid(port)
    assert hung is not None
    # reload reaches the program (under sysvinit through its restart loop), and
    # neither it nor its watcher goes away.
    run("reload", "server")
    deadline = time.monotonic() + 10
    while "reloaded" not in run("logs", "-n", "20", "server").stdout:
        assert time.monotonic() < deadline, "the server never logged its reload"
        time.sleep(0.2)
    assert server_pid(port) == hung

    os.kill(hung, signal.SIGUSR1)  # root, or the same user as the server
    deadline = time.monotonic() + 15
    now, pid = first, server_pid(port)
    while time.monotonic() < deadline:
        now, pid = status(run), server_pid(port)
        # (the manager's count may follow the new process by a moment: s6 writes
        # its death tally as it reaps, s6-svdt reads it later)
        if now["state"] == "running" and pid not in (None, hung) and not port_closed(port) \
                and now["restarts"] == (1 if counting else None):
            break
        time.sleep(0.2)
    assert pid not in (None, hung), f"not restarted: {now}"
    assert now["state"] == "running", now
    assert now["restarts"] == (1 if counting else None), now
    text = run("status").stdout
    assert "restart always (1 restart)" in text if counting else "restart always" in text
    assert not port_closed(port), "the restarted server does not answer"
    logs = run("logs", "-n", "50", "server").stdout
    assert "liveness check failed (2 of 2 in a row" in logs, logs
    assert "killing pid" in logs, logs

    run("switch", "--undeploy")
    assert wait_no_leftovers(marker, timeout=5) == [], "a watcher or server is left"


@pytest.mark.parametrize("backend", BACKENDS)
def test_liveness_restarts_a_hung_process(backend: str, tmp_path: Path) -> None:
    port = free_port_block(1)
    state = tmp_path / "state"
    run = Runner(state, backend, json.dumps({"port": port}), cwd=tmp_path)
    try:
        scenario(run, MODEL, port, str(state))
    finally:
        run("switch", "--undeploy", check=False)
        kill_leftovers(str(state))


@pytest.mark.root("creates a separate user; the test above covers the current user")
@pytest.mark.own_accounts
@pytest.mark.parametrize("backend", BACKENDS[:2])
def test_liveness_unprivileged(backend: str) -> None:
    python = _lanes.require_system_python()
    root = Path("/tmp") / f"procmgmt-e2e-live-{os.getpid()}-{backend}"
    root.mkdir(mode=0o755)
    try:
        with other_user_tree(root) as (user, tree, pythonpath):
            model = tree / "liveness.py"
            shutil.copy(MODEL, model)
            model.chmod(0o644)
            state = root / "state"
            state.mkdir(mode=0o755)
            shutil.chown(state, user, user)
            port = free_port_block(1)
            run = Runner(state, backend, json.dumps({"port": port}), python=python,
                         pythonpath=pythonpath, user=user, cwd=tree)
            try:
                scenario(run, model, port, str(state))
            finally:
                run("switch", "--undeploy", check=False)
                kill_leftovers(str(state))
    finally:
        for dirpath, _, _ in os.walk(root):
            os.chmod(dirpath, 0o755)
        shutil.rmtree(root, ignore_errors=True)
