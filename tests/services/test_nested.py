"""Process managers as managed processes: supervisord and s6-svscan run by sysvinit
(and by procmgmt's supervisord), with payloads deployed *into* them.

The original's scenario 6 and 10b: the nested manager comes up under another
manager; a payload is added the way tools add one (a program file in the
include dir plus reread/update through the control socket; a service dir in
the scan dir plus ``s6-svscanctl -a``); the payload answers over HTTP; two
instances of each run side by side without sharing a file; undeploying the
outer deployment takes the payloads down too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from procmgmt.readiness import pid_alive
from procmgmt.services import s6_svscan as s6
from procmgmt.services import supervisord as sup
from procmgmt.testing import Deployment, deployed
from tests.conftest import EXAMPLES
from tests.e2e.util import free_port_block, port_closed, wait_http

WEBAPP = EXAMPLES / "webapps" / "webapp.py"
OUTER_BACKENDS = ["sysvinit", "supervisord"]

SUPERVISORD_MODEL = """\
from procmgmt import Instance
from procmgmt.services.supervisord import paths, supervisord

def processes(settings):
    base = int(settings.extra_params["port_base"])
    make = supervisord(settings)
    out = {}
    for i, suffix in enumerate(["", "2"]):
        proc = make(port=base + i, instance_suffix=suffix)
        p = paths(settings, proc.instance_name)
        out[proc.instance_name] = Instance(proc, port=base + i, socket=p.socket)
    return out
"""

S6_MODEL = """\
from procmgmt import Instance
from procmgmt.services.s6_svscan import paths, s6_svscan

def processes(settings):
    make = s6_svscan(settings)
    out = {}
    for suffix in ["", "2"]:
        proc = make(instance_suffix=suffix, max_services=64)
        out[proc.instance_name] = Instance(
            proc, scan_dir=paths(settings, proc.instance_name).scan_dir)
    return out
"""


def rpc(socket: str) -> Any:
    """XML-RPC proxy over a supervisord unix socket (supervisor's own transport)."""
    from supervisor.xmlrpc import SupervisorTransport

    return xmlrpc.client.ServerProxy("http://127.0.0.1",
                                     transport=SupervisorTransport(None, None,
                                                                   f"unix://{socket}"))


def wait_for(what: str, check: Any, timeout: float = 15.0) -> Any:
    """Poll ``check()`` until it returns a true value; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def reaping(pids: list[int]) -> Iterator[list[int]]:
    """Kill (by PID) any payload still alive when the block ends, then fail on it."""
    try:
        yield pids
    finally:
        left = [p for p in pids if pid_alive(p)]
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert not left, f"payload processes {left} outlived the undeploy"


def supervisord_program(name: str, port: int, marker: str) -> str:
    """A ``[program:x]`` file running the test webapp on ``port``."""
    return textwrap.dedent(f"""\
        [program:{name}]
        command={sys.executable} {WEBAPP}
        environment=PORT="{port}",INSTANCE_NAME="{name}",PAYLOAD_OF="{marker}"
        startsecs=1
        stopasgroup=true
        killasgroup=true
        """)


@pytest.mark.e2e
@pytest.mark.parametrize("outer", OUTER_BACKENDS)
def test_supervisord_as_a_service(outer: str, tmp_path: Path,
                                  request: pytest.FixtureRequest) -> None:
    """Two supervisord instances under ``outer``; a program dropped into each include
    dir and activated (XML-RPC for one, supervisorctl for the other) runs and answers."""
    model = tmp_path / "supervisord.py"
    model.write_text(SUPERVISORD_MODEL)
    base = free_port_block(4)
    state = tmp_path / "state"
    with reaping([]) as payloads, deployed(model, backend=outer, state_dir=state,
                                           extra_params={"port_base": base}) as d:
        times = _startup_times(d)
        request.node.user_properties.append((f"{outer} supervisord", times))
        print(f"\nstartup supervisord under {outer}: {times}")
        for i, name in enumerate(["supervisord", "supervisord2"]):
            p = sup.paths(d.settings, name)
            # the inet port and the unix socket reach the same supervisord
            inet = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{base + i}/RPC2")
            assert inet.supervisor.getState()["statename"] == "RUNNING"
            assert inet.supervisor.getIdentification() == name
            server = rpc(p.socket)
            assert server.supervisor.getPID() == d.status()[name][1]

            payload_port = base + 2 + i
            Path(p.include_dir, "payload.conf").write_text(
                supervisord_program("payload", payload_port, str(state)))
            if i == 0:
                added, changed, removed = server.supervisor.reloadConfig()[0]
                assert (added, changed, removed) == (["payload"], [], [])
                server.supervisor.addProcessGroup("payload")
            else:
                ctl = [sys.executable, "-m", "supervisor.supervisorctl", "-c", p.conf]
                reread = subprocess.run([*ctl, "reread"], capture_output=True, text=True,
                                        check=True)
                assert "payload: available" in reread.stdout
                subprocess.run([*ctl, "update"], capture_output=True, text=True, check=True)
            info = wait_for("payload RUNNING", lambda s=server: _running(s, "payload"))
            payloads.append(int(info["pid"]))
            body = wait_http(payload_port)
            assert f"listening on port: {payload_port}" in body
            assert "instance: payload" in body
        assert len(set(payloads)) == 2
        d.switch(None)
        for port in range(base, base + 4):
            assert port_closed(port)
        wait_for("payloads gone", lambda: not any(pid_alive(p) for p in payloads))


def _running(server: Any, name: str) -> dict[str, Any] | None:
    info: dict[str, Any] = server.supervisor.getProcessInfo(name)
    return info if info["statename"] == "RUNNING" else None


def s6_service(scan_dir: str, name: str, port: int, tmp: Path) -> str:
    """Create service dir ``name`` (a ``run`` script for the webapp) atomically in the
    scan dir: built next to it, then renamed, so s6-svscan never sees half of it."""
    build = tmp / f"{name}-{port}"
    build.mkdir()
    run = build / "run"
    run.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        exec 2>&1
        PORT={port} INSTANCE_NAME={name} exec {sys.executable} {WEBAPP}
        """))
    run.chmod(0o755)
    target = os.path.join(scan_dir, name)
    os.rename(build, target)
    return target


@pytest.mark.e2e
@pytest.mark.parametrize("outer", OUTER_BACKENDS)
def test_s6_svscan_as_a_service(outer: str, tmp_path: Path,
                                request: pytest.FixtureRequest) -> None:
    """Two s6-svscan instances under ``outer``; a service dir added to each scan dir
    and announced with ``s6-svscanctl -a`` comes up (``s6-svstat``: up) and answers."""
    model = tmp_path / "s6.py"
    model.write_text(S6_MODEL)
    base = free_port_block(2)
    state = tmp_path / "state"
    with reaping([]) as payloads, deployed(model, backend=outer, state_dir=state) as d:
        times = _startup_times(d)
        request.node.user_properties.append((f"{outer} s6-svscan", times))
        print(f"\nstartup s6-svscan under {outer}: {times}")
        for i, name in enumerate(["s6-svscan", "s6-svscan2"]):
            scan = s6.paths(d.settings, name).scan_dir
            assert scan == str(state / "run" / name / "service")
            # the same tmp dir as the scan dir's file system (rename is atomic there)
            staging = state / "tmp" / f"staging-{i}"
            staging.mkdir(parents=True)
            service = s6_service(scan, "payload", base + i, staging)
            subprocess.run([s6.s6_program("s6-svscanctl"), "-a", scan], check=True)
            status = wait_for("s6-svstat up", lambda s=service: _svstat_up(s))
            payloads.append(int(status.split("(pid ", 1)[1].split(")", 1)[0]))
            body = wait_http(base + i)
            assert f"listening on port: {base + i}" in body
        d.switch(None)
        for port in (base, base + 1):
            assert port_closed(port)
        wait_for("payloads gone", lambda: not any(pid_alive(p) for p in payloads))


def _svstat_up(service: str) -> str | None:
    out = subprocess.run([s6.s6_program("s6-svstat"), service], capture_output=True,
                         text=True, check=False).stdout.strip()
    return out if out.startswith("up (pid ") else None


def _startup_times(d: Deployment) -> dict[str, float]:
    with open(d.engine.timeline_path) as f:
        events = json.load(f)["processes"]
    return {n: round(e["ready"] - e["start"], 3) for n, e in events.items() if "ready" in e}
