"""PostgreSQL, Redis, MariaDB and memcached from the catalogue, deployed for real.

Each test deploys ``models/databases.py`` (two instances of one service,
side by side) with a real backend, talks to both instances with the
service's own client, stores something in instance 1 of the databases,
undeploys and redeploys (initialization must not run again: the data
survives), undeploys and checks that no process of the deployment is left.

Who deploys:

- ``test_unprivileged``: a non-root deployer with user changes disabled.
  When the tests run as root this is a throw-away system user running the
  procmgmt CLI (PostgreSQL refuses to run as root, and a root deployer
  would not prove that the constructors work unprivileged); otherwise it
  is the current user through :func:`procmgmt.testing.deployed`.
- ``test_root_without_user_change``: root deploys with user changes
  disabled, so the servers run as root (memcached then needs ``-u root``,
  mariadbd ``--user=root``). PostgreSQL refuses root by design: skipped.
- ``test_forced_mode``: the mode the backend would not pick by itself
  (sysvinit with foreground processes it daemonizes itself, supervisord
  with self-daemonizing processes behind its proxy).

Startup time (switch until every instance is ready, the first time with
one-time initialization and again after a redeploy) is printed at the end
of the module. Needs the Debian packages postgresql (postgresql-15),
redis-server (with redis-tools), mariadb-server (with mariadb-client) and
memcached; a service whose server binary is missing is skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from procmgmt.deploy.build import evaluate
from procmgmt.settings import resolve
from procmgmt.testing import deployed
from tests import _lanes
from tests.e2e.util import (
    REPO,
    Runner,
    free_port_block,
    kill_leftovers,
    other_user_tree,
    port_closed,
    wait_http,
    wait_no_leftovers,
)

#: As root the module creates a throw-away account (``other_user``, module-scoped)
#: for its unprivileged deployments: it runs with the other account tests
#: (tests/conftest.py), on one worker, which also creates that account once.
pytestmark = pytest.mark.xdist_group("accounts")

MODEL = Path(__file__).resolve().parent / "models" / "databases.py"
EXAMPLE = REPO / "examples" / "services" / "processes.py"
SERVICES = ("postgresql", "redis", "mariadb", "memcached")
BACKENDS = ("sysvinit", "supervisord")
#: Services whose server refuses to run as root.
REFUSES_ROOT = {"postgresql": "initdb and postgres refuse to run as root by design "
                              "(\"root\" execution of the PostgreSQL server is not permitted)"}
#: Services whose data must survive a redeploy (one-time initialization).
PERSISTENT = ("postgresql", "mariadb")
#: Services that can run in the foreground and as a self-daemonizing process.
BOTH_MODES = ("postgresql", "redis", "memcached")

TIMINGS: list[tuple[str, str, str, str, float, float]] = []


#: The server and client programs each service's tests run (tests/_lanes.py TOOLS).
PROGRAMS = {"postgresql": ("postgres", "psql"), "redis": ("redis-server", "redis-cli"),
            "mariadb": ("mariadbd", "mariadb"), "memcached": ("memcached",)}


def require(service: str) -> None:
    """Skip, naming the package, when the service's server or client is not installed."""
    for program in PROGRAMS[service]:
        _lanes.require_tool(program)


# --- talking to the servers with their own clients -----------------------------------

def run(*argv: str) -> str:
    """stdout of a client command; fails the test with its stderr on a non-zero exit."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr}"
    return proc.stdout


def psql(meta: dict[str, Any], sql: str, tcp: bool = False) -> str:
    """Run ``sql`` with psql over the instance's unix socket (or 127.0.0.1)."""
    host = "127.0.0.1" if tcp else meta["socket_dir"]
    return run("psql", "-X", "-h", host, "-p", str(meta["port"]), "-U", "postgres", "-d",
               "postgres", "-Atc", sql)


def mariadb_sql(meta: dict[str, Any], sql: str, tcp: bool = False) -> str:
    """Run ``sql`` with the mariadb client over the socket (or 127.0.0.1)."""
    where = ["-h", "127.0.0.1", "-P", str(meta["port"]), "--protocol=tcp"] if tcp \
        else ["-S", meta["socket"]]
    return run("mariadb", "--no-defaults", *where, "-u", "root", "-N", "-e", sql)


def memcached_command(port: int, command: bytes) -> bytes:
    """One memcached text-protocol exchange; the reply up to its final CRLF."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(command)
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


def check_instance(service: str, name: str, meta: dict[str, Any]) -> None:
    """The instance answers its real client, with the configuration the model gave it."""
    port = meta["port"]
    if service == "postgresql":
        listing = run("psql", "-X", "-h", meta["socket_dir"], "-p", str(port), "-U", "postgres",
                      "-l")
        assert "template1" in listing and "postgres" in listing
        assert os.path.exists(meta["socket"]), "the socket is not where the metadata says"
        assert psql(meta, "select 1", tcp=True).strip() == "1"
        # Type-aware quoting of postgresql.conf: a string with a quote and a backslash,
        # a bool and a number came through.
        assert psql(meta, "show procmgmt.test").strip() == "it's \\ quoted"
        assert psql(meta, "show fsync").strip() == "off"
        assert psql(meta, "show max_connections").strip() == "20"
    elif service == "redis":
        assert run("redis-cli", "-h", "127.0.0.1", "-p", str(port), "ping").strip() == "PONG"
        got = run("redis-cli", "-h", "127.0.0.1", "-p", str(port), "config", "get", "maxmemory")
        assert got.split() == ["maxmemory", str(16 * 1024 * 1024)]
        got = run("redis-cli", "-h", "127.0.0.1", "-p", str(port), "config", "get", "dir")
        assert got.split() == ["dir", meta["data_dir"]]
    elif service == "mariadb":
        databases = mariadb_sql(meta, "show databases").split()
        assert "mysql" in databases and "test" not in databases
        assert mariadb_sql(meta, "select @@port", tcp=True).strip() == str(port)
        assert mariadb_sql(meta, "select @@max_connections").strip() == "20"
    elif service == "memcached":
        assert memcached_command(port, b"version\r\n").startswith(b"VERSION ")
        key = name.encode()
        assert memcached_command(port, b"set %s 0 0 2\r\nok\r\n" % key) == b"STORED\r\n"
        assert memcached_command(port, b"get %s\r\n" % key) == \
            b"VALUE %s 0 2\r\nok\r\nEND\r\n" % key


def store_data(service: str, meta: dict[str, Any]) -> None:
    """Create a database that must survive a redeploy."""
    if service == "postgresql":
        psql(meta, "create database kept")
    elif service == "mariadb":
        mariadb_sql(meta, "create database kept")


def data_kept(service: str, meta: dict[str, Any]) -> bool:
    """True when the database of :func:`store_data` is still there."""
    if service == "postgresql":
        return "kept" in psql(meta, "select datname from pg_database").split()
    return "kept" in mariadb_sql(meta, "show databases").split()


# --- the scenario, for any way of deploying -------------------------------------------

@dataclass
class Deployer:
    """How a test deploys: ``switch(True)`` deploys the model, ``switch(False)`` undeploys."""

    switch: Callable[[bool], None]
    instances: dict[str, dict[str, Any]]
    who: str
    #: name -> (running, pid), where the deployer can tell.
    status: Callable[[], dict[str, tuple[bool, int | None]]] | None = None


def scenario(service: str, backend: str, mode: str | None, d: Deployer) -> None:
    """Deploy, check both instances, store data, redeploy, check the data, undeploy."""
    start = time.monotonic()
    d.switch(True)
    first = time.monotonic() - start
    assert sorted(d.instances) == [f"{service}1", f"{service}2"]
    for name, meta in d.instances.items():
        check_instance(service, name, meta)
    ports = [meta["port"] for meta in d.instances.values()]
    assert len(set(ports)) == 2
    if service in PERSISTENT:
        store_data(service, d.instances[f"{service}1"])
    d.switch(False)
    for port in ports:
        assert port_closed(port), f"port {port} still open after undeploy"
    start = time.monotonic()
    d.switch(True)
    second = time.monotonic() - start
    for name, meta in d.instances.items():
        check_instance(service, name, meta)
    if service in PERSISTENT:
        assert data_kept(service, d.instances[f"{service}1"]), \
            "the data did not survive a redeploy: initialization ran again"
    TIMINGS.append((service, backend, mode or "auto", d.who, first, second))


def current_user() -> str:
    """Who runs the tests, for the timing report."""
    return pwd.getpwuid(os.geteuid()).pw_name


def extra(service: str, base: int, mode: str | None) -> dict[str, Any]:
    """The model's extra params."""
    params: dict[str, Any] = {"service": service, "port_base": base}
    if mode:
        params["mode"] = mode
    return params


def in_process(service: str, backend: str, mode: str | None, who: str,
               privileged: bool = False) -> contextlib.AbstractContextManager[Deployer]:
    """Deploy models/databases.py as the current user."""
    return in_process_model(MODEL, backend, extra(service, free_port_block(2), mode), who,
                            privileged)


@contextlib.contextmanager
def in_process_model(model: Path, backend: str, params: dict[str, Any],
                     who: str, privileged: bool = False) -> Iterator[Deployer]:
    """Deploy as the current user with :func:`procmgmt.testing.deployed` (it checks leftovers).

    Privileged, the state dir must be traversable by the instance users
    (the driver's own temporary dir is 0700), so it is made here.
    """
    with contextlib.ExitStack() as stack:
        holder: dict[str, Any] = {}
        state_dir = None
        if privileged:
            state_dir = tempfile.mkdtemp(prefix="pmsvc-")
            os.chmod(state_dir, 0o755)
            stack.callback(shutil.rmtree, state_dir, ignore_errors=True)

        def switch(up: bool) -> None:
            if "d" not in holder:
                holder["d"] = stack.enter_context(deployed(model, backend=backend,
                                                           extra_params=params,
                                                           privileged=privileged,
                                                           state_dir=state_dir))
            else:
                holder["d"].switch(model if up else None)
            dep.instances = holder["d"].instances if up else {}

        def status() -> dict[str, tuple[bool, int | None]]:
            return dict(holder["d"].status())

        dep = Deployer(switch=switch, instances={}, who=who, status=status)
        yield dep


@dataclass
class OtherUser:
    """A throw-away system user with a world-readable copy of procmgmt and the test model."""

    name: str
    tree: Path
    pythonpath: str
    python: str


@pytest.fixture(scope="module")
def other_user() -> Iterator[OtherUser]:
    """Created once for the module (root only), removed with everything it ran."""
    _lanes.require_root("creates a throw-away user")
    python = _lanes.require_system_python()
    root = Path("/tmp") / f"pmsvc-{os.getpid()}"
    root.mkdir(mode=0o755)
    try:
        with other_user_tree(root) as (user, tree, pythonpath):
            (tree / "models").mkdir(mode=0o755)
            shutil.copy(MODEL, tree / "models" / MODEL.name)
            os.chmod(tree / "models" / MODEL.name, 0o644)
            yield OtherUser(user, tree, pythonpath, python)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def as_other_user(service: str, backend: str, mode: str | None, user: OtherUser,
                  model: Path | None = None,
                  params: dict[str, Any] | None = None) -> Iterator[Deployer]:
    """Deploy with the procmgmt CLI run by the throw-away user (``runuser``).

    ``model`` (inside the user's tree) defaults to the copy of models/databases.py.
    """
    params = params or extra(service, free_port_block(2), mode)
    state = Path(f"/tmp/pmsvc-{os.getpid()}-{service[:5]}-{backend[:4]}")
    state.mkdir(mode=0o755)
    pw = pwd.getpwnam(user.name)
    os.chown(state, pw.pw_uid, pw.pw_gid)
    model = model or user.tree / "models" / MODEL.name
    runner = Runner(state, backend, json.dumps(params), python=user.python,
                    pythonpath=user.pythonpath, user=user.name, cwd=user.tree)
    # The metadata the model gives these instances, evaluated here with the same settings.
    settings = resolve({"state_dir": str(state), "process_manager": backend,
                        "force_disable_user_change": True, "extra_params": json.dumps(params)},
                       {})
    model_obj, _ = evaluate(str(model), settings)
    metadata = {name: dict(inst.metadata) for name, inst in model_obj.instances.items()}

    def switch(up: bool) -> None:
        out = runner("switch", model) if up else runner("switch", "--undeploy")
        del out
        dep.instances = metadata if up else {}

    dep = Deployer(switch=switch, instances={}, who=f"user {user.name} (CLI)")
    try:
        yield dep
        runner("switch", "--undeploy")
        left = wait_no_leftovers(str(state), timeout=15)
        assert left == [], f"processes of the deployment still run after undeploy: {left}"
    finally:
        runner("switch", "--undeploy", check=False)
        kill_leftovers(str(state))
        for dirpath, _, _ in os.walk(state):
            with contextlib.suppress(OSError):
                os.chmod(dirpath, 0o755)
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def report_timings(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print the measured startup times once the module is done (even under capture)."""
    yield
    if not TIMINGS:
        return
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    lines = ["", "startup (switch until ready), seconds: first deploy incl. one-time init / "
             "redeploy"]
    for service, backend, mode, who, first, second in TIMINGS:
        again = f"{second:5.2f}" if second else "    -"
        lines.append(f"  {service:<10} {backend:<11} {mode:<10} {first:6.2f} / {again}"
                     f"   deployed by {who}")
    if reporter is None or capture is None:
        print("\n".join(lines))
        return
    with capture.global_and_fixture_disabled():
        for line in lines:
            reporter.write_line(line)


# --- the tests -----------------------------------------------------------------------

@pytest.mark.e2e
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("service", SERVICES)
def test_unprivileged(service: str, backend: str, request: pytest.FixtureRequest) -> None:
    """Two instances deployed by a non-root user (user changes disabled) work and leave nothing.

    As root the deployer is a throw-away user running the CLI; otherwise the
    current user through the public test driver.
    """
    require(service)
    if os.geteuid() == 0:
        user = request.getfixturevalue("other_user")
        with as_other_user(service, backend, None, user) as d:
            scenario(service, backend, None, d)
    else:
        with in_process(service, backend, None, current_user()) as d:
            scenario(service, backend, None, d)


@pytest.mark.e2e
@pytest.mark.root("only meaningful as root: test_unprivileged covers other users")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("service", SERVICES)
def test_root_without_user_change(service: str, backend: str) -> None:
    """Root deploys with user changes disabled: the servers run as root and still work."""
    require(service)
    if service in REFUSES_ROOT:
        pytest.skip(f"{service}: {REFUSES_ROOT[service]}")
    with in_process(service, backend, None, "root") as d:
        scenario(service, backend, None, d)


@pytest.mark.e2e
@pytest.mark.parametrize(("backend", "mode"), [("sysvinit", "foreground"),
                                               ("supervisord", "daemon")])
@pytest.mark.parametrize("service", BOTH_MODES)
def test_forced_mode(service: str, backend: str, mode: str,
                     request: pytest.FixtureRequest) -> None:
    """The mode the backend would not choose itself works too (both command lines are right).

    Runs as the current user, except a root-refusing service under root,
    which the throw-away user deploys.
    """
    require(service)
    if os.geteuid() == 0 and service in REFUSES_ROOT:
        user = request.getfixturevalue("other_user")
        with as_other_user(service, backend, mode, user) as d:
            scenario(service, backend, mode, d)
    else:
        with in_process(service, backend, mode, current_user()) as d:
            scenario(service, backend, mode, d)


@pytest.mark.e2e
@pytest.mark.parametrize("backend", [
    *BACKENDS, pytest.param("runit", marks=pytest.mark.requires_tool("runsvdir")),
    pytest.param("s6", marks=pytest.mark.requires_tool("s6-svscan", "execlineb"))])
def test_services_example(backend: str, request: pytest.FixtureRequest) -> None:
    """examples/services (2 PostgreSQL, Redis, MariaDB, nginx, Apache) deploys and answers.

    Deployed by a non-root user (the throw-away user under root, since
    PostgreSQL refuses root), with ports from ``port_base`` (no ids file).
    """
    for service in ("postgresql", "redis", "mariadb"):
        require(service)
    for program in ("nginx", "apache2"):
        _lanes.require_tool(program)
    params = {"port_base": free_port_block(6)}

    def check(d: Deployer) -> None:
        start = time.monotonic()
        d.switch(True)
        TIMINGS.append(("example", backend, "auto", d.who, time.monotonic() - start, 0.0))
        meta = d.instances
        assert sorted(meta) == ["apache", "mariadb", "nginx", "postgresql1", "postgresql2",
                                "redis"]
        for name in ("postgresql1", "postgresql2"):
            assert psql(meta[name], "select current_setting('max_connections')").strip() == "20"
        assert run("redis-cli", "-p", str(meta["redis"]["port"]), "ping").strip() == "PONG"
        assert "mysql" in mariadb_sql(meta["mariadb"], "show databases").split()
        for name, text in (("nginx", "nginx instance nginx"), ("apache", "Apache instance")):
            assert text in wait_http(meta[name]["port"])

    if os.geteuid() == 0:
        user = request.getfixturevalue("other_user")
        with as_other_user("example", backend, None, user,
                           model=user.tree / "examples" / "services" / "processes.py",
                           params=params) as d:
            check(d)
    else:
        with in_process_model(EXAMPLE, backend, params, current_user()) as d:
            check(d)


def process_uid(pid: int) -> int:
    """The real uid of ``pid``."""
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("Uid:")).split()[1])


@contextlib.contextmanager
def instance_accounts(names: list[str]) -> Iterator[None]:
    """System accounts named after the instances, removed afterwards.

    Account creation on deploy is not part of the engine yet; the
    constructors' part (own user, chown in initialize, ``--user``/``-u``)
    is what this test checks. An existing account of that name is not
    touched: the test is skipped instead.
    """
    for name in names:
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            pytest.skip(f"an account named {name} already exists")
    created = []
    try:
        for name in names:
            subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir",
                            "/nonexistent", "--shell", "/usr/sbin/nologin", "--user-group",
                            name], check=True, capture_output=True)
            created.append(name)
        yield
    finally:
        for name in created:
            subprocess.run(["userdel", name], check=False, capture_output=True)


@pytest.mark.e2e
@pytest.mark.root("user changes")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("service", SERVICES)
def test_privileged(service: str, backend: str) -> None:
    """As root with user changes allowed each instance runs as its own user and works."""
    require(service)
    names = [f"{service}1", f"{service}2"]
    with instance_accounts(names), \
            in_process(service, backend, None, "root, privileged", privileged=True) as d:
        scenario(service, backend, None, d)
        assert d.status is not None
        status = d.status()
        for name in names:
            running, pid = status[name]
            assert running and pid
            assert process_uid(pid) == pwd.getpwnam(name).pw_uid, \
                f"{name} does not run as its own user"


@pytest.mark.e2e
@pytest.mark.parametrize("backend", BACKENDS)
def test_mariadb_interrupted_initialization(backend: str, tmp_path: Path) -> None:
    """A first start cut off inside mariadb-install-db is redone, not taken for finished.

    What an interrupted run leaves (a half-made staging dir with a ``mysql``
    schema, an empty data dir from an older version) is planted before the
    deploy; both instances must come up with their root account.
    """
    require("mariadb")
    state = tmp_path / "state"
    for name in ("mariadb1", "mariadb2"):
        half = state / "db" / f"{name}.init" / "mysql"
        half.mkdir(parents=True)
        (half / "global_priv.frm").write_bytes(b"half-made")
        (state / "db" / name).mkdir()
    os.chmod(tmp_path, 0o755)
    with deployed(MODEL, backend=backend, state_dir=state,
                  extra_params=extra("mariadb", free_port_block(2), None)) as d:
        for name, meta in d.instances.items():
            check_instance("mariadb", name, meta)
            assert not (state / "db" / f"{name}.init").exists(), "the staging dir stayed"
