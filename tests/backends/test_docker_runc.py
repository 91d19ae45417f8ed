"""The docker backend's containers under runc: the OCI configs, the runc command plan,
and deployments run for real, rootless as a throw-away ordinary user and as root.

The end-to-end tests deploy the webapps example (curl on 127.0.0.1), upgrade,
roll back and undeploy, and check that neither a process nor runc's state is
left; they also kill a container's process with SIGKILL, take a port, run
under umask 000 and 077, interrupt a switch and run two switches at once.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from procmgmt.backends import get_backend
from procmgmt.backends._activation import CommandResult
from procmgmt.backends.base import Privilege
from procmgmt.backends.docker import oci, rootfs
from procmgmt.backends.docker.activator import DockerActivator
from procmgmt.backends.docker.runc import RuncActivator
from procmgmt.backends.docker.settings import runtime
from procmgmt.deploy.build import evaluate, render
from procmgmt.errors import DeployError, UsageError
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.pids import pid_alive
from tests import _lanes
from tests.conftest import EXAMPLES, golden_settings
from tests.e2e.util import (
    Runner,
    free_port_block,
    http_get,
    other_user_tree,
    port_closed,
    uid_pids,
    wait_no_leftovers,
)

ADVANCED = EXAMPLES / "webapps" / "processes-advanced.py"
SIMPLE = EXAMPLES / "webapps" / "processes.py"

#: The end-to-end tests create a throw-away user or deploy as root with the
#: example's paths: they run with the other account tests, on one worker.
pytestmark = pytest.mark.xdist_group("accounts")


def runc_plan(model: Path, extra: dict[str, object] | None = None,
              privileged: bool = False) -> dict[str, dict[str, object]]:
    """Every process's plan file, by name."""
    settings = dataclasses.replace(golden_settings(privileged, "docker"),
                                   extra_params=extra or {})
    m, specs = evaluate(str(model), settings)
    result = render(m, specs, settings, get_backend("docker"))
    plans = {}
    for proc in result.processes:
        (doc,) = [f for f in proc.files if f.path == f"docker/{proc.spec.name}.json"]
        plans[proc.spec.name] = json.loads(doc.content or "")
    return plans


# ------------------------------------------------------------------ configs


def test_the_plan_carries_the_same_container_for_runc() -> None:
    doc = runc_plan(SIMPLE, {"webapp_mode": "foreground"})["webapp1"]
    block = doc["runc"]
    assert isinstance(block, dict)
    assert block["args"] == doc["command"]
    assert "PORT=5001" in block["env"] and block["env"] == sorted(block["env"])
    assert {"destination": "/usr", "type": "bind", "source": "/usr",
            "options": ["rbind", "ro"]} in block["mounts"]
    assert {"destination": "/srv/pm", "type": "bind", "source": "/srv/pm",
            "options": ["rbind"]} in block["mounts"]
    assert block["stop_signal"] == "TERM" and block["stop_timeout"] == 10


def test_a_rootless_config_maps_the_deployer_to_root_and_has_no_cgroup() -> None:
    block = runc_plan(SIMPLE)["webapp1"]["runc"]
    assert isinstance(block, dict)
    ident = oci.Identity(0, 0, host=(1234, 4321))
    cfg = oci.config(block, rootfs="rootfs", ident=ident, hostname="c", args=["/bin/true"])
    kinds = [n["type"] for n in cfg["linux"]["namespaces"]]
    assert "network" not in kinds and "pid" not in kinds and "user" in kinds
    assert cfg["linux"]["uidMappings"] == [{"containerID": 0, "hostID": 1234, "size": 1}]
    assert cfg["linux"]["gidMappings"] == [{"containerID": 0, "hostID": 4321, "size": 1}]
    assert "cgroupsPath" not in cfg["linux"]
    assert cfg["mounts"][0]["source"] == "/proc" and cfg["mounts"][0]["type"] == "bind"


def test_a_root_config_has_a_cgroup_and_docker_capabilities_for_root_only() -> None:
    block = runc_plan(SIMPLE)["webapp1"]["runc"]
    assert isinstance(block, dict)
    cfg = oci.config(block, rootfs="rootfs", ident=oci.Identity(0, 0), hostname="c",
                     args=["/bin/true"], cgroups_path="/c")
    assert cfg["linux"]["cgroupsPath"] == "/c" and "uidMappings" not in cfg["linux"]
    assert cfg["process"]["capabilities"]["effective"] == list(oci.DOCKER_CAPS)
    user = oci.config(block, rootfs="rootfs", ident=oci.Identity(1000, 1000, (27,)),
                      hostname="c", args=["/bin/true"])
    assert user["process"]["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [27]}
    assert user["process"]["capabilities"]["effective"] == []


def test_rootless_identity_refuses_another_user() -> None:
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert oci.identity(me, rootless=True).host == (os.geteuid(), os.getegid())
    assert oci.identity(None, rootless=True).uid == 0
    with pytest.raises(DeployError, match="maps only your own uid"):
        oci.identity("no-such-user-here" if me != "no-such-user-here" else "x", rootless=True)
    with pytest.raises(DeployError, match="no such user"):
        oci.identity("no-such-user-here", rootless=False)


def test_the_runtime_defaults_by_who_deploys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert runtime({}) == "docker"
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert runtime({}) == "runc"
    assert runtime({"PROCMGMT_DOCKER_RUNTIME": "docker"}) == "docker"
    with pytest.raises(UsageError, match="PROCMGMT_DOCKER_RUNTIME: 'podman'"):
        runtime({"PROCMGMT_DOCKER_RUNTIME": "podman"})
    monkeypatch.setenv("PROCMGMT_DOCKER_RUNTIME", "runc")
    assert isinstance(get_backend("docker").activator(golden_settings(True, "docker")),
                      RuncActivator)
    monkeypatch.setenv("PROCMGMT_DOCKER_RUNTIME", "docker")
    assert isinstance(get_backend("docker").activator(golden_settings(True, "docker")),
                      DockerActivator)
    assert Privilege.UNPRIVILEGED in get_backend("docker").capabilities.privileges


def test_a_container_root_has_the_layout_modes_under_any_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        rootfs.materialize(rootfs.layout(), str(tmp_path / "r"))
    finally:
        os.umask(old)
    assert (tmp_path / "r").stat().st_mode & 0o7777 == 0o755
    assert (tmp_path / "r" / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert (tmp_path / "r" / "etc" / "passwd").stat().st_mode & 0o777 == 0o644
    for name, target in rootfs.layout().links:
        assert os.readlink(tmp_path / "r" / name) == target


# ------------------------------------------------------------------ runc command plan


class Recorder:
    """Records runc commands; ``states`` answers ``runc state`` by container name."""

    def __init__(self, state_root: Path) -> None:
        self.calls: list[list[str]] = []
        self.launched: list[tuple[list[str], str]] = []
        self.states: dict[str, dict[str, object]] = {}
        self.state_root = state_root

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        self.calls.append(list(argv[3:]))
        if argv[3] == "state":
            found = self.states.get(argv[4])
            return (CommandResult(0, json.dumps(found)) if found else
                    CommandResult(1, f"container {argv[4]} does not exist"))
        return CommandResult(0, "")

    def launch(self, argv: Sequence[str], log: str) -> CommandResult:
        self.launched.append((list(argv), log))
        name = argv[-1]
        (self.state_root / name).mkdir(parents=True, exist_ok=True)
        self.states[name] = {"status": "running", "pid": 4242,
                             "annotations": {oci.HASH_ANNOTATION: "h1"}}
        return CommandResult(0, "")


def deployed(tmp_path: Path, proxy: bool, restart: str | None = None,
             user: str | None = None) -> DeployedProcess:
    store = tmp_path / "store"
    (store / "docker").mkdir(parents=True)
    block = {"args": [] if proxy else ["/bin/sleep", "100"], "env": ["A=1"], "cwd": "/",
             "mounts": [oci.bind(str(tmp_path / "st"), str(tmp_path / "st"), False)],
             "stop_signal": "INT", "stop_timeout": 1}
    doc = {"container": "procmgmt-w-1", "create": [], "image": "procmgmt-rootfs:x",
           "command": block["args"], "user": user,
           "proxy": "bin/w-proxy" if proxy else None, "runc": block}
    (store / "docker" / "w.json").write_text(json.dumps(doc))
    return DeployedProcess(name="w", hash="h1", path=str(store), rank=0, restart=restart,
                           extra={"plan": "docker/w.json", "container": "procmgmt-w-1"})


def activator(tmp_path: Path, rootless: bool) -> tuple[RuncActivator, Recorder]:
    settings = dataclasses.replace(golden_settings(False, "docker"),
                                   runtime_dir=str(tmp_path / "run"),
                                   log_dir=str(tmp_path / "log"))
    rec = Recorder(tmp_path / "run" / "procmgmt-runc" / "state")
    act = RuncActivator(settings, runner=rec, launcher=rec.launch, runc="/usr/sbin/runc",
                        rootless=rootless)
    return act, rec


def test_start_writes_a_bundle_and_runs_it_detached(tmp_path: Path) -> None:
    act, rec = activator(tmp_path, rootless=True)
    proc = deployed(tmp_path, proxy=True)
    gen = Generation(backend="docker", path=str(tmp_path), processes=(proc,))
    act.prepare(gen, None)
    assert (tmp_path / "st").is_dir()
    probe = act.start(gen, proc)
    assert probe is not None and probe()
    ((argv, log),) = rec.launched
    bundle = tmp_path / "run" / "procmgmt-runc" / "procmgmt-w-1"
    assert argv == ["/usr/sbin/runc", "--root", str(bundle.parent / "state"), "run",
                    "--detach", "--pid-file", f"{bundle}/pid", "--bundle", str(bundle),
                    "procmgmt-w-1"]
    assert log == str(tmp_path / "log" / "procmgmt-w-1.log")
    cfg = json.loads((bundle / "config.json").read_text())
    proxy = str(tmp_path / "store" / "bin" / "w-proxy")
    assert cfg["process"]["args"] == [proxy]
    assert oci.bind(proxy, proxy, True) in cfg["mounts"]
    assert cfg["annotations"] == {oci.HASH_ANNOTATION: "h1"}
    assert (bundle / "rootfs" / "tmp").is_dir()
    # The same version running: nothing to do.
    assert act.start(gen, proc) is None and len(rec.launched) == 1
    assert act.status(gen, proc).pid == 4242
    assert act.log_source(gen, proc).files == (log,)


def test_stop_signals_then_deletes_and_kills_after_the_timeout(tmp_path: Path) -> None:
    act, rec = activator(tmp_path, rootless=False)
    proc = deployed(tmp_path, proxy=False)
    gen = Generation(backend="docker", path=str(tmp_path), processes=(proc,))
    act.start(gen, proc)
    rec.calls.clear()
    probe = act.stop(gen, proc)
    assert probe is not None and ["kill", "procmgmt-w-1", "INT"] in rec.calls
    assert not probe()
    time.sleep(1.1)  # the stop timeout of 1s passed: SIGKILL to the whole cgroup
    assert not probe()
    assert ["kill", "--all", "procmgmt-w-1", "KILL"] in rec.calls
    rec.states["procmgmt-w-1"]["status"] = "stopped"
    assert probe()
    assert rec.calls[-1] == ["delete", "--force", "procmgmt-w-1"]
    assert not (tmp_path / "run" / "procmgmt-runc" / "procmgmt-w-1").exists()
    # Nothing there: nothing to stop, and the undeploy removes the empty directories.
    (tmp_path / "run" / "procmgmt-runc" / "state" / "procmgmt-w-1").rmdir()
    assert act.stop(gen, proc) is None
    act.finish(Generation(backend="docker", path=str(tmp_path), processes=()), gen)
    assert not (tmp_path / "run" / "procmgmt-runc").exists()


def test_a_container_of_another_version_is_replaced(tmp_path: Path) -> None:
    act, rec = activator(tmp_path, rootless=True)
    proc = deployed(tmp_path, proxy=False)
    gen = Generation(backend="docker", path=str(tmp_path), processes=(proc,))
    act.start(gen, proc)
    rec.states["procmgmt-w-1"]["annotations"] = {oci.HASH_ANNOTATION: "old"}
    assert "another version" in act.status(gen, proc).detail
    rec.calls.clear()
    act.start(gen, proc)
    assert ["delete", "--force", "procmgmt-w-1"] in rec.calls and len(rec.launched) == 2


def test_a_half_made_container_is_cleared_away(tmp_path: Path) -> None:
    """runc interrupted while creating a container leaves a state directory it then
    says does not exist (and would refuse to create again): deleted, not an error."""
    act, rec = activator(tmp_path, rootless=True)
    rec.state_root.joinpath("procmgmt-w-1").mkdir(parents=True)
    assert act.state("procmgmt-w-1") is None
    assert rec.calls[-1] == ["delete", "--force", "procmgmt-w-1"]


def test_preflight_refuses_what_runc_cannot_keep(tmp_path: Path) -> None:
    act, _ = activator(tmp_path, rootless=True)
    proc = deployed(tmp_path, proxy=False, restart="always", user="no-such-user-here")
    gen = Generation(backend="docker", path=str(tmp_path), processes=(proc,))
    problems = act.preflight(gen)
    assert any("restart='always' cannot be kept under runc" in p for p in problems)
    assert any("maps only your own uid" in p for p in problems)
    assert act.preflight(Generation(backend="docker", path=str(tmp_path),
                                    processes=())) == []


# ------------------------------------------------------------------ end to end


def runc_leftovers(uid: int | None, marker: str) -> list[int]:
    """Processes left (zombies the host's init has yet to reap are not): of ``uid`` (a
    throw-away user's), else mentioning ``marker``."""
    if uid is None:
        return wait_no_leftovers(marker)
    deadline = time.monotonic() + 10
    while True:
        left = [p for p in uid_pids(uid) if pid_alive(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def lifecycle(run: Runner, state: Path, base: int, uid: int | None,
              examples: Path = EXAMPLES) -> None:
    """Deploy the advanced webapps, upgrade to the simple model (webapp1's container
    kept), roll back, undeploy; nothing is left. Rootless (``uid``) the containers'
    processes are the deployer's; as root each container has a cgroup of its own."""
    out = run("switch", examples / "webapps" / "processes-advanced.py", timeout=300).stdout
    ready = [ln.split()[1] for ln in out.splitlines() if ln.startswith("ready ")]
    for dep, name in (("webapp1", "webapp2"), ("webapp2", "webapp4"), ("webapp5", "webapp6")):
        assert ready.index(dep) < ready.index(name), out
    for i in range(1, 7):
        assert f"listening on port: {base + i}" in (http_get(base + i) or "")
    curl = subprocess.run(["curl", "-sf", f"http://127.0.0.1:{base + 4}/"],
                          capture_output=True, text=True, check=False)
    assert "instance: webapp4" in curl.stdout
    status = json.loads(run("status", "--json").stdout)["processes"]
    assert all(p["running"] and p["pid"] for p in status), status
    pids = {p["name"]: p["pid"] for p in status}
    for pid in pids.values():
        if uid is not None:
            assert int(Path(f"/proc/{pid}/status").read_text().split("Uid:")[1]
                       .split()[0]) == uid
        else:
            assert "/procmgmt-webapp" in Path(f"/proc/{pid}/cgroup").read_text()
    logs = run("logs", "webapp4").stdout
    assert "GET / HTTP" in logs, logs

    run("switch", "--replace", examples / "webapps" / "processes.py", timeout=300)
    assert f"listening on port: {base}" in (http_get(base) or "")
    assert port_closed(base + 4)
    webapp1 = json.loads(run("status", "--json").stdout)["processes"]
    assert {p["name"]: p["pid"] for p in webapp1}["webapp1"] == pids["webapp1"]

    run("switch", "--rollback", timeout=300)
    assert f"listening on port: {base + 4}" in (http_get(base + 4) or "")
    assert port_closed(base)

    run("switch", "--undeploy", timeout=300)
    for i in range(0, 7):
        assert port_closed(base + i)
    assert runc_leftovers(uid, str(state)) == []
    assert not (state / "run" / "procmgmt-runc").exists()


@pytest.mark.e2e
@pytest.mark.root("creates the throw-away ordinary user that deploys rootless")
@pytest.mark.requires_tool("runc")
def test_webapps_rootless_under_runc(monkeypatch: pytest.MonkeyPatch) -> None:
    """A throw-away ordinary user deploys with the docker backend: runc, by default,
    runs each webapp rootless in its own container; the whole lifecycle works."""
    _lanes.require_system_python()
    monkeypatch.delenv("PROCMGMT_DOCKER_RUNTIME", raising=False)
    root = Path(tempfile.mkdtemp(prefix="pmrl-", dir="/tmp"))
    try:
        with other_user_tree(root) as (user, tree, pythonpath):
            monkeypatch.setenv("PROCMGMT_DOCKER_MOUNTS", str(tree))
            state = root / "home" / "state"
            base = free_port_block(7)
            run = Runner(state, "docker", json.dumps({"port_base": base}),
                         python="/usr/bin/python3", pythonpath=pythonpath, user=user)
            lifecycle(run, state, base, pwd.getpwnam(user).pw_uid, tree / "examples")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.e2e
@pytest.mark.root("creates the throw-away ordinary user that deploys rootless")
@pytest.mark.requires_tool("runc")
def test_daemons_rootless_under_runc(monkeypatch: pytest.MonkeyPatch) -> None:
    """Daemon-only webapps rootless: the proxy is the container's process, the daemon
    (the deployer's, its pid file a host pid) answers, and the undeploy stops it."""
    _lanes.require_system_python()
    monkeypatch.delenv("PROCMGMT_DOCKER_RUNTIME", raising=False)
    root = Path(tempfile.mkdtemp(prefix="pmrl-", dir="/tmp"))
    try:
        with other_user_tree(root) as (user, tree, pythonpath):
            monkeypatch.setenv("PROCMGMT_DOCKER_MOUNTS", str(tree))
            state = root / "home" / "state"
            base = free_port_block(2)
            run = Runner(state, "docker", json.dumps({"port_base": base,
                                                      "webapp_mode": "daemon"}),
                         python="/usr/bin/python3", pythonpath=pythonpath, user=user)
            run("switch", tree / "examples" / "webapps" / "processes.py", timeout=300)
            assert "instance: webapp1" in (http_get(base + 1) or "")
            pid_file = state / "run" / "procmgmt-pid" / "webapp1" / "webapp1.pid"
            daemon = int(pid_file.read_text().strip())
            assert Path(f"/proc/{daemon}").stat().st_uid == pwd.getpwnam(user).pw_uid
            run("switch", "--undeploy", timeout=300)
            assert not pid_alive(daemon) and port_closed(base + 1)
            assert runc_leftovers(pwd.getpwnam(user).pw_uid, str(state)) == []
            assert not (state / "run" / "procmgmt-runc").exists()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def root_runc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Root, runc chosen by the setting, the venv and examples mounted; whatever a test
    leaves in runc's state is deleted (and fails it)."""
    _lanes.require_root("runc as root")
    runc = _lanes.require_tool("runc")
    monkeypatch.setenv("PROCMGMT_DOCKER_RUNTIME", "runc")
    monkeypatch.setenv("PROCMGMT_DOCKER_MOUNTS", ":".join(
        sorted({sys.prefix, sys.base_prefix, str(EXAMPLES)})))
    state = tmp_path / "s"
    yield state
    runc_root = state / "run" / "procmgmt-runc" / "state"
    left = []
    if runc_root.is_dir():
        left = subprocess.run([runc, "--root", str(runc_root), "list", "-q"],
                              capture_output=True, text=True, check=False).stdout.split()
        for name in left:
            subprocess.run([runc, "--root", str(runc_root), "delete", "--force", name],
                           capture_output=True, check=False)
    assert not left, f"containers left behind: {left}"


@pytest.mark.e2e
def test_webapps_as_root_under_runc(root_runc: Path) -> None:
    """As root with PROCMGMT_DOCKER_RUNTIME=runc: the same lifecycle, each container in
    a cgroup of its own."""
    base = free_port_block(7)
    lifecycle(Runner(root_runc, "docker", json.dumps({"port_base": base})), root_runc,
              base, None)


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["foreground", "daemon"])
def test_webapps_run_as_their_own_users_under_runc(mode: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """As root with user changes under runc: a foreground webapp is the container's
    process with its user's ids (looked up after the switch created the account), a
    daemon is started by the proxy as root, which drops to the user; undeploy
    removes containers and accounts."""
    from tests.e2e.test_root import assert_accounts, assert_runs_as_own_user, root_env

    _lanes.require_root("user changes")
    _lanes.require_tool("runc")
    monkeypatch.setenv("PROCMGMT_DOCKER_RUNTIME", "runc")
    with root_env("docker") as env:
        monkeypatch.setenv("PROCMGMT_DOCKER_MOUNTS", str(env.root))
        names = ["webapp", "webapp1"]
        env.run("switch", env.examples / "processes.py",
                "--extra-params", json.dumps({"port_base": env.base, "webapp_mode": mode}))
        if mode == "foreground":
            assert_runs_as_own_user(env, names)
        assert f"listening on port: {env.base + 1}" in (http_get(env.base + 1) or "")
        daemon = int((env.state / "run" / "procmgmt-pid" / "webapp1" / "webapp1.pid")
                     .read_text().strip()) if mode == "daemon" else None
        if daemon is not None:
            assert Path(f"/proc/{daemon}").stat().st_uid == pwd.getpwnam("webapp1").pw_uid
        env.run("switch", "--undeploy")
        assert daemon is None or not pid_alive(daemon)
        assert not (env.state / "run" / "procmgmt-runc").exists()
        assert_accounts([], names)


@pytest.mark.e2e
def test_a_killed_container_process_is_seen_and_restarted_by_the_next_switch(
        root_runc: Path) -> None:
    base = free_port_block(2)
    run = Runner(root_runc, "docker", json.dumps({"port_base": base}))
    run("switch", SIMPLE, timeout=300)
    status = {p["name"]: p for p in json.loads(run("status", "--json").stdout)["processes"]}
    os.kill(status["webapp1"]["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(status["webapp1"]["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    after = {p["name"]: p for p in json.loads(run("status", "--json", check=False).stdout)
             ["processes"]}
    assert not after["webapp1"]["running"] and after["webapp"]["running"]
    run("switch", SIMPLE, timeout=300)  # the same generation again: the dead one restarts
    assert "instance: webapp1" in (http_get(base + 1) or "")
    run("switch", "--undeploy", timeout=300)
    assert wait_no_leftovers(str(root_runc)) == []


@pytest.mark.e2e
def test_a_taken_port_and_a_failing_container_are_located_errors(root_runc: Path,
                                                                 tmp_path: Path) -> None:
    """A taken port stops the switch before any container exists; a container whose
    process exits at once fails the switch with its output, and leaves nothing."""
    import socket

    base = free_port_block(2)
    run = Runner(root_runc, "docker", json.dumps({"port_base": base}))
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", base + 1))
        taken.listen()
        proc = run("switch", SIMPLE, timeout=300, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "webapp1: port" in proc.stderr and "already in use" in proc.stderr, proc.stderr
    assert not (root_runc / "run" / "procmgmt-runc").exists()

    model = tmp_path / "failing.py"
    model.write_text(textwrap.dedent("""\
        from procmgmt import Process
        def processes(settings):
            return {"f": Process(name="f", foreground_process="/bin/sh",
                                 foreground_process_args=["-c", "echo boom-in-f >&2; exit 3"])}
        """))
    proc = run("switch", model, timeout=300, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "boom-in-f" in proc.stderr, proc.stderr
    run("switch", "--undeploy", timeout=300, check=False)
    assert wait_no_leftovers(str(root_runc)) == []
    assert not (root_runc / "run" / "procmgmt-runc").exists()


@pytest.mark.e2e
@pytest.mark.parametrize("umask", [0o000, 0o077])
def test_a_switch_under_any_umask(root_runc: Path, umask: int) -> None:
    """The bundle, the container's root and its log do not depend on the caller's umask."""
    base = free_port_block(2)
    run = Runner(root_runc, "docker", json.dumps({"port_base": base}))
    argv, env = run.command("switch", SIMPLE)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, umask=umask,
                          check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "instance: webapp1" in (http_get(base + 1) or "")
    logs = sorted((root_runc / "log").glob("procmgmt-webapp*.log"))
    assert logs and all(p.stat().st_mode & 0o777 == 0o640 for p in logs)
    run("switch", "--undeploy", timeout=300)
    assert wait_no_leftovers(str(root_runc)) == []


@pytest.mark.e2e
def test_two_switches_at_once_and_an_interrupted_one(root_runc: Path) -> None:
    """Two switches at once: one deploys, the other waits or is refused, never a
    half state; a switch interrupted with SIGINT restores the previous generation, one
    killed with SIGKILL leaves what the next switch completes; the undeploy leaves
    nothing."""
    base = free_port_block(7)
    run = Runner(root_runc, "docker", json.dumps({"port_base": base}))
    argv, env = run.command("switch", ADVANCED)
    both = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    results = [(p.wait(300), p.stderr.read() if p.stderr else "") for p in both]
    assert any(rc == 0 for rc, _ in results), results
    assert all("Traceback" not in err for _, err in results), results
    status = json.loads(run("status", "--json").stdout)["processes"]
    assert len(status) == 6 and all(p["running"] for p in status), status

    # Ctrl-C once the switch has begun to stop containers: the previous generation
    # is restored.
    argv, env = run.command("switch", "--replace", SIMPLE)
    interrupted = subprocess.Popen(argv, env={**env, "PYTHONUNBUFFERED": "1"},
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
    assert interrupted.stdout is not None
    for line in interrupted.stdout:
        if line.startswith(("stopping ", "starting ")):
            interrupted.send_signal(signal.SIGINT)
            break
    _, err = interrupted.communicate(timeout=300)
    assert "Traceback" not in err, err
    status = json.loads(run("status", "--json").stdout)["processes"]
    assert len(status) == 6 and all(p["running"] for p in status), (err, status)
    # Killed (SIGKILL, no cleanup) right after starting a container: the next switch
    # finishes the job.
    proc = subprocess.run(argv, env={**env, "PROCMGMT_CRASH_AT": "starting"},
                          capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    run("switch", "--replace", SIMPLE, timeout=300)
    assert "instance: webapp<" in (http_get(base) or "")
    run("switch", "--undeploy", timeout=300)
    assert wait_no_leftovers(str(root_runc)) == []
    assert not (root_runc / "run" / "procmgmt-runc").exists()
