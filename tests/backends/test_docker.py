"""The docker backend: the generated ``docker create`` plans, the image, and
deployments run for real against a dockerd that procmgmt itself runs.

The rendering tests read the plan files; the end-to-end tests (marked e2e,
root only) start one dockerd from the catalogue (:mod:`procmgmt.services.dockerd`)
with the sysvinit backend, on its own socket, data root and exec root under
a private directory, deploy the webapps example into it with the docker
backend (curl on 127.0.0.1), upgrade, roll back and undeploy, and check
that no container is left. The module shares that one dockerd (its vfs
storage makes every start slow), and the fixture undeploys it and makes
sure, by PID, that dockerd and its containerd are gone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from procmgmt.backends import get_backend
from procmgmt.backends._activation import CommandResult
from procmgmt.backends.base import BuildContext, Ordering, Privilege
from procmgmt.backends.docker import rootfs
from procmgmt.backends.docker.activator import DockerActivator, user_options
from procmgmt.backends.docker.backend import container_name, state_mounts
from procmgmt.backends.docker.plan import create_options, restart_option
from procmgmt.deploy.build import RenderResult, evaluate, render
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.pids import pid_alive
from procmgmt.services.dockerd import dockerd, dockerd_metadata, paths
from procmgmt.settings import Settings
from tests import _lanes
from tests.conftest import EXAMPLES, golden_settings
from tests.e2e.util import Runner, free_port_block, http_get, port_closed, wait_no_leftovers

ADVANCED = EXAMPLES / "webapps" / "processes-advanced.py"
SIMPLE = EXAMPLES / "webapps" / "processes.py"

#: As root the end-to-end tests create the example's accounts (root_env) and a
#: throw-away user, and share one dockerd per module: they run with the other
#: account tests, on one worker (tests/conftest.py).
pytestmark = pytest.mark.xdist_group("accounts")


def rendered(model: Path, extra: dict[str, object] | None = None,
             privileged: bool = False) -> tuple[RenderResult, Settings]:
    settings = dataclasses.replace(golden_settings(privileged, "docker"),
                                   extra_params=extra or {})
    m, specs = evaluate(str(model), settings)
    return render(m, specs, settings, get_backend("docker")), settings


def plan_of(result: RenderResult, name: str) -> dict[str, object]:
    (proc,) = [r for r in result.processes if r.spec.name == name]
    (doc,) = [f for f in proc.files if f.path == f"docker/{name}.json"]
    loaded: dict[str, object] = json.loads(doc.content or "")
    return loaded


def option_values(create: Sequence[str], option: str) -> list[str]:
    """Every value given to ``option`` in a create option list."""
    return [create[i + 1] for i, word in enumerate(create[:-1]) if word == option]


# ------------------------------------------------------------------ rendering


def test_capabilities_say_what_the_backend_does() -> None:
    caps = get_backend("docker").capabilities
    assert caps.ordering is Ordering.ENGINE
    # dockerd as root; runc (tests/backends/test_docker_runc.py) for anyone
    assert caps.privileges == frozenset({Privilege.ROOT, Privilege.UNPRIVILEGED})
    assert caps.deploys


def test_a_foreground_process_is_its_container_command() -> None:
    result, settings = rendered(SIMPLE, {"webapp_mode": "foreground"}, privileged=True)
    doc = plan_of(result, "webapp1")
    create = doc["create"]
    assert isinstance(create, list)
    assert doc["command"] == [sys.executable, str(EXAMPLES / "webapps" / "webapp.py")]
    assert doc["proxy"] is None and doc["user"] == "webapp1"
    assert option_values(create, "--network") == ["host"]
    assert option_values(create, "--pid") == ["host"]
    assert "PORT=5001" in option_values(create, "--env")
    mounts = option_values(create, "--mount")
    assert "type=bind,source=/usr,target=/usr,readonly" in mounts
    assert "type=bind,source=/srv/pm,target=/srv/pm" in mounts
    assert doc["container"] == container_name(settings, "webapp1")
    assert doc["image"] == rootfs.layout().tag


def test_a_daemon_runs_under_the_proxy_and_is_stopped_through_it() -> None:
    result, _ = rendered(SIMPLE, {"webapp_mode": "daemon"})
    doc = plan_of(result, "webapp1")
    assert doc["proxy"] == "bin/webapp1-proxy" and doc["command"] == []
    create = doc["create"]
    assert isinstance(create, list)
    # The proxy traps TERM and forwards the daemon's own stop signal.
    assert option_values(create, "--stop-signal") == ["TERM"]
    (proc,) = [r for r in result.processes if r.spec.name == "webapp1"]
    proxy = next(f for f in proc.files if f.path == "bin/webapp1-proxy")
    assert proxy.mode == 0o755 and "-D" in (proxy.content or "")


def test_lifecycle_maps_to_restart_and_stop_timeout() -> None:
    result, _ = rendered(Path(__file__).parents[1] / "fixtures" / "lifecycle" / "processes.py")
    keeper = plan_of(result, "keeper")["create"]
    assert isinstance(keeper, list)
    assert option_values(keeper, "--restart") == ["always"]
    assert option_values(keeper, "--stop-timeout") == ["5"]
    assert any("restart_max 3 is dropped" in w for w in result.warnings)
    assert restart_option("on-failure", 4) == "on-failure:4"
    assert restart_option("always", None) == "always"


def test_log_rotation_settings_become_json_file_options() -> None:
    settings = dataclasses.replace(golden_settings(False, "docker"), log_max_bytes=4096,
                                   log_backups=2)
    m, specs = evaluate(str(SIMPLE), settings)
    result = render(m, specs, settings, get_backend("docker"))
    create = plan_of(result, "webapp1")["create"]
    assert isinstance(create, list)
    assert option_values(create, "--log-opt") == ["max-file=3", "max-size=4096"]
    assert "--log-opt" not in plan_of(rendered(SIMPLE)[0], "webapp1")["create"]  # type: ignore[operator]


def test_containers_of_two_deployments_have_different_names() -> None:
    one = golden_settings(False, "docker")
    other = dataclasses.replace(one, profile="other")
    assert container_name(one, "web") != container_name(other, "web")
    assert container_name(one, "web").startswith("procmgmt-web-")


def test_state_mounts_leave_out_nested_directories() -> None:
    settings = dataclasses.replace(golden_settings(False, "docker"), tmp_dir="/tmp/x")
    assert state_mounts(settings) == ["/srv/pm", "/tmp/x"]


def test_executables_outside_the_mounts_are_warned_about(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.delenv("PROCMGMT_DOCKER_MOUNTS", raising=False)
    result, _ = rendered(SIMPLE, {"webapp_mode": "foreground"})
    outside = not sys.executable.startswith("/usr/")
    assert any("PROCMGMT_DOCKER_MOUNTS" in w for w in result.warnings) == outside
    monkeypatch.setenv("PROCMGMT_DOCKER_MOUNTS", os.path.dirname(sys.executable))
    result, _ = rendered(SIMPLE, {"webapp_mode": "foreground"})
    assert not any("PROCMGMT_DOCKER_MOUNTS" in w for w in result.warnings)
    mounts = option_values(plan_of(result, "webapp1")["create"], "--mount")  # type: ignore[arg-type]
    assert (f"type=bind,source={os.path.dirname(sys.executable)},"
            f"target={os.path.dirname(sys.executable)},readonly") in mounts


def test_a_mount_path_docker_cannot_carry_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from procmgmt.errors import ValidationError

    monkeypatch.setenv("PROCMGMT_DOCKER_MOUNTS", "/opt/a,b")
    with pytest.raises(ValidationError, match="docker cannot mount '/opt/a,b'"):
        rendered(SIMPLE)


def test_create_options_are_in_a_fixed_order() -> None:
    native = {"container": "c", "labels": {"b": "2", "a": "1"}, "environment": {"X": "a=b"},
              "mounts": [{"source": "/s", "target": "/t", "readonly": True}],
              "restart": "on-failure", "restart_max": 2, "stop_signal": "INT",
              "stop_timeout": 3, "workdir": "/w"}
    assert create_options(native) == [
        "--name", "c", "--label", "a=1", "--label", "b=2", "--network", "host",
        "--pid", "host", "--workdir", "/w", "--env", "X=a=b",
        "--mount", "type=bind,source=/s,target=/t,readonly",
        "--restart", "on-failure:2", "--stop-signal", "INT", "--stop-timeout", "3"]


def test_the_image_is_the_same_bytes_every_time() -> None:
    layout = rootfs.layout()
    data = rootfs.tar_bytes(layout)
    assert data == rootfs.tar_bytes(layout)
    with tarfile.open(fileobj=__import__("io").BytesIO(data)) as tar:
        names = {m.name: m for m in tar.getmembers()}
    assert names["tmp"].mode == 0o1777 and names["etc/passwd"].isfile()
    for name, target in rootfs.host_links():
        assert names[name].issym() and names[name].linkname == target
    assert layout.tag == f"{rootfs.REPOSITORY}:{layout.digest()[:16]}"


def test_a_non_merged_layout_mounts_the_top_level_directories(tmp_path: Path) -> None:
    (tmp_path / "usr" / "bin").mkdir(parents=True)
    (tmp_path / "bin").mkdir()
    (tmp_path / "lib").symlink_to("usr/lib")
    assert rootfs.host_links(str(tmp_path)) == (("lib", "usr/lib"),)
    assert rootfs.host_dirs(str(tmp_path)) == ("/usr", "/bin")


# ------------------------------------------------------------------ activator plan


class Recorder:
    """A runner that records docker commands and answers from a script."""

    def __init__(self, answers: dict[str, CommandResult] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.answers = answers or {}

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        self.calls.append(list(argv))
        return self.answers.get(argv[3], CommandResult(0, ""))


def deployed(tmp_path: Path, proxy: bool) -> DeployedProcess:
    (tmp_path / "docker").mkdir()
    doc = {"container": "procmgmt-w-1", "create": ["--name", "procmgmt-w-1"],
           "image": "procmgmt-rootfs:x", "command": [] if proxy else ["/bin/true", "a b"],
           "user": None, "proxy": "bin/w-proxy" if proxy else None}
    (tmp_path / "docker" / "w.json").write_text(json.dumps(doc))
    return DeployedProcess(name="w", hash="h1", path=str(tmp_path), rank=0,
                           extra={"plan": "docker/w.json", "container": "procmgmt-w-1",
                                  "stop_timeout": 7})


def test_start_creates_with_the_hash_label_and_stop_removes(tmp_path: Path) -> None:
    rec = Recorder({"container": CommandResult(1, "Error: No such container: procmgmt-w-1")})
    act = DockerActivator(golden_settings(False, "docker"), runner=rec,
                          client="/usr/bin/docker", socket="/s/docker.sock")
    proc = deployed(tmp_path, proxy=True)
    gen = Generation(backend="docker", path=str(tmp_path), processes=(proc,))
    act.start(gen, proc)
    assert [c[:3] for c in rec.calls] == [["/usr/bin/docker", "-H", "unix:///s/docker.sock"]] * 3
    create = rec.calls[1][3:]
    proxy = f"{tmp_path}/bin/w-proxy"
    assert create == ["create", "--name", "procmgmt-w-1", "--label", "procmgmt.hash=h1",
                      "--mount", f"type=bind,source={proxy},target={proxy},readonly",
                      "procmgmt-rootfs:x", proxy]
    assert rec.calls[2][3:] == ["start", "procmgmt-w-1"]
    rec.calls.clear()
    act.stop(gen, proc)  # inspect says there is none: nothing to stop
    assert [c[3] for c in rec.calls] == ["container"]
    rec.answers = {"container": CommandResult(0, '[{"State": {"Running": true}}]')}
    rec.calls.clear()
    act.stop(gen, proc)
    assert [c[3:] for c in rec.calls][1:] == [["stop", "--time", "7", "procmgmt-w-1"],
                                              ["rm", "--force", "procmgmt-w-1"]]


def test_an_unreachable_dockerd_is_an_error_not_a_missing_container(tmp_path: Path) -> None:
    from procmgmt.errors import DeployError

    down = CommandResult(1, "Cannot connect to the Docker daemon at unix:///s. "
                            "Is the docker daemon running?")
    act = DockerActivator(golden_settings(False, "docker"), runner=Recorder({"container": down}),
                          client="/usr/bin/docker", socket="/s")
    proc = deployed(tmp_path, proxy=False)
    gen = Generation(backend="docker", path=str(tmp_path), processes=(proc,))
    with pytest.raises(DeployError, match="Cannot connect"):
        act.stop(gen, proc)
    status = act.status(gen, proc)
    assert not status.running and "cannot inspect" in status.detail


def test_user_options_are_numeric() -> None:
    assert user_options("root")[:2] == ["--user", "0:0"]
    from procmgmt.errors import DeployError

    with pytest.raises(DeployError, match="no such user"):
        user_options("no-such-user-here")


def test_preflight_refuses_an_unprivileged_deployer(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    act = DockerActivator(golden_settings(False, "docker"), runner=Recorder(),
                          socket=str(tmp_path / "none.sock"))
    proc = deployed(tmp_path, proxy=False)
    gen = Generation(backend="docker", path=str(tmp_path), processes=(proc,))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    (problem,) = act.preflight(gen)
    assert "root only" in problem and "rootless" in problem
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(DockerActivator, "required_tools", lambda self, gen: [])
    (problem,) = act.preflight(gen)
    assert "no dockerd socket" in problem and "PROCMGMT_DOCKER_SOCKET" in problem


# ------------------------------------------------------------------ the catalogue dockerd


def root_settings(state: str) -> Settings:
    return dataclasses.replace(golden_settings(True, "sysvinit"), state_dir=state,
                               runtime_dir=f"{state}/run", lib_dir=f"{state}/lib",
                               calling_user="root")


def test_dockerd_instances_share_no_path() -> None:
    settings = root_settings("/srv/d")
    make = dockerd(settings)
    one, two = make(), make(instance_suffix="2")
    assert one.instance_name == "dockerd" and two.instance_name == "dockerd2"
    args_one, args_two = list(one.foreground_process_args), list(two.foreground_process_args)
    for flag in ("--data-root", "--exec-root", "--pidfile", "-H", "--config-file",
                 "--containerd-namespace"):
        assert args_one[args_one.index(flag) + 1] != args_two[args_two.index(flag) + 1], flag
    assert "--bridge=none" in args_one and "--storage-driver=vfs" in args_one
    p = paths(settings, "dockerd")
    assert dockerd_metadata(settings) == {"socket": p.socket, "data_dir": p.data_root}
    assert one.readiness.command[1:3] == ["-H", f"unix://{p.socket}"]


def test_dockerd_takes_its_paths_as_parameters() -> None:
    proc = dockerd(root_settings("/srv/d"))(data_root="/d", exec_root="/e", pid_file="/p",
                                            socket="/s.sock")
    args = list(proc.foreground_process_args)
    assert args[:8] == ["--data-root", "/d", "--exec-root", "/e", "--pidfile", "/p",
                        "-H", "unix:///s.sock"]


def test_dockerd_refuses_an_unprivileged_deployment() -> None:
    settings = dataclasses.replace(root_settings("/srv/d"), calling_user="someone")
    with pytest.raises(ValueError, match="root only"):
        dockerd(settings)()


# ------------------------------------------------------------------ end to end

DOCKERD_MODEL = """\
from procmgmt import Instance
from procmgmt.services.dockerd import dockerd, dockerd_metadata

def processes(settings):
    make = dockerd(settings)
    out = {}
    for suffix in ("", "2"):
        proc = make(instance_suffix=suffix)
        out[proc.instance_name] = Instance(
            proc, **dockerd_metadata(settings, instance_suffix=suffix))
    return out
"""


@dataclasses.dataclass
class Dockerd:
    """The module's dockerd: its socket and the client to ask it with (and the
    socket of a second instance deployed beside it)."""

    socket: str
    client: str
    root: Path
    other_socket: str

    def docker(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.client, "-H", f"unix://{self.socket}", *args],
                              capture_output=True, text=True, check=False, timeout=120)


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError), open(f"/proc/{entry}/stat") as f:
                parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
    found, todo = [], [pid]
    while todo:
        cur = todo.pop()
        kids = [p for p, pp in parents.items() if pp == cur]
        found += kids
        todo += kids
    return found


def mounts_under(root: Path) -> list[str]:
    """Mount points below ``root``, deepest first: dockerd keeps its default network
    namespace mounted at ``<exec root>/netns/default`` after it exits."""
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(f"{root}/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)


@pytest.fixture(scope="module")
def docker_daemon() -> Iterator[Dockerd]:
    """One dockerd, deployed from the catalogue with sysvinit under a private short
    directory (unix socket paths below it must stay under 107 bytes); undeployed
    afterwards, and whatever of it survives is killed by PID (and fails the test)."""
    _lanes.require_root("dockerd runs as root")
    _lanes.require_tool("dockerd")
    client = _lanes.require_tool("docker")
    root = Path(tempfile.mkdtemp(prefix="pmd-", dir="/tmp"))
    state = root / "d"
    model = root / "dockerd.py"
    model.write_text(DOCKERD_MODEL, encoding="utf-8")
    run = Runner(state, "sysvinit", "{}")
    settings = root_settings(str(state))
    p, p2 = paths(settings, "dockerd"), paths(settings, "dockerd2")
    pids: list[int] = []
    try:
        run("switch", model, timeout=180)
        for pid_file in (p.pid_file, p2.pid_file):
            pid = int(Path(pid_file).read_text().strip())
            pids += [pid, *_children(pid)]
        yield Dockerd(p.socket, client, root, p2.socket)
    finally:
        run("switch", "--undeploy", check=False, timeout=180)
        deadline = time.monotonic() + 30
        while any(pid_alive(x) for x in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [x for x in pids if pid_alive(x)]
        for x in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(x, signal.SIGKILL)
        for point in mounts_under(root):
            subprocess.run(["umount", "-l", point], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
        assert not left, f"dockerd processes left after the undeploy: {left}"




@pytest.fixture
def docker_env(docker_daemon: Dockerd, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Dockerd, Path]]:
    """The daemon and a private state dir; containers of it left afterwards fail the test
    (and are removed)."""
    monkeypatch.setenv("PROCMGMT_DOCKER_SOCKET", docker_daemon.socket)
    state = tmp_path / "s"
    yield docker_daemon, state
    ids = docker_daemon.docker("ps", "-aq", "--filter",
                               f"label=procmgmt.deployment={state}:processes").stdout.split()
    if ids:
        docker_daemon.docker("rm", "--force", *ids)
    assert not ids, f"containers left behind: {ids}"


@pytest.mark.e2e
def test_two_catalogue_dockerds_coexist(docker_daemon: Dockerd) -> None:
    """Two instances from one constructor run side by side, each with its own data root,
    and a container created in one is not seen by the other."""
    def ask(socket: str, *args: str) -> str:
        return subprocess.run([docker_daemon.client, "-H", f"unix://{socket}", *args],
                              capture_output=True, text=True, check=True, timeout=60).stdout
    roots = {ask(s, "info", "--format", "{{.DockerRootDir}}").strip()
             for s in (docker_daemon.socket, docker_daemon.other_socket)}
    assert len(roots) == 2 and all(r.startswith(str(docker_daemon.root)) for r in roots)
    assert ask(docker_daemon.other_socket, "ps", "-aq") == ""


@pytest.mark.e2e
def test_webapps_lifecycle_in_docker(docker_env: tuple[Dockerd, Path],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Deploy the advanced webapps (dependency order, readiness), upgrade to the simple
    model, roll back, undeploy: nothing is left, and a switch restarts only what changed."""
    daemon, state = docker_env
    base = free_port_block(7)
    monkeypatch.setenv("PROCMGMT_DOCKER_CLIENT", daemon.client)
    monkeypatch.setenv("PROCMGMT_DOCKER_MOUNTS", ":".join(
        sorted({sys.prefix, sys.base_prefix, str(EXAMPLES)})))
    run = Runner(state, "docker", json.dumps({"port_base": base}))
    out = run("switch", ADVANCED, timeout=300).stdout
    ready = [ln.split()[1] for ln in out.splitlines() if ln.startswith("ready ")]
    for dep, name in (("webapp1", "webapp2"), ("webapp1", "webapp3"), ("webapp2", "webapp4"),
                      ("webapp3", "webapp4"), ("webapp5", "webapp6")):
        assert ready.index(dep) < ready.index(name), out
    for i in range(1, 7):
        assert f"listening on port: {base + i}" in (http_get(base + i) or "")
    curl = subprocess.run(["curl", "-sf", f"http://127.0.0.1:{base + 4}/"], capture_output=True,
                          text=True, check=False) if shutil.which("curl") else None
    assert curl is None or "instance: webapp4" in curl.stdout
    status = json.loads(run("status", "--json").stdout)["processes"]
    assert all(p["running"] for p in status), status
    names = daemon.docker("ps", "--format", "{{.Names}}", "--filter",
                          f"label=procmgmt.deployment={state}:processes").stdout.split()
    assert len(names) == 6
    created = {n: daemon.docker("inspect", "--format", "{{.Created}}", n).stdout for n in names}

    # Switching to the simple model keeps webapp1's container (same files).
    run("switch", "--replace", SIMPLE, timeout=300)
    assert f"listening on port: {base}" in (http_get(base) or "")
    assert port_closed(base + 4)
    kept = next(n for n in names if n.startswith("procmgmt-webapp1-"))
    assert daemon.docker("inspect", "--format", "{{.Created}}", kept).stdout == created[kept]

    run("switch", "--rollback", timeout=300)
    assert f"listening on port: {base + 4}" in (http_get(base + 4) or "")
    assert port_closed(base)

    run("switch", "--undeploy", timeout=300)
    assert daemon.docker("ps", "-aq", "--filter",
                         f"label=procmgmt.deployment={state}:processes").stdout.split() == []
    assert wait_no_leftovers(str(state)) == []
    for i in range(1, 7):
        assert port_closed(base + i)


@pytest.mark.e2e
def test_webapps_run_as_their_own_users_in_docker(docker_daemon: Dockerd,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """As root with user changes, from a world-readable copy of procmgmt run by Debian's
    python (under /usr, so visible in every container): each webapp's container
    process has its own user's uid and gid (``--user UID:GID`` looked up after the
    switch created the account); undeploy removes containers and accounts."""
    from tests.e2e.test_root import assert_accounts, assert_runs_as_own_user, root_env

    monkeypatch.setenv("PROCMGMT_DOCKER_SOCKET", docker_daemon.socket)
    monkeypatch.setenv("PROCMGMT_DOCKER_CLIENT", docker_daemon.client)
    with root_env("docker") as env:
        monkeypatch.setenv("PROCMGMT_DOCKER_MOUNTS", str(env.root))
        names = [f"webapp{i}" for i in range(1, 7)]
        env.run("switch", env.examples / "processes-advanced.py")
        assert_runs_as_own_user(env, names)
        assert f"listening on port: {env.base + 6}" in (http_get(env.base + 6) or "")
        env.run("switch", "--undeploy")
        assert docker_daemon.docker(
            "ps", "-aq", "--filter",
            f"label=procmgmt.deployment={env.state}:processes").stdout.split() == []
        assert_accounts([], names)


@pytest.mark.e2e
def test_daemon_only_processes_run_under_the_proxy(docker_env: tuple[Dockerd, Path],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Daemon-only webapps: the proxy in the container waits for the pid file (a host
    pid, as the container shares the host's pid namespace) and stays in the foreground;
    status reports the container's process; undeploy stops the daemons too."""
    daemon, state = docker_env
    base = free_port_block(3)
    monkeypatch.setenv("PROCMGMT_DOCKER_CLIENT", daemon.client)
    monkeypatch.setenv("PROCMGMT_DOCKER_MOUNTS", ":".join(
        sorted({sys.prefix, sys.base_prefix, str(EXAMPLES)})))
    run = Runner(state, "docker", json.dumps({"port_base": base, "webapp_mode": "daemon"}))
    run("switch", SIMPLE, timeout=300)
    body = http_get(base + 1) or ""
    assert "instance: webapp1" in body
    pid_file = state / "run" / "procmgmt-pid" / "webapp1" / "webapp1.pid"
    daemon_pid = int(pid_file.read_text().strip())
    assert pid_alive(daemon_pid)
    run("switch", "--undeploy", timeout=300)
    assert not pid_alive(daemon_pid)
    assert port_closed(base + 1)


@pytest.mark.e2e
def test_an_unprivileged_user_is_refused_before_anything_happens(docker_daemon: Dockerd
                                                                 ) -> None:
    """A throw-away ordinary user choosing the docker runtime (the module's dockerd):
    the pre-flight refuses, saying why (root only) and what works (rootless runc); no
    container is made."""
    from tests.e2e.util import other_user_tree

    _lanes.require_system_python()
    root = Path(tempfile.mkdtemp(prefix="pmdu-", dir="/tmp"))
    try:
        with other_user_tree(root) as (user, tree, pythonpath):
            state = root / "home" / "state"
            run = Runner(state, "docker", json.dumps({"port_base": free_port_block(2)}),
                         python="/usr/bin/python3", pythonpath=pythonpath, user=user)
            argv, env = run.command("switch", tree / "examples" / "webapps" / "processes.py")
            env["PROCMGMT_DOCKER_SOCKET"] = docker_daemon.socket
            env["PROCMGMT_DOCKER_RUNTIME"] = "docker"
            proc = subprocess.run(argv, capture_output=True, text=True, env=env,
                                  check=False, timeout=120)
            assert proc.returncode != 0, proc.stdout
            assert "root only" in proc.stderr and "rootless" in proc.stderr, proc.stderr
            assert "Traceback" not in proc.stderr
            assert docker_daemon.docker("ps", "-aq", "--filter",
                                        f"label=procmgmt.deployment={state}:processes"
                                        ).stdout.split() == []
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.e2e
def test_a_dead_dockerd_socket_is_a_preflight_error(tmp_path: Path) -> None:
    """A socket nothing listens on: the switch stops nothing and names the setting."""
    if os.geteuid() != 0:
        pytest.skip("as root only: unprivileged, the pre-flight refuses before the socket")
    model = tmp_path / "m.py"
    model.write_text(textwrap.dedent("""\
        from procmgmt import Process
        def processes(settings):
            return {"s": Process(name="s", foreground_process="/bin/sleep",
                                 foreground_process_args=["100"])}
        """))
    env = {**os.environ, "PROCMGMT_DOCKER_SOCKET": str(tmp_path / "none.sock")}
    proc = subprocess.run([sys.executable, "-m", "procmgmt", "switch", "-P", "docker",
                           "--state-dir", str(tmp_path / "s"), str(model)],
                          capture_output=True, text=True, env=env, check=False, timeout=60)
    assert proc.returncode != 0
    assert "no dockerd socket" in proc.stderr and "Traceback" not in proc.stderr


def test_unprivileged_settings_without_user_change_still_render(tmp_path: Path) -> None:
    """The build needs no dockerd: ``generate -P docker`` works anywhere."""
    result, _ = rendered(SIMPLE)
    assert {r.spec.name for r in result.processes} == {"webapp", "webapp1"}
    ctx = BuildContext(golden_settings(False, "docker"), {})
    assert get_backend("docker").validate([], ctx) == []
