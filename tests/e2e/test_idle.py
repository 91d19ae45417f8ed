"""After a switch, nothing of procmgmt stays resident: only the manager it
started, the manager's loggers and the services (bench/bench_idle.py holds
the switch under a child subreaper and classifies every process it left)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from bench import bench_idle

from tests.e2e.util import free_port_block

#: What each backend leaves running besides the two webapps: (class, program) pairs.
EXPECTED = {
    "sysvinit": set(),
    "supervisord": {("manager", "python")},
    "runit": {("manager", "runsvdir"), ("manager", "runsv"), ("logger", "svlogd")},
    "s6": {("manager", "s6-svscan"), ("manager", "s6-supervise"), ("logger", "s6-log")},
}


@pytest.mark.e2e
@pytest.mark.parametrize("backend", bench_idle.BACKENDS)
def test_no_process_of_procmgmt_stays_after_a_switch(backend: str, tmp_path: Path) -> None:
    tool = bench_idle.NEEDS.get(backend)
    if tool is not None and shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    classes = bench_idle.measure(backend, str(tmp_path), 0.2, port_base=free_port_block(2))
    assert classes["procmgmt"] == []
    assert len(classes["service"]) == 2
    left = {(kind, "python" if "python" in p.comm else p.comm)
            for kind in ("manager", "logger", "wrapper") for p in classes[kind]}
    assert left == EXPECTED[backend]


def test_the_classes() -> None:
    py = "/usr/bin/python3"
    assert bench_idle.classify("python3", (py, "-m", "procmgmt", "switch")) == "procmgmt"
    assert bench_idle.classify("python3", (py, "-m", "procmgmt.network.agent")) == "procmgmt"
    assert bench_idle.classify("procmgmt", (py, "/venv/bin/procmgmt", "switch")) == "procmgmt"
    assert bench_idle.classify("python3", (py, "-m", "supervisor.supervisord", "-c",
                                           "/s/lib/procmgmt/x.conf")) == "manager"
    assert bench_idle.classify("python3", (py, "/srv/examples/webapp.py")) == "service"
    assert bench_idle.classify("sh", ("/bin/sh", "/s/store/abc-web/proxy")) == "wrapper"
    assert bench_idle.classify("s6-log", ("s6-log", "n10")) == "logger"
