"""The supervisord backend: translation, quoting proven with supervisor's own
parser, and real deployments with the supervisord from this venv.

The integration tests run supervisord unprivileged-style
(``force_disable_user_change``) with all state below ``tmp_path`` and the
webapps on high free 127.0.0.1 ports. Every test that starts a supervisord
shuts it down (programs first) in a fixture and then kills, by PID, anything
it recorded that is still alive.
"""

from __future__ import annotations

import configparser
import dataclasses
import io
import locale
import os
import random
import shlex
import signal
import socket
import stat
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from supervisor.options import ServerOptions

from procmgmt.backends import get_backend
from procmgmt.backends.base import (
    BuildContext,
    Coverage,
    Ordering,
    ProcessMode,
    Support,
)
from procmgmt.backends.supervisord import SupervisordActivator, SupervisordBackend
from procmgmt.backends.supervisord.embedded import min_fds
from procmgmt.backends.supervisord.external import read_external_config
from procmgmt.backends.supervisord.format import encode_command, encode_environment, env_problem
from procmgmt.deploy.build import build, evaluate, render
from procmgmt.deploy.engine import Engine
from procmgmt.deploy.options import Options
from procmgmt.deploy.profile import Profile
from procmgmt.errors import DeployError, UsageError, ValidationError
from procmgmt.manifest import Generation
from procmgmt.model.spec import ProcessSpec
from procmgmt.settings import Settings, resolve
from tests.conftest import EXAMPLES, golden_settings
from tests.e2e.util import free_port_block

WEBAPPS = EXAMPLES / "webapps"
SIMPLE = WEBAPPS / "processes.py"
ADVANCED = WEBAPPS / "processes-advanced.py"

UTF8 = locale.getpreferredencoding(False).lower().replace("-", "") == "utf8"


# --------------------------------------------------------------------------- helpers

def _render(model_path: Path, privileged: bool = False,
            extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """name -> (files by path, manifest extra) with golden settings."""
    s = dataclasses.replace(golden_settings(privileged, "supervisord"), extra_params=extra or {})
    model, specs = evaluate(str(model_path), s)
    result = render(model, specs, s, get_backend("supervisord"))
    return {r.spec.name: ({f.path: f for f in r.files}, r.extra) for r in result.processes}


def _spec(**kwargs: Any) -> ProcessSpec:
    base: dict[str, Any] = {"name": "svc", "description": "A service",
                            "foreground": "/bin/sleep", "foreground_args": ("1000",)}
    base.update(kwargs)
    return ProcessSpec(**base)


def _ctx(spec: ProcessSpec, privileged: bool = False) -> BuildContext:
    return BuildContext(settings=golden_settings(privileged, "supervisord"),
                        specs={spec.name: spec})


def _native(spec: ProcessSpec, privileged: bool = False) -> dict[str, Any]:
    return SupervisordBackend().translate(spec, _ctx(spec, privileged))


def _program_text(spec: ProcessSpec, privileged: bool = False) -> str:
    files, _ = SupervisordBackend().render_process(spec, _ctx(spec, privileged))
    return next(f.content for f in files if f.path.endswith(".conf") and f.content)


def parse_with_supervisor(tmp_path: Path, programs: Mapping[str, str]) -> dict[str, Any]:
    """Program name -> supervisor's ProcessConfig, read the way supervisord reads it:
    a base config that includes conf.d/*.conf. The golden state dir /srv/pm is
    moved below ``tmp_path`` (supervisor checks that log dirs exist)."""
    if not UTF8:
        pytest.skip("the test process does not read files as UTF-8")
    root = tmp_path / f"parse{random.randrange(10**9)}"
    (root / "conf.d").mkdir(parents=True)
    (root / "supervisord.conf").write_text(
        f"[supervisord]\n[include]\nfiles = {root}/conf.d/*.conf\n", encoding="utf-8")
    for sub in ("log", "tmp"):
        (root / "srv" / sub).mkdir(parents=True)
    for name, text in programs.items():
        moved = text.replace("=/srv/pm/", f"={root}/srv/")
        (root / "conf.d" / f"{name}.conf").write_text(moved, encoding="utf-8")
    options = ServerOptions()
    options.configfile = str(root / "supervisord.conf")
    section = options.read_config(str(root / "supervisord.conf"))
    return {p.name: p for g in section.process_group_configs for p in g.process_configs}


def _get(port: int, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                return str(r.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _refused(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# --------------------------------------------------------------------------- unit

def test_capabilities() -> None:
    """The backend describes itself as the brief demands (procmgmt backends table)."""
    caps = SupervisordBackend.capabilities
    assert SupervisordBackend.name == "supervisord"
    assert (caps.prefers, caps.dependencies, caps.user_switching, caps.unprivileged,
            caps.tested) == (ProcessMode.FOREGROUND, Support.NATIVE, Support.NATIVE, True,
                             Coverage.RUN)
    assert caps.ordering is Ordering.PRIORITY


def test_priorities_follow_dependencies() -> None:
    """priority = 1 + the highest priority of the dependencies (1 without any), so
    supervisord starts dependencies first and stops them last."""
    rendered = _render(ADVANCED)
    priorities = {}
    for name, (files, _) in rendered.items():
        line = next(ln for ln in files[f"conf.d/{name}.conf"].content.splitlines()
                    if ln.startswith("priority="))
        priorities[name] = int(line.split("=")[1])
    assert priorities == {"webapp1": 1, "webapp2": 2, "webapp3": 2, "webapp4": 3,
                          "webapp5": 1, "webapp6": 2}


def test_auto_mode_is_foreground() -> None:
    """With both modes available supervisord runs the foreground process directly:
    no -D, no proxy."""
    files, extra = _render(SIMPLE)["webapp"]
    text = files["conf.d/webapp.conf"].content
    assert "webapp.py\n" in text and "-D" not in text
    assert set(files) == {"conf.d/webapp.conf"}
    assert extra == {"program": "conf.d/webapp.conf", "group": "webapp", "autostart": True,
                     "log_file": "/srv/pm/log/webapp.log"}


def test_daemon_only_goes_through_proxy() -> None:
    """A daemon-only process runs through the foreground proxy that starts it with -D."""
    files, extra = _render(SIMPLE, extra={"webapp_mode": "daemon"})["webapp"]
    text = files["conf.d/webapp.conf"].content
    assert "command=%(here)s/../bin/webapp-proxy\n" in text
    proxy = files["bin/webapp-proxy"]
    assert proxy.mode == 0o755
    assert "webapp.py -D\n" in proxy.content
    assert "pid_file='/srv/pm/run/procmgmt-pid/webapp/webapp.pid'" in proxy.content
    assert extra["proxy"] == "bin/webapp-proxy"


def test_user_dropped_when_user_change_disabled() -> None:
    """force_disable_user_change removes user=; privileged builds keep it."""
    unpriv = _render(ADVANCED)["webapp1"][0]["conf.d/webapp1.conf"].content
    priv = _render(ADVANCED, privileged=True)["webapp1"][0]["conf.d/webapp1.conf"].content
    assert "user=" not in unpriv
    assert "\nuser=webapp1\n" in priv


def test_nice_in_command() -> None:
    """supervisord has no nice key: the level goes into the command via nice -n."""
    native = _native(_spec(nice=5))
    assert native["command"][1:] == ["-n", "5", "/bin/sleep", "1000"]
    assert Path(native["command"][0]).name == "nice"
    assert "nice" not in native


def test_directory_and_umask_keys() -> None:
    """directory and umask use supervisord's own keys (the original dropped directory)."""
    text = _program_text(_spec(directory="/srv/data", umask="0027"))
    assert "\ndirectory=/srv/data\n" in text
    assert "\numask=0027\n" in text


def test_initialize_with_user_drops_privileges_in_proxy() -> None:
    """With an initialize the proxy runs it as root and then drops to the user;
    supervisord's user= would make initialize run unprivileged."""
    spec = _spec(user="svc", initialize="mkdir -p /srv/svc", directory="/srv/svc")
    native = _native(spec, privileged=True)
    assert "user" not in native and "directory" not in native
    files, _ = SupervisordBackend().render_process(spec, _ctx(spec, privileged=True))
    proxy = next(f.content or "" for f in files if f.path == "bin/svc-proxy")
    assert "setpriv --reuid=svc" in proxy
    assert proxy.index("mkdir -p /srv/svc") < proxy.index("cd /srv/svc")
    assert "exec setpriv" in proxy


def test_path_sets_exact_path() -> None:
    """``path`` entries come first, followed by the system dirs (nice, sleep, sh)."""
    native = _native(_spec(path=("/opt/tool",)))
    assert native["environment"]["PATH"].startswith("/opt/tool:")
    assert native["environment"]["PATH"].endswith(":/usr/bin:/sbin:/bin")


def test_override_dict_merges() -> None:
    """A dict override deep-merges into the native model; None deletes a key; any
    supervisord key can be added."""
    spec = _spec(environment={"A": "1"}, overrides={"supervisord": {
        "startsecs": 5, "environment": {"B": "2"}, "stopasgroup": None, "killasgroup": None,
        "stdout_logfile_maxbytes": "1MB"}})
    text = _program_text(spec)
    assert "\nstartsecs=5\n" in text
    assert '\nenvironment=A="1",B="2"\n' in text
    assert "stopasgroup" not in text and "killasgroup" not in text
    assert "\nstdout_logfile_maxbytes=1MB\n" in text


def test_override_callable_rewrites() -> None:
    """A callable override receives the native model and returns the new one."""
    def patch(native: dict[str, Any]) -> dict[str, Any]:
        native["command"] = [*native["command"], "extra arg"]
        native["autorestart"] = "true"
        return native

    text = _program_text(_spec(overrides={"supervisord": patch}))
    assert "\ncommand=/bin/sleep 1000 'extra arg'\n" in text
    assert "\nautorestart=true\n" in text


def test_round_trip_through_supervisor_parser(tmp_path: Path) -> None:
    """supervisor's own parser turns the generated program back into exactly our
    argv and environment: spaces, quotes, $, backticks, backslashes, %, ; and #
    after spaces, %(here)s, non-ASCII."""
    argv = ("/bin/echo", "a b", "it's", 'say "hi"', "$HOME", "`id`", "back\\slash", "100%",
            "%(here)s", "%%", "x ;y", "x #y", "tab\there", "", "grüße ☃", "\u00a0;nbsp", "'")
    env = {"A": "x y", "B": 'say "hi" now', "C": "it's", "D": "100% %(ENV_HOME)s", "E": "",
           "F": "a,b=c", "G": "grüße", "H": "$x `y` \\z", "I": "#not a comment"}
    spec = _spec(foreground=argv[0], foreground_args=argv[1:], environment=env)
    parsed = parse_with_supervisor(tmp_path, {"svc": _program_text(spec)})["svc"]
    assert tuple(shlex.split(parsed.command)) == argv
    assert parsed.environment == env
    assert parsed.stopasgroup and parsed.killasgroup
    assert parsed.redirect_stderr
    assert parsed.stdout_logfile.endswith("/srv/log/svc.log")
    assert parsed.priority == 1


def test_round_trip_of_paths_with_percent(tmp_path: Path) -> None:
    """Plain values (directory, log file) are %-escaped too."""
    spec = _spec(directory="/srv/100%/data")
    parsed = parse_with_supervisor(tmp_path, {"svc": _program_text(spec)})["svc"]
    assert parsed.directory == "/srv/100%/data"


_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\n\r\0"),
                max_size=12)


@settings(max_examples=150, deadline=None)
@given(argv=st.lists(_TEXT, min_size=1, max_size=5),
       env=st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
                           _TEXT, max_size=4))
def test_round_trip_property(tmp_path_factory: pytest.TempPathFactory, argv: list[str],
                             env: dict[str, str]) -> None:
    """For any argv without line breaks, and any environment value the encoder
    accepts, supervisor parses the rendered program back to exactly the input."""
    env = {k: v for k, v in env.items() if env_problem(k, v) is None}
    text = ("[program:p]\n"
            f"command={encode_command(['/bin/x', *argv])}\n"
            + (f"environment={encode_environment(env)}\n" if env else ""))
    parsed = parse_with_supervisor(tmp_path_factory.mktemp("prop"), {"p": text})["p"]
    assert shlex.split(parsed.command) == ["/bin/x", *argv]
    assert parsed.environment == env


@pytest.mark.parametrize(("value", "accepted"), [
    ("x y", True), ("a;b", True), ("#", True), ("it's", True), ('say "hi" now', True),
    ("ü", True), ("", True),
    ('say "hi"', False),    # a trailing quote is stripped by supervisord
    ("'x'", False),         # leading and trailing quotes too
    ("a ' b \" c", False),  # no quoting holds both quote characters
    ("x ;y", False),        # configparser: an inline comment
    ("%(here)s", False),    # replaced textually before anything else
])
def test_env_problem_cases(value: str, accepted: bool) -> None:
    """Which environment values supervisord's format can hold (no escapes exist there)."""
    assert (env_problem("K", value) is None) == accepted


def test_validate_rejects_newlines() -> None:
    """A newline cannot be written in a supervisord value: validate names the process
    and the field instead of producing a config that means something else."""
    backend = SupervisordBackend()
    specs = [_spec(name="a", environment={"X": "one\ntwo"}),
             _spec(name="b", foreground_args=("line\nbreak",)),
             _spec(name="c", environment={"Y": "both ' and \" here"}),
             _spec(name="d", environment={"Z": "x ;comment"}),
             _spec(name="ok", foreground_args=("fine ; really",))]
    ctx = BuildContext(settings=golden_settings(False, "supervisord"),
                       specs={s.name: s for s in specs})
    problems = backend.validate(specs, ctx)
    by_name = {p.instance: (p.field, p.message) for p in problems}
    assert set(by_name) == {"a", "b", "c", "d"}
    assert by_name["a"][0] == "environment.X" and "line break" in by_name["a"][1]
    assert by_name["b"][0] == "foreground_process_args" and "line break" in by_name["b"][1]
    assert "both" in by_name["c"][1]
    assert "comment" in by_name["d"][1]


def test_validate_accepts_newline_args_in_proxy() -> None:
    """Behind the proxy the arguments live in a shell script, which can hold them."""
    spec = _spec(foreground=None, daemon="/bin/d", daemon_args=("a\nb",), pid_file="/run/d.pid")
    assert SupervisordBackend().validate([spec], _ctx(spec)) == []


def test_validation_error_from_build(tmp_path: Path) -> None:
    """Through render() the rejection becomes a ValidationError naming the field."""
    model = tmp_path / "m.py"
    model.write_text(
        "from procmgmt import Instance, Process\n"
        "def processes(settings):\n"
        "    return {'nl': Instance(Process(name='nl', foreground_process='/bin/sleep',\n"
        "                 foreground_process_args=['1'], environment={'X': 'a\\nb'}))}\n")
    s = golden_settings(False, "supervisord")
    m, specs = evaluate(str(model), s)
    with pytest.raises(ValidationError, match=r"nl\.environment\.X"):
        render(m, specs, s)


def test_override_value_rejected_at_render() -> None:
    """Override values cannot be checked by validate; render refuses them instead."""
    spec = _spec(overrides={"supervisord": {"directory": "/a\nb"}})
    with pytest.raises(ValueError, match="line break"):
        _program_text(spec)


def test_base_config_parses_and_has_no_tcp(tmp_path: Path) -> None:
    """The activator's base config: unix socket 0700 only, include of conf.d, minfds."""
    s = resolve({"state_dir": str(tmp_path / "s"), "force_disable_user_change": True},
                environ={})
    act = SupervisordActivator(s)
    for d in (s.log_dir, s.runtime_dir, s.tmp_dir):
        os.makedirs(d)
    text = act.base_config(100)
    assert "inet_http_server" not in text
    assert f"file={act.socket_path}\nchmod=0700" in text
    assert f"minfds={min_fds(100)}" in text
    options = ServerOptions()
    (tmp_path / "c.conf").write_text(text)
    options.configfile = str(tmp_path / "c.conf")
    section = options.read_config(str(tmp_path / "c.conf"))
    assert section.minfds == min_fds(100)
    assert section.server_configs[0]["file"] == act.socket_path


def test_min_fds_bounds() -> None:
    """Never below supervisord's default, about 5 per program, never above the hard limit."""
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert min_fds(1) == 1024
    assert min_fds(1000) == min(5064, hard) or hard == resource.RLIM_INFINITY


def test_socket_path_limit(tmp_path: Path) -> None:
    """A runtime dir too long for a unix socket is a clear usage error, not a crash."""
    s = resolve({"state_dir": str(tmp_path / "s"), "runtime_dir": "/tmp/" + "r" * 120,
                 "force_disable_user_change": True}, environ={})
    with pytest.raises(UsageError, match="unix sockets allow at most 107"):
        SupervisordActivator(s).check_paths()


@pytest.mark.parametrize(("length", "ok"), [(99, True), (100, False), (107, False)])
def test_socket_path_leaves_room_for_the_bind_name(length: int, ok: bool) -> None:
    """supervisord binds ``PATH.<pid>`` first: with a 7-digit pid only a path of at
    most 99 bytes fits the 107-byte limit (a 100-byte path failed in supervisord
    with "AF_UNIX path too long" once its pid had enough digits)."""
    name = "/supervisord-processes.sock"
    runtime = "/tmp/" + "r" * (length - len("/tmp/") - len(name))
    s = resolve({"state_dir": "/tmp/s", "runtime_dir": runtime,
                 "force_disable_user_change": True}, environ={})
    act = SupervisordActivator(s)
    assert len(act.socket_path) == length
    if ok:
        act.check_paths()
    else:
        with pytest.raises(UsageError, match="so at most 99"):
            act.check_paths()


# --------------------------------------------------------------------------- integration

class Deployment:
    """Settings, activator and the PIDs seen, for cleanup."""

    def __init__(self, tmp_path: Path, extra: dict[str, Any]) -> None:
        self.settings: Settings = resolve(
            {"state_dir": str(tmp_path / "s"), "force_disable_user_change": True,
             "process_manager": "supervisord", "extra_params": extra}, environ={})
        for d in (self.settings.runtime_dir, self.settings.log_dir, self.settings.tmp_dir):
            os.makedirs(d, exist_ok=True)
        self.activator = SupervisordActivator(self.settings)
        self.pids: set[int] = set()

    def build(self, model: Path | None) -> Generation:
        m, specs = evaluate(str(model) if model else None, self.settings)
        return build(m, specs, self.settings)

    def pid_of(self, gen: Generation, name: str) -> int:
        st_ = self.activator.status(gen, gen.by_name()[name])
        assert st_.running and st_.pid, st_
        self.pids.add(st_.pid)
        return st_.pid


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    """A supervisord deployment below tmp_path, shut down and swept afterwards."""
    dep = Deployment(tmp_path, {"port_base": free_port_block(7)})
    try:
        yield dep
    finally:
        sup = dep.activator.supervisord_pid()
        try:
            dep.activator.shutdown()
        finally:
            for pid in [*dep.pids, *([sup] if sup else [])]:
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)


def _switch(dep: Deployment, new: Generation, old: Generation | None) -> None:
    """What the engine does: stop obsolete/changed (reverse order), start new/changed."""
    act = dep.activator
    act.prepare(new, old)
    old_procs = old.by_name() if old else {}
    new_procs = new.by_name()
    for proc in reversed(old.processes if old else ()):
        if proc.name not in new_procs or new_procs[proc.name].hash != proc.hash:
            act.stop(old, proc)  # type: ignore[arg-type]
    for proc in new.processes:
        if proc.name not in old_procs or old_procs[proc.name].hash != proc.hash:
            act.start_and_wait(new, proc)
    act.finish(new, old)


@pytest.mark.e2e
def test_deploy_switch_undeploy(deployment: Deployment) -> None:
    """Deploy two webapps, switch to six (the unchanged webapp1 keeps its PID, the
    obsolete webapp stops), then deploy nothing: supervisord stops everything and
    exits, and no process is left."""
    dep = deployment
    base = int(dep.settings.extra_params["port_base"])
    gen1 = dep.build(SIMPLE)
    _switch(dep, gen1, None)
    sup_pid = dep.activator.supervisord_pid()
    assert sup_pid and _alive(sup_pid)
    conf_d = Path(dep.activator.dir) / "conf.d"
    assert _programs_file(conf_d, gen1) == ["webapp", "webapp1"]
    for name, port in (("webapp", base), ("webapp1", base + 1)):
        assert f"listening on port: {port}" in _get(port)
        dep.pid_of(gen1, name)
    webapp_pid = dep.pid_of(gen1, "webapp")
    webapp1_pid = dep.pid_of(gen1, "webapp1")

    gen2 = dep.build(ADVANCED)
    assert gen2.by_name()["webapp1"].hash == gen1.by_name()["webapp1"].hash
    _switch(dep, gen2, gen1)
    assert dep.pid_of(gen2, "webapp1") == webapp1_pid, "unchanged webapp1 was not restarted"
    assert _wait_gone(webapp_pid) and _refused(base)
    for i in range(1, 7):
        assert f"listening on port: {base + i}" in _get(base + i)
        dep.pid_of(gen2, f"webapp{i}")
    assert dep.activator.activity(gen2, gen2.by_name()["webapp3"], "status") == 0
    assert sorted(_programs_file(conf_d, gen2)) == [f"webapp{i}" for i in range(1, 7)]

    gen3 = dep.build(None)
    _switch(dep, gen3, gen2)
    assert _wait_gone(sup_pid), "supervisord exited after the empty generation"
    for pid in dep.pids:
        assert _wait_gone(pid), f"process {pid} left behind"
    assert not dep.activator.running()
    assert list(conf_d.iterdir()) == [], "an empty generation leaves no programs file"


@pytest.mark.e2e
def test_per_program_links_of_an_older_layout_become_one_file(deployment: Deployment) -> None:
    """A supervisord set up with one linked file per program (procmgmt's layout before
    the programs file) keeps running: the next switch replaces the links by
    ``programs.conf`` and restarts only what changed."""
    dep = deployment
    gen1 = dep.build(SIMPLE)
    _switch(dep, gen1, None)
    conf_d = Path(dep.activator.dir) / "conf.d"
    (conf_d / "programs.conf").unlink()
    for p in gen1.processes:
        (conf_d / f"{p.name}.conf").symlink_to(Path(p.path) / str(p.extra["program"]))
    added, changed, removed = dep.activator.rpc().supervisor.reloadConfig()[0]
    assert (added, changed, removed) == ([], [], []), "the old layout holds the same programs"
    webapp1 = dep.pid_of(gen1, "webapp1")
    gen2 = dep.build(ADVANCED)
    _switch(dep, gen2, gen1)
    assert dep.pid_of(gen2, "webapp1") == webapp1, "unchanged webapp1 was restarted"
    assert sorted(_programs_file(conf_d, gen2)) == [f"webapp{i}" for i in range(1, 7)]


def _programs_file(conf_d: Path, gen: Generation) -> list[str]:
    """The programs of conf.d's one file, checked to be exactly ``gen``'s program
    files (a regular file, mode 0644, alone in conf.d); in file order."""
    assert [p.name for p in conf_d.iterdir()] == ["programs.conf"]
    path = conf_d / "programs.conf"
    assert not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) == 0o644
    text = path.read_bytes()
    expected = b"".join(f"; {p.name}\n".encode()
                        + (Path(p.path) / str(p.extra["program"])).read_bytes()
                        for p in gen.processes)
    assert text == expected
    parser = configparser.RawConfigParser()
    parser.read_string(text.decode())
    return [s.removeprefix("program:") for s in parser.sections()]


SLEEPS = """\
from procmgmt import Instance, Process

def processes(settings):
    a = Process(name="a", foreground_process="/bin/sleep", args=["1000"])
    b = Process(name="b", foreground_process="/bin/sleep", args=["1000"],
                dependencies=[a] if {edges} else [])
    c = Process(name="c", foreground_process="/bin/sleep", args=["1000"])
    return {{"a": Instance(a), "b": Instance(b), "c": Instance(c)}}
"""


@pytest.mark.e2e
@pytest.mark.parametrize("edges", [False, True])
def test_undeploy_of_every_program(deployment: Deployment, tmp_path: Path,
                                   edges: bool) -> None:
    """Through the engine: the undeploy of a generation without dependency edges is
    one apply (stop everything at once, shut down); with an edge the engine stops
    program by program, the dependent first. Either way every program and
    supervisord are gone and the empty generation is recorded."""
    dep = deployment
    model = tmp_path / "sleeps.py"
    model.write_text(SLEEPS.format(edges=edges))
    engine = Engine(dep.settings, out=io.StringIO(), options=Options(start_grace=0.0))
    act = dep.activator
    engine.use_activator("supervisord", act)
    profile = Profile(dep.settings)
    stops: list[str] = []
    real_stop = act.stop

    def stop(gen: Generation, proc: Any) -> Any:
        stops.append(proc.name)
        return real_stop(gen, proc)

    act.stop = stop  # type: ignore[method-assign]
    gen = dep.build(model)
    engine.switch(gen, lambda: profile.add(gen.path))
    pids = [dep.pid_of(gen, n) for n in ("a", "b", "c")]
    sup = act.supervisord_pid()
    assert sup is not None
    empty = dep.build(None)
    result = engine.switch(empty, lambda: profile.add(empty.path))
    assert sorted(result.stopped) == ["a", "b", "c"]
    if edges:
        assert sorted(stops) == ["a", "b", "c"] and stops.index("b") < stops.index("a")
    else:
        assert stops == []
    for pid in [*pids, sup]:
        assert not _alive(pid), f"process {pid} left behind"
    assert not act.running()
    current = engine.current()
    assert current is not None and current.processes == ()


@pytest.mark.e2e
def test_daemon_mode_through_proxy(tmp_path: Path) -> None:
    """Daemon-only webapps run under supervisord through the proxy; stopping the
    program stops the daemon it wrapped."""
    dep = Deployment(tmp_path, {"port_base": free_port_block(2), "webapp_mode": "daemon"})
    base = int(dep.settings.extra_params["port_base"])
    daemons: list[int] = []
    try:
        gen = dep.build(SIMPLE)
        _switch(dep, gen, None)
        for proc in gen.processes:
            port = base if proc.name == "webapp" else base + 1
            assert f"listening on port: {port}" in _get(port)
            dep.pid_of(gen, proc.name)
            assert proc.pid_file
            daemons.append(int(Path(proc.pid_file).read_text()))
        dep.pids.update(daemons)
        for proc in reversed(gen.processes):
            dep.activator.stop(gen, proc)
        for pid in daemons:
            assert _wait_gone(pid), "the wrapped daemon was stopped with its proxy"
    finally:
        sup = dep.activator.supervisord_pid()
        dep.activator.shutdown()
        for pid in [*dep.pids, *([sup] if sup else [])]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.e2e
def test_immediate_exit_fails_start(deployment: Deployment, tmp_path: Path) -> None:
    """A program that exits at once fails its start under the engine (which watches
    every started program) with a DeployError naming it and quoting its log, well
    before supervisord's retries are used up."""
    from procmgmt.deploy.engine import Engine
    model = tmp_path / "crash.py"
    model.write_text(
        "from procmgmt import Instance, Process\n"
        "def processes(settings):\n"
        "    return {'crasher': Instance(Process(name='crasher', foreground_process='/bin/sh',\n"
        "            foreground_process_args=['-c', 'echo boom: bad config; exit 3']))}\n")
    gen = deployment.build(model)
    deployment.activator.prepare(gen, None)
    engine = Engine(deployment.settings)
    engine.use_activator("supervisord", deployment.activator)
    started = time.monotonic()
    outcome = engine.start_processes(deployment.activator, gen, list(gen.processes))
    assert time.monotonic() - started < 5
    assert not outcome.ok
    error = str(outcome.failed["crasher"])
    assert isinstance(outcome.failed["crasher"], DeployError)
    assert "crasher" in error
    assert "boom: bad config" in error
    deployment.activator.stop(gen, gen.processes[0])


@pytest.mark.parametrize("char", ["\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029", "\xa0",
                                  "\u3000"])
def test_unusual_whitespace_round_trips(tmp_path: Path, char: str) -> None:
    """Characters that str.splitlines or str.isspace treat specially, next to ; and #,
    still come back exactly (configparser reads lines split at \\n only)."""
    word = f"a{char};b{char}#c{char}"
    env = {"K": f"x{char};y{char}"} if env_problem("K", f"x{char};y{char}") is None else {}
    text = (f"[program:p]\ncommand={encode_command(['/bin/x', word, char])}\n"
            + (f"environment={encode_environment(env)}\n" if env else ""))
    parsed = parse_with_supervisor(tmp_path, {"p": text})["p"]
    assert shlex.split(parsed.command) == ["/bin/x", word, char]
    assert parsed.environment == env


@pytest.mark.e2e
def test_run_stateless(tmp_path: Path) -> None:
    """``procmgmt run``: supervisord in the foreground starts every program itself
    (priority order); SIGTERM to the caller stops them all and it returns."""
    import subprocess
    import sys

    dep = Deployment(tmp_path, {"port_base": free_port_block(2)})
    base = int(dep.settings.extra_params["port_base"])
    gen = dep.build(SIMPLE)
    code = (
        "import sys\n"
        "from procmgmt.backends.supervisord import run_stateless\n"
        "from procmgmt.manifest import load_generation\n"
        "from procmgmt.settings import resolve\n"
        f"s = resolve({{'state_dir': {dep.settings.state_dir!r}, "
        "'force_disable_user_change': True}, environ={})\n"
        f"sys.exit(run_stateless(s, load_generation({gen.path!r})))\n")
    runner = subprocess.Popen([sys.executable, "-c", code], cwd=str(Path(__file__).parents[2]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for port in (base, base + 1):
            assert f"listening on port: {port}" in _get(port, timeout=20)
        pids = [dep.pid_of(gen, p.name) for p in gen.processes]
        sup = dep.activator.supervisord_pid()
        assert sup
        runner.send_signal(signal.SIGTERM)
        _, err = runner.communicate(timeout=30)
        assert runner.returncode == 0, err
        for pid in [*pids, sup]:
            assert _wait_gone(pid)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        dep.activator.shutdown()
        for pid in dep.pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------------------
# Deploying into an external supervisord (PROCMGMT_SUPERVISORD_CONF)


def test_external_config_of_the_supervisord_service(tmp_path: Path) -> None:
    """The catalogue service's config (glob-escaped include dir with a '[' in its
    path) gives back its socket and include dir; proxies go to bin/ next to it."""
    from procmgmt.services.supervisord import paths, render_conf

    s = resolve({"state_dir": str(tmp_path / "st[ate"), "force_disable_user_change": True},
                environ={})
    p = paths(s, "supervisord")
    conf = Path(p.conf)
    conf.parent.mkdir(parents=True)
    conf.write_text(render_conf(p, port=None, bind="127.0.0.1", as_root=False, programs={},
                                minfds=1024, minprocs=200))
    ext = read_external_config(str(conf))
    assert (ext.socket, ext.include_dir, ext.pattern) == (p.socket, p.include_dir, "*.conf")
    assert ext.bin_dir == os.path.join(os.path.dirname(p.include_dir), "bin")


def test_external_config_relative_and_here(tmp_path: Path) -> None:
    """Relative include globs and %(here)s resolve against the config's directory,
    %(ENV_X)s from the environment, the way supervisord reads them."""
    conf = tmp_path / "sv.conf"
    conf.write_text("[unix_http_server]\nfile=%(here)s/%(ENV_HOME)s.sock ; comment\n"
                    "[include]\nfiles = other/*.ini progs/*.conf\n")
    ext = read_external_config(str(conf))
    assert ext.socket == os.path.normpath(f"{tmp_path}/{os.environ['HOME']}.sock")
    assert ext.include_dir == str(tmp_path / "progs")


@pytest.mark.parametrize("text", ["[unix_http_server]\nfile=/x.sock\n",
                                  "[include]\nfiles=d/*.conf\n",
                                  "[unix_http_server]\nfile=/x.sock\n[include]\nfiles=*/x.conf\n"])
def test_external_config_unusable(tmp_path: Path, text: str) -> None:
    """No socket, no include, or no include dir to write into: a UsageError naming
    the variable, not a guess."""
    conf = tmp_path / "sv.conf"
    conf.write_text(text)
    with pytest.raises(UsageError, match="PROCMGMT_SUPERVISORD_CONF"):
        read_external_config(str(conf))


def _external(tmp_path: Path) -> tuple[Settings, Path, Path]:
    conf = tmp_path / "ext" / "supervisord.conf"
    (tmp_path / "ext" / "conf.d").mkdir(parents=True)
    conf.write_text(f"[unix_http_server]\nfile={tmp_path}/ext/s.sock\n"
                    "[include]\nfiles=conf.d/*.conf\n")
    s = resolve({"state_dir": str(tmp_path / "s"), "force_disable_user_change": True,
                 "process_manager": "supervisord",
                 "extra_params": {"port_base": free_port_block(2)}}, environ={})
    return s, conf, tmp_path / "ext" / "conf.d"


def test_external_not_running_is_an_error(tmp_path: Path) -> None:
    """An external supervisord that does not answer is an error; procmgmt starts none
    (no socket appears, nothing is linked)."""
    s, conf, conf_d = _external(tmp_path)
    act = SupervisordActivator(s, external=str(conf))
    m, specs = evaluate(str(SIMPLE), s)
    gen = build(m, specs, s)
    with pytest.raises(DeployError, match="does not answer"):
        act.prepare(gen, None)
    assert not (tmp_path / "ext" / "s.sock").exists()
    assert list(conf_d.iterdir()) == []
    with pytest.raises(UsageError, match="not procmgmt's"):
        act.shutdown()


def test_external_link_keeps_foreign_files(tmp_path: Path) -> None:
    """In a shared include dir only our own links are replaced or removed: someone
    else's file is kept, and one under a name we need is an error."""
    s, conf, conf_d = _external(tmp_path)
    act = SupervisordActivator(s, external=str(conf))
    m, specs = evaluate(str(SIMPLE), s)
    gen = build(m, specs, s)
    (conf_d / "other.conf").write_text("[program:other]\ncommand=/bin/true\n")
    act.link(gen)
    assert sorted(f.name for f in conf_d.iterdir()) == ["other.conf", "webapp.conf",
                                                        "webapp1.conf"]
    # A later activator of the profile finds the supervisord again (recorded).
    assert SupervisordActivator(s).external is not None
    act.link(None)
    assert [f.name for f in conf_d.iterdir()] == ["other.conf"]
    assert SupervisordActivator(s).external is None
    (conf_d / "webapp.conf").write_text("[program:webapp]\ncommand=/bin/true\n")
    with pytest.raises(DeployError, match="not procmgmt's"):
        act.link(gen)
    assert (conf_d / "webapp.conf").read_text().startswith("[program:webapp]")


# --------------------------------------------------------------------------- one supervisord

SLEEPER = '''
from procmgmt import Process

def processes(settings):
    return {"sleeper": Process(name="sleeper", process="/bin/sleep", args=[%r])}
'''


def _supervisords_reading(conf: str) -> list[int]:
    """Every process started as ``... supervisord ... -c conf`` (read from /proc here,
    independently of the activator's own scan)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"supervisord" in a for a in argv) and os.fsencode(conf) in argv:
            found.append(int(entry))
    return sorted(found)


def _sleeper(tmp_path: Path, seconds: str) -> Path:
    model = tmp_path / f"sleeper-{seconds}.py"
    model.write_text(SLEEPER % seconds)
    return model


@pytest.mark.e2e
def test_a_supervisord_that_does_not_answer_is_never_doubled(deployment: Deployment,
                                                             tmp_path: Path) -> None:
    """A supervisord of the profile that runs but has no socket yet (what a huge
    configuration looks like while it is being read) is waited for and reported,
    never joined by a second supervisord for the same profile."""
    dep = deployment
    gen1 = dep.build(_sleeper(tmp_path, "1001"))
    _switch(dep, gen1, None)
    dep.pid_of(gen1, "sleeper")
    first = dep.activator.supervisord_pid()
    assert first is not None
    os.unlink(dep.activator.socket_path)
    gen2 = dep.build(_sleeper(tmp_path, "1002"))
    act = SupervisordActivator(dep.settings)
    act.answer_timeout = 1.0
    try:
        with pytest.raises(DeployError, match=rf"\(pid {first}\) runs but did not answer"):
            act.prepare(gen2, gen1)
        assert _supervisords_reading(dep.activator.conf) == [first]
    finally:
        for pid in _supervisords_reading(dep.activator.conf):
            if pid != first:
                os.kill(pid, signal.SIGKILL)


@pytest.mark.e2e
def test_concurrent_starts_start_one_supervisord(deployment: Deployment,
                                                 tmp_path: Path) -> None:
    """Two commands starting the profile's supervisord at the same moment: one starts
    it, the other finds it running (the start lock), and both succeed."""
    import threading

    dep = deployment
    gen = dep.build(_sleeper(tmp_path, "1003"))
    errors: list[BaseException] = []

    def prepare() -> None:
        try:
            SupervisordActivator(dep.settings).prepare(gen, None)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=prepare) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    try:
        assert not errors, errors
        assert len(_supervisords_reading(dep.activator.conf)) == 1
    finally:
        status = dep.activator.status(gen, gen.by_name()["sleeper"])
        if status.pid:
            dep.pids.add(status.pid)


@pytest.mark.e2e
def test_a_wedged_supervisord_is_reported_not_waited_for_forever(deployment: Deployment,
                                                                 tmp_path: Path) -> None:
    """A supervisord that accepts connections but never replies (stopped here with
    SIGSTOP) makes the next switch fail with its PID within the answer timeout,
    without a second supervisord."""
    dep = deployment
    gen1 = dep.build(_sleeper(tmp_path, "1004"))
    _switch(dep, gen1, None)
    dep.pid_of(gen1, "sleeper")
    first = dep.activator.supervisord_pid()
    assert first is not None
    act = SupervisordActivator(dep.settings)
    act.answer_timeout, act.probe_timeout = 1.0, 0.5
    os.kill(first, signal.SIGSTOP)
    try:
        began = time.monotonic()
        with pytest.raises(DeployError, match=rf"\(pid {first}\) runs but did not answer"):
            act.prepare(dep.build(_sleeper(tmp_path, "1005")), gen1)
        assert time.monotonic() - began < 15
        assert _supervisords_reading(dep.activator.conf) == [first]
    finally:
        os.kill(first, signal.SIGCONT)


def test_log_files_in_the_manifest() -> None:
    """The manifest names the program's log files for 'procmgmt logs': stdout's (stderr
    goes there too), and stderr's own when an override separates them."""
    _, extra = _render(SIMPLE)["webapp"]
    assert extra["log_file"] == "/srv/pm/log/webapp.log" and "stderr_log_file" not in extra
    native = {"stdout_logfile": "/l/out.log", "redirect_stderr": False,
              "stderr_logfile": "/l/err.log"}
    spec = _spec()
    extra = SupervisordBackend().manifest_extra(native, spec, _ctx(spec))
    assert (extra["log_file"], extra["stderr_log_file"]) == ("/l/out.log", "/l/err.log")


def test_log_rotation_settings_become_supervisords_own(tmp_path: Path) -> None:
    """--log-max-bytes/--log-backups are written as stdout_logfile_maxbytes/_backups
    (supervisord rotates); unset, neither is written (supervisord's defaults)."""
    spec = _spec()
    settings = dataclasses.replace(golden_settings(False, "supervisord"),
                                   log_max_bytes=4096, log_backups=None)
    files, _ = SupervisordBackend().render_process(
        spec, BuildContext(settings=settings, specs={spec.name: spec}))
    text = next(f.content for f in files if f.path.endswith(".conf") and f.content)
    parsed = parse_with_supervisor(tmp_path, {"svc": text})["svc"]
    assert (parsed.stdout_logfile_maxbytes, parsed.stdout_logfile_backups) == (4096, 5)
    assert "logfile_maxbytes" not in _program_text(spec)
    assert "logfile_backups" not in _program_text(spec)
