"""cygrunsrv backend: params files, cygrunsrv's --args splitting, and the activator
running a fake ``cygrunsrv`` for real.

cygrunsrv (Cygwin on Windows) is not available here. What these tests prove:

- ``--args`` strings split back into exactly the intended argument vector
  under cygrunsrv's own rule (``eval_arglist`` in cygrunsrv.cc, written down
  in :mod:`procmgmt.backends.cygrunsrv.args` and re-implemented as
  :func:`split_args`), for hand-picked cases and as a property;
- params files carry every option in cygrunsrv's vocabulary, user and
  credentials produce warnings, generated proxies pass shellcheck;
- the activator runs ``cygrunsrv`` (``fake_cygrunsrv.sh`` on PATH, which
  records its argv and keeps installed/started state, and applies
  cygrunsrv's option checks) with exactly the expected commands, in
  dependency order, for deploy, upgrade, rollback and undeploy.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from procmgmt.backends import get_backend
from procmgmt.backends._activation import CommandResult, subprocess_runner
from procmgmt.backends.base import BuildContext, File, Privilege, ProcessMode, Support
from procmgmt.backends.cygrunsrv import CygrunsrvActivator, CygrunsrvBackend
from procmgmt.backends.cygrunsrv.activator import parse_query
from procmgmt.backends.cygrunsrv.args import arg_problem, join_args, quote_arg, split_args
from procmgmt.backends.cygrunsrv.params import ENTRY
from procmgmt.deploy.build import build, evaluate, render
from procmgmt.deploy.options import Options
from procmgmt.deploy.switch import Switcher
from procmgmt.errors import DeployError, ValidationError
from procmgmt.model.credentials import Credentials, User
from procmgmt.model.spec import ProcessSpec
from procmgmt.settings import Settings
from tests import _lanes
from tests.backends import _helpers
from tests.backends._helpers import deploy, rollback
from tests.conftest import EXAMPLES, golden_settings
from tests.golden.test_golden import CASES

HERE = Path(__file__).resolve().parent
FAKE = HERE / "fake_cygrunsrv.sh"
WEBAPPS = EXAMPLES / "webapps"


def tmp_settings(root: Path, privileged: bool = False, **extra: Any) -> Settings:
    """cygrunsrv settings with every directory below ``root`` (a test's private tree)."""
    return _helpers.tmp_settings(root, privileged, manager="cygrunsrv", **extra)


def render_one(spec: ProcessSpec, settings: Settings,
               others: Sequence[ProcessSpec] = ()) -> tuple[dict[str, str], list[str]]:
    """path -> content of one spec's files, and the warnings."""
    ctx = BuildContext(settings, {s.name: s for s in (spec, *others)})
    files, _ = CygrunsrvBackend(environ={}).render_process(spec, ctx)
    return {f.path: f.content or "" for f in files}, ctx.warnings


def params_of(files: Mapping[str, str]) -> list[str]:
    """The install params of a rendered process."""
    [doc] = [json.loads(v) for k, v in files.items() if k.endswith(".json")]
    params = doc["params"]
    assert isinstance(params, list)
    return params


# --- --args splitting ----------------------------------------------------------------


@pytest.mark.parametrize(("text", "argv"), [
    ("a b  c", ["a", "b", "c"]),
    ('"a b" c', ["a b", "c"]),
    ("'say \"hi\"' x", ['say "hi"', "x"]),
    ('a"b c', ['a"b', "c"]),          # a quote inside a bare word is literal
    ('"a"b', ["a", "b"]),             # the closing quote ends the word
    ('"unterminated x', ["unterminated x"]),
    ('""', [""]),
    ("tab\there", ["tab\there"]),     # only a space separates
    ("", []),
])
def test_split_args_follows_cygrunsrv_eval_arglist(text: str, argv: list[str]) -> None:
    """Cases read off cygrunsrv.cc's eval_arglist: spaces split, one leading quote
    (either kind) runs to the next same quote, no escapes."""
    assert split_args(text) == argv


def test_quote_arg_picks_bare_double_or_single() -> None:
    """Bare when safe, else double quotes, else single quotes; both kinds plus a space
    cannot be represented."""
    assert quote_arg("plain") == "plain"
    assert quote_arg('a"b') == 'a"b'
    assert quote_arg("a b") == '"a b"'
    assert quote_arg("") == '""'
    assert quote_arg('"lead') == "'\"lead'"
    assert quote_arg("it's \"x\"".replace(" ", "")) == "it's\"x\""
    with pytest.raises(ValueError, match="both"):
        quote_arg("it's \"x\"")
    assert arg_problem("nul\0") == "contains a NUL character"


WORD = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"), max_size=10)


@given(argv=st.lists(WORD, max_size=6))
def test_join_split_round_trip(argv: list[str]) -> None:
    """Property: every representable argument vector survives join -> cygrunsrv's split;
    an unrepresentable one is refused, never mangled."""
    if any(arg_problem(a) for a in argv):
        with pytest.raises(ValueError):
            join_args(argv)
    else:
        assert split_args(join_args(argv)) == argv


# --- generator -----------------------------------------------------------------------


def test_capabilities() -> None:
    """Registered as cygrunsrv; native dependencies through --dep; no user switching."""
    backend = get_backend("cygrunsrv")
    assert isinstance(backend, CygrunsrvBackend)
    caps = backend.capabilities
    assert (caps.prefers, caps.dependencies, caps.user_switching) == (
        ProcessMode.FOREGROUND, Support.NATIVE, Support.WARNED)
    assert caps.privileges == {Privilege.ROOT}


def test_foreground_params_in_order(tmp_path: Path) -> None:
    """A plain foreground process: --path/--args/--chdir/--disp/--desc/--type/--env/--dep/
    --stdout/--stderr/--shutdown, no proxy, --termsig omitted at its default."""
    settings = tmp_settings(tmp_path)
    dep = ProcessSpec(name="db", description="db", foreground="/bin/true")
    spec = ProcessSpec(name="web", description="Web server", foreground="/usr/bin/web",
                       foreground_args=("-p", "80", "a b"), directory="/srv",
                       environment={"B": "2", "A": "x=y"}, dependencies=("db",))
    files, warnings = render_one(spec, settings, [dep])
    assert list(files) == ["cygrunsrv/procmgmt-web.json"] and warnings == []
    log = f"{settings.log_dir}/web.log"
    assert params_of(files) == [
        "--path", "/usr/bin/web", "--args", '-p 80 "a b"', "--chdir", "/srv",
        "--disp", "procmgmt-web", "--desc", "Web server", "--type", "auto",
        "--env", "A=x=y", "--env", "B=2", "--dep", "procmgmt-db",
        "--stdout", log, "--stderr", log, "--shutdown"]
    assert json.loads(files["cygrunsrv/procmgmt-web.json"])["service"] == "procmgmt-web"


def test_daemon_umask_nice_and_initialize_use_the_proxy(tmp_path: Path) -> None:
    """Daemon-only: wrap-daemon proxy at @ENTRY@/bin/<name>-proxy; a foreground process
    with umask (no cygrunsrv option) gets a proxy that applies it."""
    settings = tmp_settings(tmp_path)
    daemon = ProcessSpec(name="d", description="d", daemon="/usr/sbin/d", daemon_args=("-D",),
                         pid_file="/run/d.pid")
    files, _ = render_one(daemon, settings)
    assert params_of(files)[:2] == ["--path", f"{ENTRY}/bin/d-proxy"]
    assert "--args" not in params_of(files)
    assert "wraps a self-daemonizing process" in files["bin/d-proxy"]
    fg = ProcessSpec(name="f", description="f", foreground="/bin/f", umask="0027",
                     directory="/srv")
    files, _ = render_one(fg, settings)
    assert "umask 0027" in files["bin/f-proxy"] and "cd /srv || exit 1" in files["bin/f-proxy"]
    assert "--chdir" not in params_of(files)


def test_user_and_credentials_are_warned_about_not_dropped(tmp_path: Path) -> None:
    """Privileged: a user and credentials each produce a warning; unprivileged builds
    disable users anyway and stay quiet."""
    spec = ProcessSpec(name="u", description="u", foreground="/bin/u", user="svc",
                       credentials=Credentials(users={"svc": User()}))
    _, warnings = render_one(spec, tmp_settings(tmp_path, privileged=True))
    assert len(warnings) == 2
    assert "user 'svc' is not supported" in warnings[0] and "credentials" in warnings[1]
    _, warnings = render_one(spec, tmp_settings(tmp_path))
    assert warnings == []


def test_overrides_reach_options(tmp_path: Path) -> None:
    """A dict override sets termsig, type and neverexits; a None drops --shutdown; a bad
    type value is an error."""
    spec = ProcessSpec(name="o", description="o", foreground="/bin/o", overrides={
        "cygrunsrv": {"termsig": "INT", "type": "manual", "neverexits": True,
                      "shutdown": None}})
    params = params_of(render_one(spec, tmp_settings(tmp_path))[0])
    assert params[params.index("--termsig") + 1] == "INT"
    assert params[params.index("--type") + 1] == "manual"
    assert "--neverexits" in params and "--shutdown" not in params
    bad = dataclasses.replace(spec, overrides={"cygrunsrv": {"type": "sometimes"}})
    with pytest.raises(ValueError, match="auto' or 'manual"):
        render_one(bad, tmp_settings(tmp_path))


def test_validate_reports_unpassable_arguments(tmp_path: Path) -> None:
    """A direct argument with a space and both quote kinds, and an env name with '=',
    are validation errors (the build names the instance and field)."""
    settings = tmp_settings(tmp_path)
    specs = [ProcessSpec(name="a", description="a", foreground="/bin/a",
                         foreground_args=("it's \"quoted\"",)),
             ProcessSpec(name="b", description="b", foreground="/bin/b",
                         environment={"X=Y": "1"})]
    problems = CygrunsrvBackend(environ={}).validate(specs, BuildContext(settings, {}))
    assert sorted((p.instance, p.field) for p in problems) == [("a", "foreground_process_args"),
                                                      ("b", "environment.X=Y")]
    model, real = evaluate(str(WEBAPPS / "processes.py"), settings)
    real = [dataclasses.replace(s, foreground_args=(*s.foreground_args, "a'b \"c\""))
            for s in real]
    with pytest.raises(ValidationError, match="cannot represent"):
        render(model, real, settings, CygrunsrvBackend(environ={}))


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_cases_are_well_formed(case: str, tmp_path: Path) -> None:
    """Every params file is a JSON list of strings whose --args split back into the
    process's arguments; every proxy passes dash -n and shellcheck -s sh."""
    model_file, privileged, extra = CASES[case]
    settings = dataclasses.replace(golden_settings(privileged, "cygrunsrv"), extra_params=extra)
    model, specs = evaluate(str(model_file), settings)
    result = render(model, specs, settings, get_backend("cygrunsrv"))
    for r in result.processes:
        files: dict[str, File] = {f.path: f for f in r.files}
        params = params_of({k: f.content or "" for k, f in files.items()})
        assert all(isinstance(p, str) for p in params)
        if "--args" in params:
            assert split_args(params[params.index("--args") + 1]) == list(
                r.spec.foreground_args)
        for path, f in files.items():
            if path.startswith("bin/"):
                assert f.mode == 0o755
                _lanes.assert_lints_clean(f.content or "", _lanes.DASH_N, _lanes.SHELLCHECK)


def test_fake_cygrunsrv_is_clean_posix_sh() -> None:
    """The stand-in passes dash -n and shellcheck (its bugs would hide ours)."""
    _lanes.assert_lints_clean(FAKE.read_text(), _lanes.DASH_N, _lanes.SHELLCHECK)


def test_query_parsing() -> None:
    """'Key : value' lines of cygrunsrv --query."""
    facts = parse_query("Service             : x\nCurrent State       : Running\n"
                        "Command             : /usr/bin/x -a b:c\n")
    assert facts == {"Service": "x", "Current State": "Running",
                     "Command": "/usr/bin/x -a b:c"}


# --- activator, with the fake cygrunsrv on PATH --------------------------------------


class FakeCygrunsrv:
    """Puts fake_cygrunsrv.sh on PATH as 'cygrunsrv' and reads back what it recorded."""

    def __init__(self, root: Path) -> None:
        self.bin = root / "bin"
        self.bin.mkdir(parents=True)
        shutil.copy(FAKE, self.bin / "cygrunsrv")
        (self.bin / "cygrunsrv").chmod(0o755)
        self.log = root / "cygrunsrv.log"
        self.state = root / "cygrunsrv-state"
        self.env = {**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}",
                    "FAKE_CYGRUNSRV_LOG": str(self.log),
                    "FAKE_CYGRUNSRV_STATE": str(self.state)}

    def runner(self, argv: Sequence[str]) -> CommandResult:
        """The real subprocess runner, with the fake first on PATH."""
        return subprocess_runner(argv, env=self.env)

    def calls(self) -> list[list[str]]:
        """Every recorded invocation's arguments (without the program name)."""
        if not self.log.exists():
            return []
        fields = self.log.read_bytes().decode().split("\0")[:-1]
        out, i = [], 0
        while i < len(fields):
            n = int(fields[i])
            out.append(fields[i + 1:i + 1 + n])
            i += 1 + n
        return out

    def plan(self) -> list[tuple[str, str]]:
        """(action, service) of every call that changes something (not --query)."""
        return [(c[0], c[1]) for c in self.calls() if c[0] != "--query"]

    def installed(self) -> dict[str, list[str]]:
        """service -> its install params, as the fake stored them."""
        if not self.state.exists():
            return {}
        return {p.name[: -len(".installed")]: p.read_bytes().decode().split("\0")[:-1]
                for p in self.state.glob("*.installed")}

    def running(self) -> list[str]:
        """Services the fake considers started."""
        return sorted(p.name[: -len(".running")] for p in self.state.glob("*.running"))

    def reset(self) -> None:
        """Forget the recorded calls (state stays)."""
        if self.log.exists():
            self.log.unlink()


def make_switcher(settings: Settings, act: CygrunsrvActivator,
                  monkeypatch: pytest.MonkeyPatch) -> Switcher:
    """A switcher whose engine gets ``act`` from the cygrunsrv backend; one action at a time."""
    monkeypatch.setattr(CygrunsrvBackend, "activator", lambda self, settings: act)
    return Switcher(settings, out=io.StringIO(), options=Options(max_parallel=1,
                    # the fake manager starts nothing that could become ready
                    readiness_checks=False))


def starts(*names: str) -> list[tuple[str, str]]:
    """Plan of installing and starting ``names``."""
    return [(a, f"procmgmt-{n}") for n in names for a in ("--install", "--start")]


def stops(*names: str) -> list[tuple[str, str]]:
    """Plan of stopping and removing ``names``."""
    return [(a, f"procmgmt-{n}") for n in names for a in ("--stop", "--remove")]


def test_command_plan_deploy_upgrade_rollback_undeploy(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """cygrunsrv really runs (the fake): --install with the params file's arguments (the
    proxy path resolved to the store entry) and --start in dependency order; --stop and
    --remove dependents first; every other call is a --query."""
    settings = tmp_settings(tmp_path, webapp_mode="daemon")
    fake = FakeCygrunsrv(tmp_path / "fake")
    act = CygrunsrvActivator(settings, runner=fake.runner, environ={})
    switcher = make_switcher(settings, act, monkeypatch)

    g1 = deploy(switcher, WEBAPPS / "processes.py")
    assert fake.plan() == starts("webapp", "webapp1")
    assert all(c[0] in ("--install", "--start", "--query") for c in fake.calls())
    installed = fake.installed()
    webapp = g1.by_name()["webapp"]
    assert installed["procmgmt-webapp"][:2] == ["--path",
                                                os.path.join(webapp.path, "bin/webapp-proxy")]
    with open(os.path.join(webapp.path, str(webapp.extra["params"]))) as f:
        raw = json.load(f)["params"]
    assert installed["procmgmt-webapp"][2:] == raw[2:]
    assert next(c for c in fake.calls() if c[0] == "--install") == [
        "--install", "procmgmt-webapp", *installed["procmgmt-webapp"]]
    assert fake.running() == ["procmgmt-webapp", "procmgmt-webapp1"]

    fake.reset()
    deploy(switcher, WEBAPPS / "processes-advanced.py")
    assert fake.plan() == stops("webapp") + starts("webapp5", "webapp2", "webapp3", "webapp6",
                                                   "webapp4")
    deps = fake.installed()["procmgmt-webapp4"]
    assert [deps[i + 1] for i, p in enumerate(deps) if p == "--dep"] == [
        "procmgmt-webapp2", "procmgmt-webapp3"]

    fake.reset()
    rollback(switcher)
    assert fake.plan() == stops("webapp4", "webapp6", "webapp3", "webapp2", "webapp5") + \
        starts("webapp")

    fake.reset()
    deploy(switcher, None)
    assert fake.plan() == stops("webapp1", "webapp")
    assert fake.installed() == {} and fake.running() == []


def test_start_reinstalls_a_stopped_leftover_and_keeps_a_running_one(tmp_path: Path) -> None:
    """A service found installed but stopped is removed and installed anew (our params
    count); one found running is left alone; stopping what is not installed is fine."""
    settings = tmp_settings(tmp_path)
    fake = FakeCygrunsrv(tmp_path / "fake")
    model, specs = evaluate(str(WEBAPPS / "processes.py"), settings)
    gen = build(model, specs, settings)
    proc = gen.by_name()["webapp"]
    act = CygrunsrvActivator(settings, runner=fake.runner, environ={})
    assert fake.runner(["cygrunsrv", "--install", "procmgmt-webapp", "--path", "/bin/true"]
                       ).returncode == 0
    fake.reset()
    act.start(gen, proc)
    assert fake.plan() == [("--remove", "procmgmt-webapp"), *starts("webapp")]
    assert fake.installed()["procmgmt-webapp"][:2] == ["--path", sys.executable]
    fake.reset()
    act.start(gen, proc)
    assert fake.plan() == []
    act.stop(gen, proc)
    fake.reset()
    act.stop(gen, proc)
    assert fake.plan() == [("--stop", "procmgmt-webapp")]


def test_failing_install_raises_with_cygrunsrv_message(tmp_path: Path) -> None:
    """A missing params file, and an install cygrunsrv refuses, fail the start with a
    DeployError naming the cause."""
    settings = tmp_settings(tmp_path, webapp_mode="daemon")
    fake = FakeCygrunsrv(tmp_path / "fake")
    model, specs = evaluate(str(WEBAPPS / "processes.py"), settings)
    gen = build(model, specs, settings)
    proc = gen.by_name()["webapp"]
    broken = dataclasses.replace(proc, extra={**proc.extra, "params": "missing.json"})
    act = CygrunsrvActivator(settings, runner=fake.runner, environ={})
    with pytest.raises(DeployError, match="cannot read the cygrunsrv params"):
        act.start(gen, broken)

    def refuse(argv: Sequence[str]) -> CommandResult:
        if argv[1] == "--install":
            return CommandResult(1, "cygrunsrv: Given path is not a valid executable\n")
        return fake.runner(argv)

    with pytest.raises(DeployError, match="not a valid executable"):
        CygrunsrvActivator(settings, runner=refuse, environ={}).start(gen, proc)
