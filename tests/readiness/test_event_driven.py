"""Log-line and notify checks through a real switch: the engine waits on their events
(inotify on the log directory, the notification socket), in dependency order."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.e2e.util import Runner, kill_leftovers

# a -> b -> c print "ready" 0.3 s after they start; d (after c) sends READY=1.
MODEL = """
import os, sys
from procmgmt import Instance, Process
from procmgmt.readiness import LogLine, Notify

SAY_READY = "sleep 0.3; echo starting; echo ready; exec sleep 100000"
NOTIFY = ("import os, socket, time; time.sleep(0.3); "
          "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); "
          "s.sendto(b'READY=1', os.environ['NOTIFY_SOCKET']); time.sleep(100000)")


def processes(settings):
    procs = {}
    for name, dep in (("a", None), ("b", "a"), ("c", "b")):
        procs[name] = Process(
            name=name, foreground_process="/bin/sh", foreground_process_args=["-c", SAY_READY],
            dependencies=[procs[dep]] if dep else [],
            readiness=LogLine(path=os.path.join(settings.log_dir, name + ".log"),
                              pattern="^ready$", timeout=20))
    procs["d"] = Process(name="d", foreground_process=sys.executable,
                         foreground_process_args=["-c", NOTIFY], dependencies=[procs["c"]],
                         readiness=Notify(timeout=20))
    return {n: Instance(p) for n, p in procs.items()}
"""

CHAIN = {"b": "a", "c": "b", "d": "c"}


@pytest.mark.e2e
def test_log_line_and_notify_chain(tmp_path: Path) -> None:
    """Each process starts only once its dependency's line (or READY=1) arrived, and
    every check passes on its event well within its timeout."""
    model = tmp_path / "chain.py"
    model.write_text(MODEL)
    state = tmp_path / "state"
    run = Runner(state, "sysvinit", json.dumps({}), cwd=tmp_path)
    try:
        out = run("switch", model).stdout
        for name in "abc":
            assert f"ready    {name} (log " in out, out
        assert "ready    d (sd_notify READY=1" in out, out
        timeline = json.loads((state / "lib" / "procmgmt" / "profiles" /
                               "processes.last-switch.json").read_text())
        events = timeline["processes"]
        for child, parent in CHAIN.items():
            assert events[child]["start"] >= events[parent]["ready"], events
        for name in "abc":
            took = events[name]["ready"] - events[name]["started"]
            assert 0.25 < took < 10, (name, took)
            # The line was written before the check saw it (not an earlier run's).
            logs = [p for p in state.rglob(f"{name}.log") if p.is_file()]
            assert logs and "ready" in logs[0].read_text()
            written = os.stat(logs[0]).st_mtime - timeline["started_at"]
            assert events[name]["ready"] >= written - 0.05, (name, written, events[name])
    finally:
        run("switch", "--undeploy", check=False)
        kill_leftovers(str(state))
