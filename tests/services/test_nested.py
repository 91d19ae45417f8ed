"""Process managers as managed processes: supervisord and s6-svscan run by sysvinit
(and by procmgmt's supervisord), with payloads deployed *into* them.

The original's scenario 6 and 10b: the nested manager comes up under another
manager; a payload is added the way tools add one (a program file in the
include dir plus reread/update through the control socket; a service dir in
the scan dir plus ``s6-svscanctl -a``); the payload answers over HTTP; two
instances of each run side by side without sharing a file; undeploying the
outer deployment takes the payloads down too. And the issue's own scenario:
supervisord deployed as a sysvinit process, then a whole model deployed into
it with ``procmgmt switch -P supervisord`` and ``PROCMGMT_SUPERVISORD_CONF``.
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
from procmgmt.testing import Deployment, deployed, processes_mentioning
from tests.conftest import EXAMPLES
from tests.e2e.util import Runner, free_port_block, kill_leftovers, port_closed, wait_http

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


ONE_SUPERVISORD_MODEL = """\
from procmgmt import Instance
from procmgmt.services.supervisord import supervisord

def processes(settings):
    proc = supervisord(settings)()
    return {proc.instance_name: Instance(proc)}
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



@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short private dir under /tmp: supervisord's unix socket lives below the state
    dir, and pytest's own tmp paths can exceed the 107-byte socket path limit."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="pmn-", dir="/tmp"))
    try:
        yield path
    finally:
        for dirpath, _, _ in os.walk(path):
            with contextlib.suppress(OSError):
                os.chmod(dirpath, 0o755)
        shutil.rmtree(path, ignore_errors=True)

@pytest.mark.e2e
@pytest.mark.parametrize("outer", OUTER_BACKENDS)
def test_supervisord_as_a_service(outer: str, short_tmp: Path,
                                  request: pytest.FixtureRequest) -> None:
    """Two supervisord instances under ``outer``; a program dropped into each include
    dir and activated (XML-RPC for one, supervisorctl for the other) runs and answers."""
    tmp_path = short_tmp
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
@pytest.mark.requires_tool("s6-svscan")
@pytest.mark.parametrize("outer", OUTER_BACKENDS)
def test_s6_svscan_as_a_service(outer: str, short_tmp: Path,
                                request: pytest.FixtureRequest) -> None:
    """Two s6-svscan instances under ``outer``; a service dir added to each scan dir
    and announced with ``s6-svscanctl -a`` comes up (``s6-svstat``: up) and answers."""
    tmp_path = short_tmp
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


@pytest.mark.e2e
def test_model_deployed_into_nested_supervisord(short_tmp: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """supervisord deployed with sysvinit; ``procmgmt switch -P supervisord`` with
    ``PROCMGMT_SUPERVISORD_CONF`` deploys the webapps *into* it (its include dir, its
    socket; procmgmt starts no supervisord of its own), upgrades them to the advanced
    model (the unchanged webapp1 keeps its pid), and undeploys them while the nested
    supervisord keeps running; undeploying the outer model then leaves nothing."""
    tmp_path = short_tmp
    outer_model = tmp_path / "outer.py"
    outer_model.write_text(ONE_SUPERVISORD_MODEL)
    base = free_port_block(7)
    inner_state = tmp_path / "inner"
    run = Runner(inner_state, "supervisord", json.dumps({"port_base": base}), cwd=tmp_path)
    webapps = EXAMPLES / "webapps"
    with reaping([]) as payloads, deployed(outer_model, backend="sysvinit",
                                           state_dir=tmp_path / "outer") as d:
        p = sup.paths(d.settings, "supervisord")
        sup_pid = d.status()["supervisord"][1]
        assert sup_pid
        server = rpc(p.socket)
        monkeypatch.setenv("PROCMGMT_SUPERVISORD_CONF", p.conf)
        try:
            out = run("switch", webapps / "processes.py").stdout
            assert "generation 1 deployed" in out
            for port in (base, base + 1):
                assert f"listening on port: {port}" in wait_http(port)
            infos = _infos(server)
            assert sorted(infos) == ["webapp", "webapp1"]
            assert all(i["statename"] in ("STARTING", "RUNNING") for i in infos.values())
            payloads.extend(int(i["pid"]) for i in infos.values())
            assert sorted(os.listdir(p.include_dir)) == ["webapp.conf", "webapp1.conf"]
            own_socket = inner_state / "run" / "supervisord-processes.sock"
            assert not own_socket.exists(), "procmgmt started a supervisord of its own"
            webapp1 = infos["webapp1"]["pid"]

            run("switch", "--replace", webapps / "processes-advanced.py")
            for i in range(1, 7):
                assert f"listening on port: {base + i}" in wait_http(base + i)
            infos = _infos(server)
            assert sorted(infos) == [f"webapp{i}" for i in range(1, 7)]
            assert infos["webapp1"]["pid"] == webapp1, "unchanged webapp1 was restarted"
            payloads.extend(int(i["pid"]) for i in infos.values())
            wait_for("webapp stopped", lambda: port_closed(base))
            assert sorted(os.listdir(p.include_dir)) == [f"webapp{i}.conf" for i in range(1, 7)]
            assert server.supervisor.getPID() == sup_pid

            run("switch", "--undeploy")
            assert server.supervisor.getState()["statename"] == "RUNNING"
            assert server.supervisor.getPID() == sup_pid, "the nested supervisord restarted"
            assert _infos(server) == {}
            assert [f for f in os.listdir(p.include_dir) if f.endswith(".conf")] == []
            for port in range(base, base + 7):
                assert port_closed(port)
            wait_for("webapps gone", lambda: not any(pid_alive(x) for x in payloads))
        finally:
            run("switch", "--undeploy", check=False)
            kill_leftovers(str(inner_state))
        d.switch(None)
        assert wait_for("nested supervisord gone", lambda: not pid_alive(sup_pid))
    assert processes_mentioning(str(inner_state)) == []
    assert processes_mentioning(str(tmp_path / "outer")) == []


def _infos(server: Any) -> dict[str, dict[str, Any]]:
    """Process name -> info of every program the supervisord behind ``server`` has."""
    return {i["name"]: i for i in server.supervisor.getAllProcessInfo()}
