"""Every catalogue service, deployed for real: the deployment marker and how each one stops.

- Every process procmgmt starts carries ``PROCMGMT_DEPLOYMENT`` and
  ``PROCMGMT_PROCESS`` (docs/guarantees.md §5), and ``procmgmt doctor``
  finds a process by them. Here every service of the catalogue is deployed
  (``models/catalogue.py``, one instance each) and the main process of each
  must be one ``doctor`` sees as marked, with its own name; where the
  server keeps its environment, ``/proc/<pid>/environ`` itself carries both
  variables, in the main process and in every child it forks.
- PostgreSQL stops with a fast shutdown: with an idle client connected a
  smart shutdown (SIGTERM) waits for the client until the stop timeout
  ends it with SIGKILL, and the next start runs crash recovery.

As root the deployment is privileged (PostgreSQL refuses to run as root),
so each instance runs as its own account, created and removed by the
switch: run it under the machine-wide account lock
(``flock /tmp/pm-root-tests.lock``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from procmgmt.deploy.build import evaluate
from procmgmt.deploy.doctor import marked_processes
from procmgmt.pids import MARKER_DEPLOYMENT, MARKER_PROCESS
from procmgmt.testing import Deployment, deployed
from procmgmt.validate import deployment_id
from tests.conftest import golden_settings
from tests.e2e.util import free_port_block

MODEL = Path(__file__).resolve().parent / "models" / "catalogue.py"
#: As root the catalogue creates its instances' accounts (fixed names, e.g. ``nginxt``),
#: as tests/services/test_databases.py does: one worker for both.
pytestmark = pytest.mark.xdist_group("accounts")

BACKENDS = ("sysvinit", "supervisord")
PROGRAMS = {"postgresql": "/usr/lib/postgresql/15/bin/postgres", "redis": "redis-server",
            "mariadb": "mariadbd", "memcached": "memcached", "nginx": "nginx",
            "apache": "apache2", "supervisord": None, "s6-svscan": "s6-svscan"}
#: Servers that rewrite their process title over the memory /proc/<pid>/environ
#: shows (setproctitle): their marker is read from the command line (doctor does).
TITLE_REWRITERS = {"nginx"}
#: Servers whose children rewrite their title (PostgreSQL backends, nginx workers):
#: the children are explained as descendants of the marked main process.
CHILD_TITLE_REWRITERS = {"nginx", "postgresql"}


def installed(service: str) -> bool:
    """True when the service's server program is installed."""
    program = PROGRAMS[service]
    if program is None:
        return True
    if os.path.isabs(program):
        return os.access(program, os.X_OK) or shutil.which("postgres") is not None
    return shutil.which(program, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") \
        is not None


def environ(pid: int) -> dict[str, str]:
    """The environment /proc shows for ``pid``."""
    with open(f"/proc/{pid}/environ", "rb") as f:
        raw = f.read()
    out = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            out[key.decode(errors="replace")] = value.decode(errors="replace")
    return out


def children(pid: int) -> list[int]:
    """Every live descendant of ``pid``."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        path = f"/proc/{parent}/task/{parent}/children"
        try:
            with open(path) as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            kids = []
        found += kids
        todo += kids
    return found


@contextlib.contextmanager
def catalogue(backend: str, services: list[str], **params: Any) -> Iterator[Deployment]:
    """The catalogue model deployed by the current user (privileged as root)."""
    missing = [s for s in services if not installed(s)]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")
    privileged = os.geteuid() == 0
    # Short (supervisord's unix socket lives below it) and, privileged,
    # traversable by the instance accounts.
    state = tempfile.mkdtemp(prefix="pmcat-", dir="/tmp")
    os.chmod(state, 0o755)
    try:
        with deployed(MODEL, backend=backend, state_dir=state, privileged=privileged,
                      extra_params={"port_base": free_port_block(8), "services": services,
                                    **params}) as d:
            yield d
    finally:
        shutil.rmtree(state, ignore_errors=True)


@pytest.mark.e2e
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_service_carries_the_marker(backend: str) -> None:
    """The main process of every catalogue service is marked with its deployment and name."""
    services = [s for s in PROGRAMS if installed(s)]
    with catalogue(backend, services) as d:
        want = deployment_id(d.settings)
        marked = marked_processes(d.settings)
        problems = []
        for name, (running, pid) in sorted(d.status().items()):
            assert running and pid, f"{name} is not running"
            kind = name[:-1]
            if marked.get(pid) != name:
                problems.append(f"{name} (pid {pid}): doctor sees "
                                f"{marked.get(pid, 'no marker')!r}")
            if kind not in TITLE_REWRITERS:
                env = environ(pid)
                if env.get(MARKER_DEPLOYMENT) != want or env.get(MARKER_PROCESS) != name:
                    problems.append(f"{name} (pid {pid}): /proc environ has "
                                    f"{env.get(MARKER_DEPLOYMENT)!r}, "
                                    f"{env.get(MARKER_PROCESS)!r}")
            if kind not in CHILD_TITLE_REWRITERS:
                for child in children(pid):
                    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                        if environ(child).get(MARKER_DEPLOYMENT) != want:
                            problems.append(f"{name}: child {child} is not marked")
        assert not problems, "\n".join(problems)


def _postgres_log(d: Deployment, name: str) -> str:
    """Everything PostgreSQL logged so far (its log file or the captured output)."""
    text = ""
    for root in (d.settings.log_dir, d.settings.tmp_dir):
        for dirpath, _, files in os.walk(root):
            for f in files:
                if name in os.path.join(dirpath, f):
                    with contextlib.suppress(OSError):
                        text += Path(dirpath, f).read_text(errors="replace")
    return text


@pytest.mark.e2e
@pytest.mark.parametrize("backend", BACKENDS)
def test_postgresql_fast_shutdown_with_an_idle_client(backend: str) -> None:
    """A config change restarts PostgreSQL quickly despite an idle client, without crash
    recovery: the stop is a fast shutdown, not a smart one ended by SIGKILL."""
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed")
    with catalogue(backend, ["postgresql"]) as d:
        name = "postgresqlt"
        meta = d.instances[name]
        before = d.status()[name][1]
        client = subprocess.Popen(
            [psql, "-X", "-h", meta["socket_dir"], "-p", str(meta["port"]), "-U", "postgres",
             "-d", "postgres"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        try:
            assert client.stdin is not None
            client.stdin.write(b"select 1;\n")
            client.stdin.flush()
            time.sleep(0.5)
            assert client.poll() is None, "the idle client did not stay connected"
            # A changed postgresql.conf: the switch restarts PostgreSQL.
            start = time.monotonic()
            d.switch(MODEL, extra_params={**d.settings.extra_params,
                                          "pg_config": {"work_mem": "5MB"}})
            took = time.monotonic() - start
        finally:
            client.kill()
            client.wait(10)
        after = d.status()[name][1]
        assert after and after != before, "the config change did not restart PostgreSQL"
        log = _postgres_log(d, name)
        assert "fast shutdown request" in log, log[-2000:]
        assert "database system was not properly shut down" not in log, log[-2000:]
        assert "automatic recovery in progress" not in log, log[-2000:]
        assert took < 5, f"the switch took {took:.1f} s"
        print(f"\n{backend}: PostgreSQL restarted with an idle client in {took:.2f} s")


#: The stop signal each service's documentation gives for a clean, prompt stop.
DOCUMENTED_STOP = {"postgresql": "INT", "redis": "TERM", "mariadb": "TERM",
                   "memcached": "TERM", "nginx": "QUIT", "apache": "WINCH",
                   "supervisord": "TERM", "s6-svscan": "TERM"}


def test_every_service_chooses_its_stop_signal() -> None:
    """Each constructor sets its stop signal explicitly (None would be the generic TERM)."""
    settings = dataclasses.replace(golden_settings(False),
                                   extra_params={"port_base": 40000})
    model, _ = evaluate(str(MODEL), settings)
    got = {name[:-1]: inst.process.stop_signal for name, inst in model.instances.items()}
    assert got == DOCUMENTED_STOP


def test_postgresql_bsdrc_script_looks_for_postgres() -> None:
    """Daemon mode runs pg_ctl, but postmaster.pid names postgres: the BSD rc script's
    ``procname`` says so, or rc.subr's status and stop would not find the server."""
    from procmgmt.backends import get_backend
    from procmgmt.deploy.build import render
    from procmgmt.services.postgresql import bin_dir

    settings = dataclasses.replace(golden_settings(False, "bsdrc"),
                                   extra_params={"port_base": 40000,
                                                 "services": ["postgresql"]})
    model, specs = evaluate(str(MODEL), settings)
    result = render(model, specs, settings, get_backend("bsdrc"))
    [script] = [f.content or "" for r in result.processes for f in r.files
                if f.path.startswith("etc/rc.d/")]
    assert f"\ncommand={bin_dir()}/pg_ctl\n" in script
    assert f"\nprocname={bin_dir()}/postgres\n" in script
