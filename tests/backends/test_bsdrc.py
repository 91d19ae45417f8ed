"""BSD rc backend: generated scripts, our rcorder, the activator's command plans,
and the scripts run for real on Linux against a stand-in rc.subr.

FreeBSD's rc.subr, rcorder and daemon(8) do not exist on this Linux machine.
What these tests prove:

- every generated script is valid POSIX sh (sh -n, dash -n, shellcheck -s sh,
  checkbashisms), and its PROVIDE/REQUIRE headers, parsed back with our
  rcorder, order the processes exactly as procmgmt's dependency ordering
  allows;
- the activator issues exactly the expected commands, in order, for deploy,
  upgrade, rollback and undeploy, and edits rc.conf / links like sysrc(8);
- the scripts start, report and stop the webapps for real when sourced
  against ``fake_rc_subr.sh``. That file follows *our reading* of rc.subr(8)
  and of FreeBSD's rc.subr source; passing proves the scripts against that
  reading, not against FreeBSD itself.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from procmgmt.backends import get_backend
from procmgmt.backends._activation import (
    CommandResult,
    pid_alive,
    read_pid_file,
    subprocess_runner,
)
from procmgmt.backends.base import (
    BuildContext,
    Coverage,
    File,
    Ordering,
    PidFiles,
    ProcessMode,
    Support,
)
from procmgmt.backends.bsdrc import BSDRCActivator, BSDRCBackend
from procmgmt.backends.bsdrc.model import RcScriptModel, var_prefix
from procmgmt.backends.bsdrc.parse import RcScript, parse_header
from procmgmt.backends.bsdrc.rcconf import set_rc_conf, unset_rc_conf
from procmgmt.backends.bsdrc.rcorder import dependency_graph, is_valid_order, order_files, rcorder
from procmgmt.backends.bsdrc.script import render_script
from procmgmt.deploy.build import build, evaluate, render
from procmgmt.deploy.options import Options
from procmgmt.deploy.switch import Switcher
from procmgmt.errors import DeployError, ValidationError
from procmgmt.manifest import Generation
from procmgmt.model.loader import Model
from procmgmt.model.spec import ProcessSpec
from procmgmt.ordering import start_order
from procmgmt.settings import Settings
from tests import _lanes
from tests.backends import _helpers
from tests.backends._helpers import deploy, rollback
from tests.conftest import EXAMPLES, golden_settings
from tests.e2e.util import free_port_block
from tests.golden.test_golden import CASES

HERE = Path(__file__).resolve().parent
FAKE_RC_SUBR = HERE / "fake_rc_subr.sh"
WEBAPPS = EXAMPLES / "webapps"


# --- helpers -------------------------------------------------------------------------


def tmp_settings(root: Path, privileged: bool = False, **extra: Any) -> Settings:
    """bsdrc settings with every directory below ``root`` (a test's private tree)."""
    return _helpers.tmp_settings(root, privileged, manager="bsdrc", **extra)


def rendered(model_file: Path, settings: Settings,
             patch: Callable[[ProcessSpec], ProcessSpec] | None = None,
             ) -> tuple[Model, list[ProcessSpec], dict[str, list[File]]]:
    """Model, specs and files per process for the bsdrc backend."""
    model, specs = evaluate(str(model_file), settings)
    if patch is not None:
        specs = [patch(s) for s in specs]
    result = render(model, specs, settings, get_backend("bsdrc"))
    return model, specs, {r.spec.name: r.files for r in result.processes}


def script_of(files: Sequence[File]) -> File:
    """The rc.d script among a process's files."""
    [script] = [f for f in files if f.path.startswith("etc/rc.d/")]
    return script


def write(files: Sequence[File], root: Path) -> None:
    """Materialize files below ``root`` with their modes."""
    for f in files:
        target = root / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        assert f.content is not None
        target.write_text(f.content, encoding="utf-8")
        target.chmod(f.mode)


def with_fake_rc_subr(spec: ProcessSpec) -> ProcessSpec:
    """The spec with a bsdrc override that sources the stand-in rc.subr."""
    return dataclasses.replace(spec, overrides={**spec.overrides,
                                                "bsdrc": {"rc_subr": str(FAKE_RC_SUBR)}})




# --- generator -----------------------------------------------------------------------


def test_capabilities_match_the_brief() -> None:
    """The backend is registered as bsdrc and describes itself truthfully."""
    backend = get_backend("bsdrc")
    assert isinstance(backend, BSDRCBackend)
    caps = backend.capabilities
    assert (caps.prefers, caps.dependencies, caps.user_switching, caps.unprivileged,
            caps.tested) == (ProcessMode.DAEMON, Support.NATIVE, Support.NATIVE, True,
                             Coverage.GENERATED)
    assert caps.ordering is Ordering.EDGES and "rcorder" in caps.ordering_detail
    assert caps.pid_files is PidFiles.EVERY_PROCESS


def test_script_structure_daemon_mode(tmp_path: Path) -> None:
    """A daemon-capable process runs directly with its pid file; headers, rcvar,
    user and env file are where rc.subr expects them."""
    settings = tmp_settings(tmp_path, privileged=True)
    _, _, files = rendered(WEBAPPS / "processes-advanced.py", settings)
    text = script_of(files["webapp4"]).content or ""
    assert script_of(files["webapp4"]).mode == 0o755
    assert text.startswith("#!/bin/sh\n")
    header = parse_header(text)
    assert header.provides == ("webapp4",)
    assert header.requires == ("webapp2", "webapp3", "LOGIN")
    assert header.keywords == ("shutdown",)
    assert "\nname=webapp4\n" in text and "\nrcvar=webapp4_enable\n" in text
    assert ': "${webapp4_enable:=NO}"' in text
    assert ': "${webapp4_user:=webapp4}"' in text
    assert f"\ncommand={shlex.quote(sys.executable)}\n" in text
    assert f"\npidfile={settings.pid_file('webapp4')}\n" in text
    assert "procname=" not in text  # command itself is the process
    # defaults are not written (the readiness wait only reads sig_stop, falling back to TERM)
    assert "sig_stop=" not in text and "sig_reload" not in text
    assert "/usr/sbin/daemon" not in text
    assert text.rstrip().endswith('run_rc_command "$1"')
    env = {f.path: f.content for f in files["webapp4"]}["etc/env/webapp4.env"] or ""
    assert "PORT=5004" in env.splitlines()


def test_foreground_runs_under_daemon8_with_the_derived_pid_file(tmp_path: Path) -> None:
    """Foreground-only: daemon(8) -f -p <derived pid file> -o <log>, procname = the program.

    The original passed the raw (possibly null) pid file to daemon(8); here a
    process without an explicit pid file gets the derived one in both places.
    """
    settings = tmp_settings(tmp_path)
    spec = ProcessSpec(name="fg", description="fg", foreground="/bin/sleep",
                       foreground_args=("1000",))
    backend = BSDRCBackend()
    ctx = BuildContext(settings, {"fg": spec})
    files, extra = backend.render_process(spec, ctx)
    text = script_of(files).content or ""
    pid = f"{settings.runtime_dir}/fg.pid"
    assert "\ncommand=/usr/sbin/daemon\n" in text
    assert "\nprocname=/bin/sleep\n" in text
    assert f"\npidfile={pid}\n" in text
    args = re.search(r'procmgmt_command_args [^\n]*\\\n((?:\t    .*\n)+)', text)
    assert args is not None
    words = [shlex.split(line.rstrip(" \\"))[0] for line in args.group(1).splitlines()]
    assert words == ["-f", "-p", pid, "-o", f"{settings.log_dir}/fg.log", "/bin/sleep", "1000"]
    assert extra["pid_file"] == pid and extra["procname"] == "/bin/sleep"


def test_dict_override_deep_merges_and_reaches_every_key(tmp_path: Path) -> None:
    """A dict override changes native keys: signals, headers, knobs, rc.subr path."""
    settings = tmp_settings(tmp_path)
    spec = ProcessSpec(name="svc", description="svc", daemon="/usr/bin/svcd",
                       overrides={"bsdrc": {
                           "stop_signal": "INT", "reload_signal": "USR1",
                           "requires": ["NETWORKING"], "before": ["other"],
                           "keywords": ["shutdown", "nojail"], "rc_subr": "/tmp/x/rc.subr",
                           "rcvar_defaults": {"flags": "-v"}, "enable_default": "YES",
                           "nice": 5, "chdir": "/srv", "umask": "027",
                       }})
    files, _ = BSDRCBackend().render_process(spec, BuildContext(settings, {"svc": spec}))
    text = script_of(files).content or ""
    header = parse_header(text)
    assert header.requires == ("NETWORKING",) and header.before == ("other",)
    assert header.keywords == ("shutdown", "nojail")
    for line in ("sig_stop=INT", "sig_reload=USR1", ". /tmp/x/rc.subr",
                 ': "${svc_flags:=-v}"', ': "${svc_enable:=YES}"', ': "${svc_nice:=5}"',
                 ': "${svc_chdir:=/srv}"', ': "${svc_umask:=027}"'):
        assert f"\n{line}\n" in text, line


def test_callable_override_can_delete_keys(tmp_path: Path) -> None:
    """A callable override returns a new model: here it drops the keywords."""
    settings = tmp_settings(tmp_path)

    def patch(native: dict[str, Any]) -> dict[str, Any]:
        native["keywords"] = []
        native["description"] = "patched"
        return native

    spec = ProcessSpec(name="svc", description="svc", daemon="/usr/bin/svcd",
                       overrides={"bsdrc": patch})
    files, _ = BSDRCBackend().render_process(spec, BuildContext(settings, {"svc": spec}))
    text = script_of(files).content or ""
    assert "# KEYWORD" not in text
    assert "\ndesc=patched\n" in text


def test_names_that_are_not_identifiers_get_a_sanitized_prefix(tmp_path: Path) -> None:
    """'web-app.1@x' keeps its file name and PROVIDE but uses web_app_1_x_* variables."""
    settings = tmp_settings(tmp_path)
    spec = ProcessSpec(name="web-app.1@x", description="d", daemon="/usr/bin/svcd",
                       environment={"A": "1"}, nice=3)
    backend = BSDRCBackend()
    ctx = BuildContext(settings, {spec.name: spec})
    assert backend.validate([spec], ctx) == []
    files, extra = backend.render_process(spec, ctx)
    script = script_of(files)
    assert script.path == "etc/rc.d/web-app.1@x"
    text = script.content or ""
    assert parse_header(text).provides == ("web-app.1@x",)
    assert "\nname=web_app_1_x\n" in text and "\nrcvar=web_app_1_x_enable\n" in text
    assert "web_app_1_x_prestart()" in text
    assert extra["rcvar"] == "web_app_1_x_enable"
    assert var_prefix("1st") == "_1st"
    write(files, tmp_path / "out")
    lint(tmp_path / "out" / script.path)


def test_validate_reports_what_rc_subr_cannot_represent(tmp_path: Path) -> None:
    """Shared variable prefixes, unquotable pid files and clobbering env names."""
    settings = tmp_settings(tmp_path)
    specs = [
        ProcessSpec(name="a-b", description="x", daemon="/usr/bin/x"),
        ProcessSpec(name="a_b", description="x", daemon="/usr/bin/x"),
        ProcessSpec(name="c", description="x", daemon="/usr/bin/x",
                    pid_file="/run/with space.pid", environment={"name": "x", "OK": "1"}),
    ]
    problems = BSDRCBackend().validate(specs, BuildContext(settings, {s.name: s for s in specs}))
    fields = sorted((p.instance, p.field) for p in problems)
    assert fields == [("a-b", "name"), ("a_b", "name"), ("c", "environment"), ("c", "pid_file")]


def test_bad_override_value_is_a_validation_error(tmp_path: Path) -> None:
    """An override that would break rc.subr's unquoted use of pidfile is refused."""
    settings = tmp_settings(tmp_path)

    def patch(spec: ProcessSpec) -> ProcessSpec:
        return dataclasses.replace(spec, overrides={"bsdrc": {"pid_file": "/a b"}})

    with pytest.raises(ValidationError, match="pid_file"):
        rendered(WEBAPPS / "processes.py", settings, patch)


# --- shell validation ----------------------------------------------------------------


def lint(*paths: Path) -> None:
    """sh -n, dash -n, shellcheck -s sh and checkbashisms must all accept ``paths``
    (each script content once per session, see tests/_lanes.py)."""
    _lanes.assert_lints_clean([p.read_text() for p in paths], _lanes.SH_N, _lanes.DASH_N,
                              _lanes.SHELLCHECK, ("checkbashisms",))


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_generated_script_passes_the_shell_linters(case: str, tmp_path: Path) -> None:
    """Each example case's scripts pass sh/dash syntax checks, shellcheck and checkbashisms;
    each env file is valid sh too."""
    model_file, privileged, extra = CASES[case]
    settings = dataclasses.replace(golden_settings(privileged, "bsdrc"), extra_params=extra)
    _, _, files = rendered(model_file, settings)
    for name, fs in files.items():
        write(fs, tmp_path / name)
    lint(*(tmp_path / name / script_of(fs).path for name, fs in files.items()))
    for name, fs in files.items():
        for f in fs:
            if f.path.endswith(".env"):
                r = subprocess.run(["dash", "-n", str(tmp_path / name / f.path)], check=False)
                assert r.returncode == 0


def test_the_fake_rc_subr_is_clean_posix_sh() -> None:
    """The stand-in itself passes the same linters (its bugs would hide ours)."""
    lint(FAKE_RC_SUBR)


def test_env_file_reproduces_awkward_values_exactly(tmp_path: Path) -> None:
    """Values with quotes, $, backslashes and newlines survive rc.subr's ``. file``."""
    value = "it's $HOME `x` \\ \"q\"\nline2 *"
    spec = ProcessSpec(name="e", description="e", daemon="/usr/bin/x",
                       environment={"WEIRD": value})
    files, _ = BSDRCBackend().render_process(
        spec, BuildContext(tmp_settings(tmp_path), {"e": spec}))
    write(files, tmp_path)
    env = tmp_path / "etc/env/e.env"
    out = subprocess.run(["dash", "-c", 'set -a; . "$1"; set +a; printf %s "$WEIRD"', "sh",
                          str(env)], capture_output=True, text=True, check=True).stdout
    assert out == value


# --- ordering ------------------------------------------------------------------------


def test_rcorder_parses_only_the_header_block() -> None:
    """Lines before the block are skipped; the block ends at the first other line."""
    text = ("#!/bin/sh\n#\n# PROVIDE: a b\n# REQUIRES: c\n# REQUIRE: d\n# BEFORE: e\n"
            "# KEYWORDS: shutdown\n\n# PROVIDE: ignored\n")
    s = parse_header(text, "/x/a")
    assert (s.provides, s.requires, s.before, s.keywords) == (
        ("a", "b"), ("c", "d"), ("e",), ("shutdown",))


def test_rcorder_orders_by_require_and_before_and_filters_keywords() -> None:
    """REQUIRE puts providers first, BEFORE reverses it; -k/-s style filters apply."""
    scripts = [
        RcScript("/d/c", provides=("c",), requires=("b",)),
        RcScript("/d/b", provides=("b",), keywords=("nojail",)),
        RcScript("/d/a", provides=("a",), before=("b",)),
        RcScript("/d/z", provides=("z",), requires=("NOBODY",)),
    ]
    result = rcorder(scripts)
    names = [s.name for s in result.order]
    assert is_valid_order(names, dependency_graph(scripts))
    assert names.index("a") < names.index("b") < names.index("c")
    assert result.missing == [("z", "NOBODY")] and not result.cycles
    assert [s.name for s in rcorder(scripts, skip=["nojail"]).order] == \
        [n for n in names if n != "b"]
    assert [s.name for s in rcorder(scripts, keep=["nojail"]).order] == ["b"]


def test_rcorder_reports_a_cycle_in_headers() -> None:
    """A REQUIRE cycle is reported (and broken, as rcorder does) instead of looping."""
    scripts = [RcScript("/d/x", ("x",), ("z",)), RcScript("/d/y", ("y",), ("x",)),
               RcScript("/d/z", ("z",), ("y",))]
    result = rcorder(scripts)
    assert len(result.cycles) == 1
    cycle = result.cycles[0]
    assert cycle[0] == cycle[-1] and set(cycle) == {"x", "y", "z"}
    assert sorted(s.name for s in result.order) == ["x", "y", "z"]
    assert any("Circular dependency" in m for m in result.messages())


def test_deploy_order_is_a_topological_order_of_the_generated_headers(tmp_path: Path) -> None:
    """procmgmt's start order agrees with the headers parsed back from the files,
    rcorder over those files agrees with the model, and both cover the same processes."""
    settings = tmp_settings(tmp_path)
    _, specs, files = rendered(WEBAPPS / "processes-advanced.py", settings)
    paths = []
    for name, fs in files.items():
        write(fs, tmp_path / "out" / name)
        paths.append(str(tmp_path / "out" / name / script_of(fs).path))
    result = order_files(sorted(paths))
    assert not result.cycles
    assert sorted(result.missing) == sorted((Path(p).name, "LOGIN") for p in paths)
    header_graph = dependency_graph(result.order)
    model_graph = {s.name: set(s.dependencies) for s in specs}
    procmgmt_order = start_order(model_graph)
    assert [s.name for s in specs] == procmgmt_order
    assert header_graph == model_graph
    assert is_valid_order(procmgmt_order, header_graph)
    assert is_valid_order([s.name for s in result.order], model_graph)


def test_activator_refuses_headers_that_contradict_or_cycle(tmp_path: Path) -> None:
    """An override that makes webapp1 REQUIRE webapp4 creates a header cycle: prepare
    refuses to deploy it; one that only reorders is refused as a contradiction."""
    settings = tmp_settings(tmp_path, port_base=free_port_block(8))
    model, specs = evaluate(str(WEBAPPS / "processes-advanced.py"), settings)

    def requiring(target: str, extra: list[str]) -> list[ProcessSpec]:
        return [dataclasses.replace(s, overrides={"bsdrc": {"requires": extra}})
                if s.name == target else s for s in specs]

    act = BSDRCActivator(settings, runner=lambda argv: CommandResult(0), environ={})
    gen = build(model, requiring("webapp1", ["webapp4"]), settings)
    with pytest.raises(DeployError, match="circular"):
        act.prepare(gen, None)
    gen = build(model, requiring("webapp5", ["webapp2"]), settings)
    with pytest.raises(DeployError, match="webapp5 must start after webapp2"):
        act.prepare(gen, None)
    act.prepare(build(model, specs, settings), None)  # the unmodified model is fine


# --- command_args quoting ------------------------------------------------------------

RECORDER = """#!/bin/sh
for a in "$@"; do printf '%s\\0' "$a"; done >"$RECORD_TO"
"""


def run_quoting(tmp_path: Path, args: list[str], knobs: Mapping[str, str]) -> list[str]:
    """Start a script whose command records its argv, with rc.conf ``knobs``."""
    root = tmp_path / "q"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir()
    recorder = root / "rec"
    recorder.write_text(RECORDER)
    recorder.chmod(0o755)
    native = BSDRCBackend().translate(
        ProcessSpec(name="q", description="q", daemon=str(recorder), daemon_args=tuple(args),
                    pid_file=str(root / "q.pid")),
        BuildContext(tmp_settings(root), {}))
    native["rc_subr"] = str(FAKE_RC_SUBR)
    script = root / "q.sh"
    script.write_text(render_script(RcScriptModel.from_native(native)))
    script.chmod(0o755)
    conf = root / "rc.conf"
    conf.write_text("".join(f"q_{k}={shlex.quote(v)}\n" for k, v in knobs.items()))
    out = root / "argv"
    env = {"PATH": os.environ["PATH"], "RECORD_TO": str(out), "PROCMGMT_FAKE_SU": "1",
           "PROCMGMT_FAKE_RC_CONF": str(conf)}
    r = subprocess.run(["dash", str(script), "onestart"], env=env, capture_output=True,
                       text=True, check=False, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    data = out.read_bytes().decode()
    return data.split("\0")[:-1]


LAYERS = {
    "eval": {},
    "nice (sh -c)": {"nice": "1"},
    "user (su -m -c 'sh -c')": {"user": "nobody"},
    "user and nice": {"user": "nobody", "nice": "1"},
}

ARG_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"),
                   max_size=12)


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_command_args_survive_rc_subr_layers_fixed(layer: str, tmp_path: Path) -> None:
    """Nasty arguments reach the command exactly through each of rc.subr's layers."""
    args = ["plain", "two words", "it's", '"dq"', "$HOME", "`id`", "back\\slash",
            "new\nline", "*", "", "-D", "a'b\"c$d`e\\f", "; rm -rf /", "!"]
    assert run_quoting(tmp_path, args, LAYERS[layer]) == args


@pytest.mark.e2e
@pytest.mark.parametrize("layer", sorted(LAYERS))
@hsettings(max_examples=25, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=st.lists(ARG_TEXT, max_size=4))
def test_command_args_survive_rc_subr_layers_any(layer: str, args: list[str],
                                                  tmp_path: Path) -> None:
    """Property: any argument vector (no NUL) passes every layer unchanged."""
    assert run_quoting(tmp_path, args, LAYERS[layer]) == args


# --- activator: command plans --------------------------------------------------------


class Recorder:
    """A runner that records commands and imitates their effect on pid files.

    start/onestart writes the pid of a stand-in (a ``sleep`` with the
    deployment's marker, started at the first start; this test process itself
    would be refused as procmgmt's own pid) into the script's pidfile;
    stop/onestop removes it. The pidfile is read from the script.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.stand_in: subprocess.Popen[bytes] | None = None

    def _stand_in(self, script: str) -> int:
        if self.stand_in is None:
            root = os.path.realpath(script).rsplit("/etc/rc.d/", 1)[0]
            env_file = next(Path(root, "etc", "env").glob("*.env"))
            marker = re.search(r"^PROCMGMT_DEPLOYMENT=(.*)$", env_file.read_text(), re.M)
            assert marker is not None
            self.stand_in = subprocess.Popen(
                ["sleep", "600"], env={**os.environ, "PROCMGMT_DEPLOYMENT": marker.group(1)})
        return self.stand_in.pid

    def close(self) -> None:
        """Stop the stand-in."""
        if self.stand_in is not None:
            self.stand_in.kill()
            self.stand_in.wait()

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        script, action = argv[0], argv[1]
        self.calls.append((script, action))
        text = Path(script).read_text()
        m = re.search(r"^pidfile=(.*)$", text, re.M)
        assert m is not None
        pid_file = shlex.split(m.group(1))[0]
        if action.endswith("start"):
            os.makedirs(os.path.dirname(pid_file), exist_ok=True)
            Path(pid_file).write_text(f"{self._stand_in(script)}\n")
        elif action.endswith("stop") and os.path.exists(pid_file):
            os.unlink(pid_file)
        return CommandResult(0, "")


@pytest.fixture
def rec() -> Iterator[Recorder]:
    """A :class:`Recorder` whose stand-in process is stopped afterwards."""
    recorder = Recorder()
    yield recorder
    recorder.close()


def make_switcher(settings: Settings, act: BSDRCActivator,
                  monkeypatch: pytest.MonkeyPatch, parallel: int = 1) -> Switcher:
    """A switcher whose engine gets ``act`` (runner injected) from the bsdrc backend. One
    action at a time by default, so the command order is the documented one."""
    monkeypatch.setattr(BSDRCBackend, "activator", lambda self, settings: act)
    return Switcher(settings, out=io.StringIO(), options=Options(max_parallel=parallel,
                    # the fake manager starts nothing that could become ready
                    readiness_checks=False))


def script_path(gen: Generation, name: str) -> str:
    """The store script of ``name`` in ``gen``."""
    proc = gen.by_name()[name]
    return os.path.join(proc.path, str(proc.extra["script"]))


def test_command_plan_deploy_upgrade_rollback_undeploy(rec: Recorder, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Default mode: onestart/onestop of the store scripts, exactly these, in this order."""
    settings = tmp_settings(tmp_path)
    act = BSDRCActivator(settings, runner=rec, environ={}, start_timeout=2)
    switcher = make_switcher(settings, act, monkeypatch)

    g1 = deploy(switcher, WEBAPPS / "processes.py")
    assert rec.calls == [(script_path(g1, "webapp"), "onestart"),
                         (script_path(g1, "webapp1"), "onestart")]

    rec.calls.clear()
    g2 = deploy(switcher, WEBAPPS / "processes-advanced.py")
    assert script_path(g1, "webapp1") == script_path(g2, "webapp1")  # unchanged: kept
    assert rec.calls == [(script_path(g1, "webapp"), "onestop")] + [
        (script_path(g2, n), "onestart")
        for n in ("webapp5", "webapp2", "webapp3", "webapp6", "webapp4")]

    rec.calls.clear()
    rollback(switcher)
    assert rec.calls == [(script_path(g2, n), "onestop")
                         for n in ("webapp4", "webapp6", "webapp3", "webapp2", "webapp5")] + [
        (script_path(g1, "webapp"), "onestart")]

    rec.calls.clear()
    deploy(switcher, None)
    assert rec.calls == [(script_path(g1, "webapp1"), "onestop"),
                         (script_path(g1, "webapp"), "onestop")]


def test_enable_at_boot_links_edits_rc_conf_and_cleans_up(rec: Recorder, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """Boot mode: link into the target rc.d dir, rcvar=YES in rc.conf (other lines kept),
    'start' via the link; undeploy (even without the variable) stops via the link and
    removes both line and link."""
    settings = tmp_settings(tmp_path)
    target = tmp_path / "usr/local/etc/rc.d"
    rc_conf = tmp_path / "etc/rc.conf"
    rc_conf.parent.mkdir(parents=True)
    original = '# my host\nhostname="h"\nsshd_enable="YES"\nwebapp1_enable="NO"\n'
    rc_conf.write_text(original)
    rc_conf.chmod(0o640)
    boot_env = {"PROCMGMT_BSDRC_ENABLE_AT_BOOT": "1", "PROCMGMT_BSDRC_TARGET_DIR": str(target),
                "PROCMGMT_BSDRC_RC_CONF": str(rc_conf)}
    switcher = make_switcher(settings, BSDRCActivator(settings, runner=rec, environ=boot_env,
                                                  start_timeout=2), monkeypatch)
    g1 = deploy(switcher, WEBAPPS / "processes.py")
    assert rec.calls == [(str(target / "webapp"), "start"), (str(target / "webapp1"), "start")]
    for name in ("webapp", "webapp1"):
        assert os.readlink(target / name) == script_path(g1, name)
    assert rc_conf.read_text() == ('# my host\nhostname="h"\nsshd_enable="YES"\n'
                                   'webapp1_enable="YES"\nwebapp_enable="YES"\n')
    assert stat.S_IMODE(rc_conf.stat().st_mode) == 0o640

    rec.calls.clear()
    g2 = deploy(switcher, WEBAPPS / "processes-advanced.py")
    assert rec.calls[0] == (str(target / "webapp"), "stop")
    assert [c[1] for c in rec.calls[1:]] == ["start"] * 5
    assert sorted(os.listdir(target)) == [f"webapp{i}" for i in range(1, 7)]
    assert os.readlink(target / "webapp4") == script_path(g2, "webapp4")
    assert "webapp_enable" not in rc_conf.read_text()

    # Undeploy in default mode: the links found are ours, so boot mode is undone anyway.
    rec.calls.clear()
    switcher = make_switcher(settings, BSDRCActivator(settings, runner=rec, environ={
        "PROCMGMT_BSDRC_TARGET_DIR": str(target), "PROCMGMT_BSDRC_RC_CONF": str(rc_conf)},
        start_timeout=2), monkeypatch)
    deploy(switcher, None)
    assert rec.calls == [(str(target / n), "stop") for n in
                         ("webapp4", "webapp6", "webapp3", "webapp2", "webapp5", "webapp1")]
    assert os.listdir(target) == []
    assert rc_conf.read_text() == '# my host\nhostname="h"\nsshd_enable="YES"\n'


def test_failed_start_raises_with_the_script_output(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A non-zero onestart fails the switch with the command and its last output."""
    settings = tmp_settings(tmp_path)

    def failing(argv: Sequence[str]) -> CommandResult:
        return CommandResult(1, "webapp: WARNING: failed to start webapp\n")

    switcher = make_switcher(settings, BSDRCActivator(settings, runner=failing, environ={}),
                         monkeypatch)
    with pytest.raises(DeployError, match="failed to start webapp"):
        deploy(switcher, WEBAPPS / "processes.py")


def test_rc_conf_editing_is_sysrc_like(tmp_path: Path) -> None:
    """set replaces the first assignment and drops later duplicates; unset deletes all;
    nothing else changes and an unchanged file is not rewritten."""
    conf = tmp_path / "rc.conf"
    conf.write_text('a="1"\nx_enable="NO" # old\nb="2"\nexport x_enable=maybe\nc="3"')
    assert set_rc_conf(str(conf), "x_enable", "YES")
    assert conf.read_text() == 'a="1"\nx_enable="YES"\nb="2"\nc="3"'
    before = conf.stat().st_ino
    assert not set_rc_conf(str(conf), "x_enable", "YES")
    assert conf.stat().st_ino == before
    assert set_rc_conf(str(conf), "y_enable", "YES")
    assert conf.read_text().endswith('c="3"\ny_enable="YES"\n')
    assert unset_rc_conf(str(conf), "x_enable")
    assert not unset_rc_conf(str(conf), "x_enable")
    assert "x_enable" not in conf.read_text() and 'a="1"\nb="2"\n' in conf.read_text()
    assert set_rc_conf(str(tmp_path / "new.conf"), "z", "YES")
    assert (tmp_path / "new.conf").read_text() == 'z="YES"\n'


# --- running the generated scripts for real against the stand-in rc.subr -------------


def fake_runner(rc_conf: Path, bin_dir: Path) -> Callable[[Sequence[str]], CommandResult]:
    """Run commands with the stand-in rc.conf (and its daemon(8)) in the environment."""
    env = {**os.environ, "PROCMGMT_FAKE_RC_CONF": str(rc_conf),
           "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
    return lambda argv: subprocess_runner(argv, env=env)


def http_get(port: int, wait: float = 10.0) -> str:
    """The page of the webapp on ``port``, retried while nothing listens yet: a
    foreground process under daemon(8) counts as started before it binds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
                return str(resp.read().decode())
        except OSError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


@pytest.mark.e2e
@pytest.mark.parametrize(("mode", "boot"), [("daemon", False), ("foreground", False),
                                            ("foreground", True)])
def test_scripts_run_for_real_with_the_fake_rc_subr(mode: str, boot: bool, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Deploy the webapps example through the activator: the generated scripts, sourcing
    fake_rc_subr.sh, start them (self-daemonizing, or through the stand-in daemon(8));
    they answer HTTP, 'onestatus' reports them, undeploy stops them, nothing is left.
    In boot mode the scripts run with plain 'start', so they run only because the
    activator wrote <name>_enable="YES" into the rc.conf they read.

    This proves the scripts against our reading of rc.subr(8), not against FreeBSD.
    """
    base = free_port_block(3)
    settings = tmp_settings(tmp_path, port_base=base, webapp_mode=mode)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    daemon = bin_dir / "daemon"
    daemon.write_text(f'#!/bin/sh\n. {shlex.quote(str(FAKE_RC_SUBR))}\nfake_daemon "$@"\n')
    daemon.chmod(0o755)
    rc_conf = tmp_path / "rc.conf"
    # rc.conf's <name>_program replaces command= (rc.subr feature): daemon(8) -> the stand-in.
    rc_conf.write_text(f"webapp_program={daemon}\nwebapp1_program={daemon}\n"
                       if mode == "foreground" else "")
    env = {"PROCMGMT_BSDRC_ENABLE_AT_BOOT": "1" if boot else "",
           "PROCMGMT_BSDRC_TARGET_DIR": str(tmp_path / "rc.d"),
           "PROCMGMT_BSDRC_RC_CONF": str(rc_conf)}
    act = BSDRCActivator(settings, runner=fake_runner(rc_conf, bin_dir), environ=env)
    switcher = make_switcher(settings, act, monkeypatch, parallel=4)

    model, specs = evaluate(str(WEBAPPS / "processes.py"), settings)
    gen = build(model, [with_fake_rc_subr(s) for s in specs], settings)
    pids: list[int] = []
    try:
        switcher.activate(gen)
        for offset, proc in enumerate(gen.processes):
            text = Path(script_path(gen, proc.name)).read_text()
            assert ("/usr/sbin/daemon" in text) == (mode == "foreground")
            st_ = act.status(gen, proc)
            assert st_.running and st_.pid
            pids.append(st_.pid)
            port = base + offset
            assert f"listening on port: {port}" in http_get(port)
            r = fake_runner(rc_conf, bin_dir)([script_path(gen, proc.name), "onestatus"])
            assert r.returncode == 0 and f"is running as pid {st_.pid}" in r.output
        if boot:
            assert 'webapp_enable="YES"' in rc_conf.read_text()
        deploy(switcher, None)
        for proc in gen.processes:
            assert not act.status(gen, proc).running
            r = fake_runner(rc_conf, bin_dir)([script_path(gen, proc.name), "onestatus"])
            assert r.returncode == 1 and "is not running" in r.output
        deadline = time.monotonic() + 5
        while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [p for p in pids if pid_alive(p)]
        assert not (tmp_path / "rc.d").exists() or os.listdir(tmp_path / "rc.d") == []
        assert "_enable" not in rc_conf.read_text()
    finally:
        # Whatever happened, stop what this test started, by pid.
        for proc in gen.processes:
            pid = read_pid_file(str(proc.pid_file))
            if pid is not None and pid not in pids:
                pids.append(pid)
        for pid in pids:
            if pid_alive(pid):
                os.kill(pid, 9)


def test_other_activities_use_the_one_prefix_unless_installed(rec: Recorder, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    """run-activity reload goes to '<script> onereload' (rc.subr's command), and
    its exit status is returned."""
    settings = tmp_settings(tmp_path)
    act = BSDRCActivator(settings, runner=rec, environ={}, start_timeout=2)
    gen = deploy(make_switcher(settings, act, monkeypatch), WEBAPPS / "processes.py")
    rec.calls.clear()
    assert act.activity(gen, gen.by_name()["webapp"], "reload") == 0
    assert rec.calls == [(script_path(gen, "webapp"), "onereload")]


def test_user_switch_with_csh_sensitive_arguments_warns(tmp_path: Path) -> None:
    """With a user to switch to, an argument su's csh could mangle is reported."""
    settings = tmp_settings(tmp_path, privileged=True)
    spec = ProcessSpec(name="w", description="w", daemon="/usr/bin/x",
                       daemon_args=("--greeting=$HOME",), user="nobody")
    ctx = BuildContext(settings, {"w": spec})
    BSDRCBackend().render_process(spec, ctx)
    assert len(ctx.warnings) == 1 and "su(1)" in ctx.warnings[0]
    plain = dataclasses.replace(spec, daemon_args=("--port=80",))
    ctx = BuildContext(settings, {"w": plain})
    BSDRCBackend().render_process(plain, ctx)
    assert ctx.warnings == []


@pytest.mark.e2e
def test_a_starter_daemon_is_found_by_its_pid_file_program(tmp_path: Path) -> None:
    """A daemon command that only starts the server (as pg_ctl starts postgres) leaves
    a pid file naming another program: ``procname`` is that program
    (``pid_file_program``), so rc.subr's pid check (which compares the process's
    name) finds the server, 'onestatus' reports it and 'onestop' stops it."""
    settings = tmp_settings(tmp_path)
    pid_file = tmp_path / "server.pid"
    starter = tmp_path / "starter"
    starter.write_text(f"#!/bin/sh\nsetsid /bin/sleep 300 </dev/null >/dev/null 2>&1 &\n"
                       f"echo $! > {shlex.quote(str(pid_file))}\n")
    starter.chmod(0o755)
    spec = with_fake_rc_subr(ProcessSpec(
        name="srv", description="srv", daemon=str(starter), pid_file=str(pid_file),
        pid_file_program="/bin/sleep"))
    files, extra = BSDRCBackend().render_process(spec, BuildContext(settings, {"srv": spec}))
    assert "\nprocname=/bin/sleep\n" in (script_of(files).content or "")
    assert extra["procname"] == "/bin/sleep"
    write(files, tmp_path / "entry")
    script = str(tmp_path / "entry" / script_of(files).path)
    env = {**os.environ, "PROCMGMT_FAKE_RC_CONF": str(tmp_path / "rc.conf")}

    def rc(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([script, command], capture_output=True, text=True, env=env,
                              timeout=30, check=False)

    pid = 0
    try:
        assert rc("onestart").returncode == 0
        pid = int(pid_file.read_text())
        status = rc("onestatus")
        assert status.returncode == 0 and f"is running as pid {pid}" in status.stdout, status
        assert rc("onestop").returncode == 0
        deadline = time.monotonic() + 5
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(pid), "onestop left the server running"
    finally:
        if pid and pid_alive(pid):
            os.kill(pid, 9)
