"""Test driver: deploy a processes model for real, check it, undeploy, prove nothing is left.

The same tool procmgmt's own service tests use, for your constructors::

    from procmgmt.testing import deployed

    def test_my_service(tmp_path):
        with deployed("processes.py", backend="sysvinit", state_dir=tmp_path,
                      extra_params={"port_base": 41000}) as d:
            assert d.instances["web"]["port"] == 41000
            assert "hello" in d.http_get("web")

or, with pytest (the plugin is registered automatically), the
``procmgmt_deploy`` fixture, which also undeploys when the test fails::

    def test_my_service(procmgmt_deploy):
        d = procmgmt_deploy("processes.py", backend="supervisord")

On entry the model is switched to (readiness-gated: ``switch`` returns once
every process is ready); then each instance with a ``port`` and no declared
readiness is waited for until the port accepts connections. On exit the
deployment is undeployed and every process that mentions the private state
dir (command line or environment) must be gone, else :class:`LeftoverProcessesError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import signal
import socket
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from procmgmt.deploy.engine import Engine
from procmgmt.deploy.switch import Switcher
from procmgmt.errors import LeftoverProcessesError, ProcmgmtError
from procmgmt.manifest import load_generation
from procmgmt.settings import Settings, resolve


@dataclass
class Deployment:
    """A deployed model under test."""

    settings: Settings
    #: Deploys into the private state dir; its progress lines go to ``log``.
    switcher: Switcher
    log: io.StringIO
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def engine(self) -> Engine:
        """The engine of the deployment (activators, timeline)."""
        return self.switcher.engine

    def status(self) -> dict[str, tuple[bool, int | None]]:
        """name -> (running, pid) of the current generation."""
        path = self.engine.profile.current_path()
        if not path:
            return {}
        gen = load_generation(path)
        act = self.engine.activator(gen.backend)
        return {p.name: (st.running, st.pid) for p in gen.processes
                for st in [act.status(gen, p)]}

    def port(self, instance: str, key: str = "port") -> int:
        """A port from an instance's metadata."""
        return int(self.instances[instance][key])

    def http_get(self, instance: str, path: str = "/", host: str | None = None,
                 timeout: float = 5.0) -> str:
        """Body of an HTTP GET to the instance's port on 127.0.0.1."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.port(instance)}{path}")
        if host:
            req.add_header("Host", host)
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return str(resp.read().decode(errors="replace"))

    def switch(self, model: str | os.PathLike[str] | None, *,
               extra_params: Mapping[str, Any] | None = None) -> None:
        """Switch to another model (None: undeploy) within the same state dir.

        ``extra_params`` replaces the model's extra parameters from this switch
        on (the settings a switcher holds are fixed, so it gets a new one)."""
        if extra_params is not None:
            self.settings = dataclasses.replace(self.settings, extra_params=dict(extra_params))
            self.switcher = Switcher(self.settings, out=self.log)
        _switch(self, model)


def _switch(d: Deployment, model: str | os.PathLike[str] | None) -> None:
    built = d.switcher.build(None if model is None else str(model))
    d.switcher.activate(built.generation)
    d.instances = {name: dict(inst.metadata) for name, inst in built.model.instances.items()}


def wait_port(port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    """Wait until ``host:port`` accepts connections."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{host}:{port} did not open within {timeout} s: "
                                   f"{exc}") from None
            time.sleep(0.05)


def processes_mentioning(marker: str) -> list[int]:
    """Live PIDs whose command line or environment contains ``marker``."""
    found = []
    needle = marker.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        for part in ("cmdline", "environ"):
            try:
                with open(f"/proc/{entry}/{part}", "rb") as f:
                    data = f.read()
                with open(f"/proc/{entry}/stat") as f:
                    zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
            except OSError:
                continue
            if needle in data and not zombie:
                found.append(int(entry))
                break
    return found


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def deployed(model: str | os.PathLike[str], *, backend: str = "supervisord",
             state_dir: str | os.PathLike[str] | None = None, privileged: bool = False,
             extra_params: Mapping[str, Any] | None = None,
             ready_timeout: float = 60.0, leftover_timeout: float = 15.0,
             settings_overrides: Mapping[str, Any] | None = None) -> Iterator[Deployment]:
    """Deploy ``model`` with ``backend`` into a private state dir; undeploy and check on exit.

    ``privileged=True`` (root only) lets processes run as their own users.
    """
    if privileged and os.geteuid() != 0:
        raise ProcmgmtError("a privileged deployment needs root")
    own_dir = None
    if state_dir is None:
        own_dir = tempfile.mkdtemp(prefix="procmgmt-test-")
        state_dir = own_dir
    import json

    cli: dict[str, Any] = {"state_dir": str(state_dir), "process_manager": backend,
                           "force_disable_user_change": not privileged,
                           "extra_params": json.dumps(dict(extra_params or {}))}
    cli.update(settings_overrides or {})
    settings = resolve(cli, {})
    log = io.StringIO()
    d = Deployment(settings=settings, switcher=Switcher(settings, out=log), log=log)
    marker = str(Path(state_dir).resolve())
    try:
        _switch(d, model)
        for name, meta in d.instances.items():
            port = meta.get("port")
            if isinstance(port, int):
                wait_port(port, ready_timeout)
            del name
        yield d
    finally:
        try:
            _switch(d, None)
        finally:
            left = _wait_gone(marker, leftover_timeout)
            _kill(left)
            if own_dir is not None:
                _rmtree(own_dir)
        if left:
            raise LeftoverProcessesError(f"{len(left)} processes still ran after undeploy "
                                    f"(pids {left}); they were killed. Switch log:\n"
                                    + d.log.getvalue())


def _wait_gone(marker: str, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        left = processes_mentioning(marker)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def _rmtree(path: str) -> None:
    import shutil

    for dirpath, _, _ in os.walk(path):
        with contextlib.suppress(OSError):
            os.chmod(dirpath, 0o755)
    shutil.rmtree(path, ignore_errors=True)


# --- pytest plugin ----------------------------------------------------------------

try:
    import pytest
except ImportError:  # pragma: no cover - the plugin only exists under pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture
    def procmgmt_deploy(tmp_path: Path) -> Iterator[Callable[..., Deployment]]:
        """Factory fixture: ``procmgmt_deploy(model, backend=..., **kw)`` -> Deployment.

        Everything deployed through it is undeployed and checked for leftovers
        when the test ends, pass or fail.
        """
        stack = contextlib.ExitStack()
        count = [0]

        def factory(model: str | os.PathLike[str], **kw: Any) -> Deployment:
            count[0] += 1
            kw.setdefault("state_dir", tmp_path / f"state{count[0]}")
            return stack.enter_context(deployed(model, **kw))

        with stack:
            yield factory
