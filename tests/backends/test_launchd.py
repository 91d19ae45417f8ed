"""launchd backend: plists (plistlib, xmllint, our key schema), the launchctl command
plans driven by the real engine, and the proxy's dependency wait run for real.

launchd and launchctl do not exist on Linux. What these tests prove:

- every generated plist reads back equal with plistlib, is well-formed XML
  (``xmllint --noout``) and has only known launchd keys of the right types;
  the embedded proxies pass ``shellcheck -s sh`` and ``dash -n``;
- overrides reach any key with the right plist type, and a None value, a
  wrong type or an unknown key is reported (error, error, warning);
- the activator issues exactly the expected launchctl commands, in order,
  for deploy, upgrade, rollback and undeploy, and copies (not links) plists;
- the proxy generated for webapp4 of the advanced example really waits until
  webapp2 and webapp3 run and then runs webapp4 (on Linux, with sh).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import plistlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from procmgmt.backends import get_backend
from procmgmt.backends._activation import CommandResult, pid_alive, read_pid_file
from procmgmt.backends.base import BuildContext, Coverage, File, Ordering, ProcessMode, Support
from procmgmt.backends.launchd import LaunchdActivator, LaunchdBackend
from procmgmt.backends.launchd.activator import parse_print
from procmgmt.backends.launchd.plist import render_plist
from procmgmt.backends.launchd.schema import KNOWN_KEYS, check_plist
from procmgmt.deploy.build import build, evaluate, render
from procmgmt.deploy.options import Options
from procmgmt.deploy.switch import Switcher
from procmgmt.errors import ValidationError
from procmgmt.model.spec import ProcessSpec
from procmgmt.settings import Settings
from tests import _lanes
from tests.backends import _helpers
from tests.backends._helpers import deploy, rollback, session_members
from tests.conftest import EXAMPLES, golden_settings
from tests.e2e.util import free_port_block
from tests.golden.test_golden import CASES

WEBAPPS = EXAMPLES / "webapps"


def tmp_settings(root: Path, privileged: bool = False, **extra: Any) -> Settings:
    """launchd settings with every directory below ``root`` (a test's private tree)."""
    return _helpers.tmp_settings(root, privileged, manager="launchd", **extra)


def rendered(model_file: Path, settings: Settings) -> tuple[dict[str, list[File]], list[str]]:
    """Files per process and the build warnings."""
    model, specs = evaluate(str(model_file), settings)
    result = render(model, specs, settings, get_backend("launchd"))
    return {r.spec.name: r.files for r in result.processes}, result.warnings


def job(files: Sequence[File]) -> dict[str, Any]:
    """The parsed plist of a process."""
    [f] = [f for f in files if f.path.endswith(".plist")]
    assert f.content is not None
    data = plistlib.loads(f.content.encode())
    assert isinstance(data, dict)
    return data


def render_one(spec: ProcessSpec, settings: Settings) -> tuple[dict[str, Any], list[str]]:
    """The job dictionary of one spec rendered alone, and its warnings."""
    ctx = BuildContext(settings, {spec.name: spec})
    files, _ = LaunchdBackend(environ={}).render_process(spec, ctx)
    return job(files), ctx.warnings


# --- generator -----------------------------------------------------------------------


def test_capabilities_say_dependencies_are_emulated_by_the_proxy() -> None:
    """Registered as launchd; dependencies emulated by waiting for pid files."""
    backend = get_backend("launchd")
    assert isinstance(backend, LaunchdBackend)
    caps = backend.capabilities
    assert (caps.prefers, caps.dependencies, caps.ordering, caps.tested) == (
        ProcessMode.FOREGROUND, Support.EMULATED, Ordering.WAITS, Coverage.GENERATED)
    assert caps.ordering_detail == "proxy waits for dependency pid files"


def test_foreground_process_runs_directly_with_typed_keys(tmp_path: Path) -> None:
    """No dependencies, no initialize: ProgramArguments is the program; Umask is an
    integer, Nice an integer, logs under the log dir, label prefixed."""
    settings = tmp_settings(tmp_path)
    spec = ProcessSpec(name="fg", description="d", foreground="/bin/sleep",
                       foreground_args=("100", "a b"), directory="/srv", umask="0027",
                       nice=-5, environment={"A": "1"})
    data, warnings = render_one(spec, settings)
    assert warnings == []
    assert data == {
        "Label": "org.procmgmt.fg",
        "ProgramArguments": ["/bin/sleep", "100", "a b"],
        "WorkingDirectory": "/srv",
        "Umask": 0o027,
        "Nice": -5,
        "EnvironmentVariables": {"A": "1"},
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "StandardOutPath": f"{settings.log_dir}/fg.log",
        "StandardErrorPath": f"{settings.log_dir}/fg.log",
    }


def test_prefix_comes_from_the_environment(tmp_path: Path) -> None:
    """PROCMGMT_LAUNCHD_PREFIX changes the label and the plist file name."""
    spec = ProcessSpec(name="x", description="x", foreground="/bin/true")
    settings = tmp_settings(tmp_path)
    backend = LaunchdBackend(environ={"PROCMGMT_LAUNCHD_PREFIX": "com.example."})
    files, extra = backend.render_process(spec, BuildContext(settings, {"x": spec}))
    assert [f.path for f in files] == ["Library/LaunchAgents/com.example.x.plist"]
    assert extra["label"] == "com.example.x"


def test_user_name_only_without_chainloading(tmp_path: Path) -> None:
    """Privileged: UserName for a plain process; with initialize the proxy runs as
    root and drops itself (no UserName), and the macOS limitation is warned about."""
    settings = tmp_settings(tmp_path, privileged=True)
    plain = ProcessSpec(name="u", description="u", foreground="/bin/true", user="nobody")
    data, warnings = render_one(plain, settings)
    assert data["UserName"] == "nobody" and warnings == []
    assert data["ProgramArguments"] == ["/bin/true"]
    init = dataclasses.replace(plain, initialize="mkdir -p /tmp/x")
    data, warnings = render_one(init, settings)
    assert "UserName" not in data
    script = data["ProgramArguments"][2]
    assert "setpriv --reuid=nobody" in script and "mkdir -p /tmp/x" in script
    assert len(warnings) == 1 and "setpriv" in warnings[0]
    unprivileged = tmp_settings(tmp_path)
    data, _ = render_one(plain, unprivileged)
    assert "UserName" not in data


def test_daemons_and_dependencies_go_through_the_embedded_proxy(tmp_path: Path) -> None:
    """Advanced example, privileged: webapp4 waits for webapp2/webapp3's pid files;
    webapp1 (a dependency) writes its pid file; all are /bin/sh -c proxies."""
    settings = tmp_settings(tmp_path, privileged=True)
    files, _ = rendered(WEBAPPS / "processes-advanced.py", settings)
    w4 = job(files["webapp4"])
    argv = w4["ProgramArguments"]
    assert argv[:2] == ["/bin/sh", "-c"] and argv[3] == "webapp4-proxy"
    script = argv[2]
    assert f"procmgmt_wait_for_dependency 'webapp2' '{settings.pid_file('webapp2')}'" in script
    assert f"procmgmt_wait_for_dependency 'webapp3' '{settings.pid_file('webapp3')}'" in script
    assert w4["UserName"] == "webapp4"
    w1 = job(files["webapp1"])["ProgramArguments"][2]
    assert "procmgmt_wait_for_dependency" not in w1
    assert f"proxy_pid_file='{settings.pid_file('webapp1')}'" in w1
    # Nothing depends on webapp6 and it depends on webapp5 only.
    assert "procmgmt_wait_for_dependency 'webapp5'" in job(files["webapp6"])["ProgramArguments"][2]


def test_daemon_mode_wraps_the_daemon(tmp_path: Path) -> None:
    """webapp_mode=daemon: the proxy starts webapp.py -D and waits for its pid file."""
    settings = tmp_settings(tmp_path, webapp_mode="daemon")
    files, _ = rendered(WEBAPPS / "processes.py", settings)
    script = job(files["webapp"])["ProgramArguments"][2]
    assert "wraps a self-daemonizing process" in script
    assert f"pid_file='{settings.pid_file('webapp')}'" in script
    assert "-D" in script


def test_overrides_reach_any_key_with_plist_types(tmp_path: Path) -> None:
    """A dict override deep-merges (bool, integer, real, string, array, dict); an unknown
    key is rendered but warned about."""
    override = {"ThrottleInterval": 30, "ProcessType": "Background",
                "SoftResourceLimits": {"NumberOfFiles": 4096},
                "LimitLoadToHosts": ["a", "b"], "KeepAlive": {"Crashed": True},
                "com.example.Ratio": 0.5, "EnvironmentVariables": {"B": "2"}}
    spec = ProcessSpec(name="o", description="o", foreground="/bin/true",
                       environment={"A": "1"}, overrides={"launchd": override})
    data, warnings = render_one(spec, tmp_settings(tmp_path))
    assert data["ThrottleInterval"] == 30 and data["ProcessType"] == "Background"
    assert data["SoftResourceLimits"] == {"NumberOfFiles": 4096}
    assert data["LimitLoadToHosts"] == ["a", "b"]
    assert data["KeepAlive"] == {"SuccessfulExit": False, "Crashed": True}
    assert data["EnvironmentVariables"] == {"A": "1", "B": "2"}
    assert data["com.example.Ratio"] == 0.5
    assert len(warnings) == 1 and "com.example.Ratio" in warnings[0]


def test_callable_override_replaces_the_proxy(tmp_path: Path) -> None:
    """A callable may drop the proxy and set its own ProgramArguments; keeping both is
    an error that says how to fix it."""
    def own(native: dict[str, Any]) -> dict[str, Any]:
        del native["_proxy"]
        native["ProgramArguments"] = ["/usr/bin/mine"]
        return native

    base = ProcessSpec(name="d", description="d", daemon="/usr/sbin/d", pid_file="/run/d.pid")
    data, _ = render_one(dataclasses.replace(base, overrides={"launchd": own}),
                         tmp_settings(tmp_path))
    assert data["ProgramArguments"] == ["/usr/bin/mine"]
    both = dataclasses.replace(base, overrides={"launchd": {"ProgramArguments": ["/x"]}})
    with pytest.raises(ValueError, match="_proxy to None"):
        render_one(both, tmp_settings(tmp_path))


@pytest.mark.parametrize(("patch", "message"), [
    ({"RunAtLoad": "yes"}, "RunAtLoad must be a boolean"),
    ({"Nice": True}, "Nice must be an integer"),
    ({"KeepAlive": {"SucessfulExit": False}}, "KeepAlive must be"),
    ({"ProgramArguments": ["/bin/true", 3]}, "ProgramArguments must be an array of strings"),
    ({"ProcessType": "Fast"}, "ProcessType must be one of"),
])
def test_wrong_types_are_errors(patch: dict[str, Any], message: str, tmp_path: Path) -> None:
    """A known key with the wrong type fails the render with the key named."""
    spec = ProcessSpec(name="t", description="t", foreground="/bin/true",
                       overrides={"launchd": patch})
    with pytest.raises(ValueError, match=message):
        render_one(spec, tmp_settings(tmp_path))


def test_none_value_is_an_error_naming_the_key(tmp_path: Path) -> None:
    """The original rendered a null as an empty key; here it names the key (nested too)."""
    def nested_none(native: dict[str, Any]) -> dict[str, Any]:
        native["KeepAlive"]["SuccessfulExit"] = None
        return native

    spec = ProcessSpec(name="n", description="n", foreground="/bin/true",
                       overrides={"launchd": nested_none})
    with pytest.raises(ValueError, match=r"launchd key KeepAlive\.SuccessfulExit is None"):
        render_one(spec, tmp_settings(tmp_path))
    with pytest.raises(ValueError, match=r"launchd key Sockets is None"):
        render_plist({"Label": "x", "Program": "/bin/true", "Sockets": None})


def test_build_reports_a_bad_override_as_a_validation_error(tmp_path: Path) -> None:
    """Through the build pipeline, a wrong type becomes a ValidationError for the override."""
    settings = tmp_settings(tmp_path)
    model, specs = evaluate(str(WEBAPPS / "processes.py"), settings)
    specs = [dataclasses.replace(s, overrides={"launchd": {"RunAtLoad": 1}}) for s in specs]
    with pytest.raises(ValidationError, match="RunAtLoad must be a boolean"):
        render(model, specs, settings, LaunchdBackend(environ={}))


def test_carriage_return_and_control_characters_are_refused(tmp_path: Path) -> None:
    """XML cannot hold control characters, and a CR would read back as LF: validate
    reports the spec value; render refuses an override value."""
    settings = tmp_settings(tmp_path)
    spec = ProcessSpec(name="c", description="c", foreground="/bin/true",
                       environment={"A": "x\x01y"})
    problems = LaunchdBackend(environ={}).validate([spec], BuildContext(settings, {}))
    assert [(p.instance, p.field) for p in problems] == [("c", "environment")]
    with pytest.raises(ValueError, match="read back"):
        render_plist({"Label": "x", "Program": "/bin/true", "WorkingDirectory": "a\rb"})


def test_schema_covers_the_keys_we_write_and_warns_on_unknown_ones() -> None:
    """Every key the translator writes is in the schema; unknown keys are warnings,
    missing Label/program are errors."""
    for key in ("Label", "ProgramArguments", "EnvironmentVariables", "WorkingDirectory",
                "Umask", "Nice", "UserName", "RunAtLoad", "KeepAlive", "StandardOutPath",
                "StandardErrorPath"):
        assert key in KNOWN_KEYS
    report = check_plist({"Bogus": 1})
    assert report.errors == ["Label is required",
                             "Program or a non-empty ProgramArguments is required"]
    assert len(report.warnings) == 1 and "Bogus" in report.warnings[0]


# --- every golden case: plistlib, xmllint, schema, shell linters ---------------------


def lint_shell(path: Path) -> None:
    """dash -n and shellcheck -s sh accept ``path`` (once per content, tests/_lanes.py)."""
    _lanes.assert_lints_clean(path.read_text(), _lanes.DASH_N, _lanes.SHELLCHECK)


@pytest.mark.requires_tool("xmllint")
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_plist_is_valid(case: str, tmp_path: Path) -> None:
    """Each example plist round-trips through plistlib, passes xmllint --noout and the
    schema without errors or warnings; each embedded proxy passes dash -n and shellcheck."""
    model_file, privileged, extra = CASES[case]
    settings = dataclasses.replace(golden_settings(privileged, "launchd"), extra_params=extra)
    files, _ = rendered(model_file, settings)
    xmllint = _lanes.require_tool("xmllint")
    for name, fs in files.items():
        [f] = fs
        assert f.path.startswith("Library/LaunchDaemons/" if privileged
                                 else "Library/LaunchAgents/")
        path = tmp_path / f"{name}.plist"
        path.write_text(f.content or "", encoding="utf-8")
        r = subprocess.run([xmllint, "--noout", str(path)], capture_output=True, text=True,
                           check=False)
        assert r.returncode == 0, r.stderr
        data = job(fs)
        assert plistlib.loads(plistlib.dumps(data)) == data
        report = check_plist(data)
        assert report.errors == [] and report.warnings == []
        argv = data["ProgramArguments"]
        if argv[0] == "/bin/sh":
            script = tmp_path / f"{name}-proxy"
            script.write_text(argv[2])
            lint_shell(script)


# --- activator: launchctl command plans ----------------------------------------------

CANNED_PRINT = """{service} = {{
\tactive count = 1
\tpath = {path}
\ttype = LaunchAgent
\tstate = running

\tprogram = /bin/sh
\targuments = {{
\t\t/bin/sh
\t\t-c
\t}}

\tenvironment = {{
\t\tpid = 1
\t\tstate = waiting
\t}}

\tpid = {pid}
\timmediate reason = speculative
\tlast exit code = (never exited)
}}
"""


class FakeLaunchctl:
    """Records launchctl commands and keeps which labels are loaded.

    bootstrap needs the plist copy to exist (and reads its Label); print of a
    loaded service answers with canned output naming a live pid (this test's),
    of anything else exit 113 like launchctl's "Could not find service".
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.loaded: dict[str, str] = {}

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        assert argv[0] == "launchctl"
        verb, *rest = argv[1:]
        self.calls.append((verb, *rest))
        if verb == "print":
            path = self.loaded.get(rest[0])
            if path is None:
                return CommandResult(113, f'Could not find service "{rest[0]}"\n')
            return CommandResult(0, CANNED_PRINT.format(service=rest[0], path=path,
                                                        pid=os.getpid()))
        if verb == "bootstrap":
            domain, plist = rest
            with open(plist, "rb") as f:
                label = plistlib.load(f)["Label"]
            self.loaded[f"{domain}/{label}"] = plist
            return CommandResult(0)
        if verb == "bootout":
            if self.loaded.pop(rest[0], None) is None:
                return CommandResult(3, "Boot-out failed: 3: No such process\n")
            return CommandResult(0)
        if verb == "kickstart":
            return CommandResult(0 if rest[0] in self.loaded else 113)
        if verb == "enable":
            return CommandResult(0)
        return CommandResult(64, f"unknown subcommand {verb}")

    def plan(self) -> list[tuple[str, ...]]:
        """The commands that change something (print is status only)."""
        return [c for c in self.calls if c[0] != "print"]


def make_switcher(settings: Settings, act: LaunchdActivator,
                  monkeypatch: pytest.MonkeyPatch) -> Switcher:
    """A switcher whose engine gets ``act`` from the launchd backend; one action at a time."""
    monkeypatch.setattr(LaunchdBackend, "activator", lambda self, settings: act)
    return Switcher(settings, out=io.StringIO(), options=Options(max_parallel=1,
                    # the fake manager starts nothing that could become ready
                    readiness_checks=False))


def starts(target: Path, *names: str) -> list[tuple[str, ...]]:
    """The command plan of starting ``names`` as agents of uid 501."""
    plan: list[tuple[str, ...]] = []
    for n in names:
        svc = f"gui/501/org.procmgmt.{n}"
        plan += [("enable", svc), ("bootstrap", "gui/501", str(target / f"org.procmgmt.{n}.plist")),
                 ("kickstart", svc)]
    return plan


def stops(*names: str) -> list[tuple[str, ...]]:
    """The command plan of stopping ``names``."""
    return [("bootout", f"gui/501/org.procmgmt.{n}") for n in names]


def test_command_plan_deploy_upgrade_rollback_undeploy(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """enable/bootstrap/kickstart to start, bootout to stop, in dependency order; plists
    are copied into the target dir and removed again.

    Upgrading to the advanced example also restarts webapp1: it becomes a dependency,
    so it now runs through the proxy that writes its pid file (a different plist).
    """
    settings = tmp_settings(tmp_path)
    target = tmp_path / "LaunchAgents"
    fake = FakeLaunchctl()
    act = LaunchdActivator(settings, runner=fake, uid=501, start_timeout=2,
                           environ={"PROCMGMT_LAUNCHD_TARGET_DIR": str(target)})
    switcher = make_switcher(settings, act, monkeypatch)

    g1 = deploy(switcher, WEBAPPS / "processes.py")
    assert fake.plan() == starts(target, "webapp", "webapp1")
    for proc in g1.processes:
        copy = target / f"org.procmgmt.{proc.name}.plist"
        assert not copy.is_symlink()
        assert copy.read_bytes() == (Path(proc.path) / str(proc.extra["plist"])).read_bytes()
        assert oct(copy.stat().st_mode & 0o777) == oct(0o644)

    fake.calls.clear()
    deploy(switcher, WEBAPPS / "processes-advanced.py")
    assert fake.plan() == stops("webapp1", "webapp") + starts(
        target, "webapp1", "webapp5", "webapp2", "webapp3", "webapp6", "webapp4")
    assert sorted(os.listdir(target)) == [f"org.procmgmt.webapp{i}.plist" for i in range(1, 7)]

    fake.calls.clear()
    rollback(switcher)
    assert fake.plan() == stops("webapp4", "webapp6", "webapp3", "webapp2", "webapp5",
                                "webapp1") + starts(target, "webapp", "webapp1")

    fake.calls.clear()
    deploy(switcher, None)
    assert fake.plan() == stops("webapp1", "webapp")
    assert os.listdir(target) == [] and fake.loaded == {}


def test_start_boots_out_a_stale_load_first(tmp_path: Path) -> None:
    """A label still loaded (interrupted switch) is booted out before bootstrap, so the
    new plist is the one launchd runs."""
    settings = tmp_settings(tmp_path)
    model, specs = evaluate(str(WEBAPPS / "processes.py"), settings)
    gen = build(model, specs, dataclasses.replace(settings))
    fake = FakeLaunchctl()
    fake.loaded["system/org.procmgmt.webapp"] = "/old.plist"
    act = LaunchdActivator(settings, runner=fake, uid=0, start_timeout=2,
                           environ={"PROCMGMT_LAUNCHD_TARGET_DIR": str(tmp_path / "t")})
    act.start(gen, gen.by_name()["webapp"])
    assert fake.plan() == [("bootout", "system/org.procmgmt.webapp"),
                           ("enable", "system/org.procmgmt.webapp"),
                           ("bootstrap", "system", str(tmp_path / "t/org.procmgmt.webapp.plist")),
                           ("kickstart", "system/org.procmgmt.webapp")]


def test_print_parsing_takes_only_the_service_level() -> None:
    """state and pid come from the service's own block, not from nested blocks."""
    facts = parse_print(CANNED_PRINT.format(service="gui/501/x", path="/p", pid=4242))
    assert facts["state"] == "running" and facts["pid"] == "4242"
    assert facts["path"] == "/p" and facts["last exit code"] == "(never exited)"
    stopped = "gui/501/x = {\n\tstate = not running\n\tlast exit code = 1\n}\n"
    assert parse_print(stopped) == {"state": "not running", "last exit code": "1"}


# --- the proxy's dependency wait, for real -------------------------------------------




def listening(port: int) -> bool:
    """Something accepts connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def start_daemon(data: dict[str, Any]) -> None:
    """Start a webapp as a daemon (webapp.py -D) with a job's environment."""
    env = {**os.environ, **data["EnvironmentVariables"]}
    subprocess.run([sys.executable, str(WEBAPPS / "webapp.py"), "-D"], env=env, check=True,
                   timeout=30)


def launch_like_launchd(data: dict[str, Any], log: Path) -> subprocess.Popen[bytes]:
    """Run a job's ProgramArguments with its environment, as launchd would (own session)."""
    env = {"PATH": os.environ["PATH"], **data["EnvironmentVariables"]}
    with open(log, "wb") as out:
        return subprocess.Popen(data["ProgramArguments"], env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.e2e
def test_proxy_waits_for_dependencies_then_runs_webapp4(tmp_path: Path) -> None:
    """webapp4's proxy, started while webapp2 and webapp3 are down, waits (webapp4 does
    not listen); with only webapp2 up it still waits; once webapp3 runs too, it writes
    its pid file and execs webapp4, which answers HTTP with that very pid."""
    base = free_port_block(8)
    settings = tmp_settings(tmp_path, port_base=base)
    for i in range(1, 7):
        Path(settings.pid_dir(f"webapp{i}")).mkdir(parents=True)
    files, _ = rendered(WEBAPPS / "processes-advanced.py", settings)
    jobs = {name: job(fs) for name, fs in files.items()}
    port4 = base + 4
    log = tmp_path / "webapp4-proxy.log"
    proxy = launch_like_launchd(jobs["webapp4"], log)
    try:
        time.sleep(1.0)
        assert proxy.poll() is None and not listening(port4)
        assert "waiting for dependency webapp2" in log.read_text()
        start_daemon(jobs["webapp2"])
        time.sleep(1.0)
        assert proxy.poll() is None and not listening(port4)
        start_daemon(jobs["webapp3"])
        deadline = time.monotonic() + 10
        while not listening(port4):
            assert proxy.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        text = log.read_text()
        assert "dependency webapp3 is up" in text
        with urllib.request.urlopen(f"http://127.0.0.1:{port4}/", timeout=5) as resp:
            assert f"listening on port: {port4}" in resp.read().decode()
        assert read_pid_file(f"{settings.pid_file('webapp4')}") == proxy.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proxy.pid, signal.SIGTERM)
        proxy.wait(timeout=10)
        for name in ("webapp2", "webapp3"):
            pid = read_pid_file(settings.pid_file(name))
            if pid is not None and pid_alive(pid):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(
                (p := read_pid_file(settings.pid_file(n))) and pid_alive(p)
                for n in ("webapp2", "webapp3")):
            time.sleep(0.05)


@pytest.mark.e2e
def test_waiting_proxy_stops_at_once_and_gives_up_after_its_timeout(tmp_path: Path) -> None:
    """TERM while waiting ends the proxy promptly and leaves nothing of its session;
    with wait_timeout=1 (override) it gives up with exit status 1 and a message."""
    settings = tmp_settings(tmp_path)
    spec = ProcessSpec(name="late", description="l", foreground="/bin/sleep",
                       foreground_args=("100",), dependencies=("dep",))
    dep = ProcessSpec(name="dep", description="d", foreground="/bin/sleep")
    ctx = BuildContext(settings, {"late": spec, "dep": dep})
    backend = LaunchdBackend(environ={})
    files, _ = backend.render_process(spec, ctx)
    data = job(files)
    data["EnvironmentVariables"] = {}
    proxy = launch_like_launchd(data, tmp_path / "a.log")
    try:
        time.sleep(0.5)
        assert proxy.poll() is None
        proxy.send_signal(signal.SIGTERM)
        assert proxy.wait(timeout=3) == 143
        time.sleep(0.2)
        assert session_members(proxy.pid) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proxy.pid, signal.SIGKILL)
    quick = dataclasses.replace(spec, overrides={"launchd": {"_proxy": {"wait_timeout": 1}}})
    files, _ = backend.render_process(quick, ctx)
    data = job(files)
    data["EnvironmentVariables"] = {}
    started = time.monotonic()
    proxy = launch_like_launchd(data, tmp_path / "b.log")
    try:
        assert proxy.wait(timeout=10) == 1
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proxy.pid, signal.SIGKILL)
    assert 0.9 < time.monotonic() - started < 5
    assert "giving up: dependency dep is not up after 1 seconds" in (tmp_path / "b.log").read_text()

