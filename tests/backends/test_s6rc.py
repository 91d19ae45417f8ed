"""s6-rc: source trees checked with s6-rc-compile's rules, the activator's command plan,
and the conversion file judged by a model of s6-rc-update's documented rules.

s6-rc is not packaged here, so nothing runs s6-rc's programs: the rendered
trees go through :func:`procmgmt.backends.s6rc.sourcecheck.check` (whose rules
are tested one by one below on broken trees), the activator runs against a
runner that records every command and does on disk only what the real program
would leave behind for the next step (a compiled directory, the live link),
and the restart rule is checked against :func:`update_model`, written from
s6-rc-update.html ("Restarts", "The conversion file"), not from the generator.
"""

from __future__ import annotations

import io
import os
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from procmgmt.backends import get_backend
from procmgmt.backends._activation import CommandResult
from procmgmt.backends.base import File, Tool
from procmgmt.backends.s6rc import S6RcActivator, sourcecheck
from procmgmt.backends.s6rc.activator import Supervisor
from procmgmt.backends.s6rc.update import conversion_file, sources
from procmgmt.deploy.build import build, evaluate, render
from procmgmt.deploy.engine import Engine, Options
from procmgmt.deploy.plan import compute_plan
from procmgmt.deploy.profile import Profile
from procmgmt.errors import ProcmgmtError, ValidationError
from procmgmt.manifest import Generation
from procmgmt.settings import Settings
from tests import _lanes
from tests.backends._helpers import tmp_settings
from tests.conftest import golden_settings
from tests.golden.test_golden import CASES

MODEL = """\
from procmgmt import Instance, Process

def processes(settings):
    procs = {{}}
    a = Process(name="a", foreground_process="/bin/sleep", args=["{a}"])
    procs["a"] = Instance(a)
    procs["b"] = Instance(Process(name="b", foreground_process="/bin/sleep", args=["1"],
                                  dependencies=[a]))
    if {with_c}:
        procs["c"] = Instance(Process(name="c", foreground_process="/bin/sleep", args=["2"]))
    return procs
"""


# --------------------------------------------------------------------------- helpers


def write_tree(root: Path, files: Sequence[File]) -> None:
    """Write rendered files below ``root`` with their modes (as the store does)."""
    for f in files:
        path = root / f.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f.content or "")
        path.chmod(f.mode)


def golden_sources(tmp_path: Path, case: str) -> list[str]:
    """A golden case rendered into one source dir per process plus the generation's."""
    model_path, privileged, extra = CASES[case]
    import dataclasses

    settings = dataclasses.replace(golden_settings(privileged, "s6-rc"), extra_params=extra)
    model, specs = evaluate(str(model_path), settings)
    result = render(model, specs, settings, get_backend("s6-rc"))
    for r in result.processes:
        write_tree(tmp_path / r.spec.name, r.files)
    write_tree(tmp_path / "_generation", result.generation_files)
    return sorted(str(p / "s6-rc") for p in tmp_path.iterdir())


def service(root: Path, name: str, kind: str, **files: str) -> Path:
    """A definition directory ``root/name`` of ``kind`` with ``files`` (``a/b`` keys
    make subdirectories; ``run`` is executable)."""
    d = root / name
    d.mkdir(parents=True)
    (d / "type").write_text(f"{kind}\n")
    for rel, text in files.items():
        path = d / rel.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if rel == "run":
            path.chmod(0o755)
    return d


def valid_tree(root: Path) -> Path:
    """web (longrun) -> db (longrun), web piped into web-log, a setup oneshot, a bundle."""
    service(root, "db", "longrun", run="#!/bin/sh\nexec db\n")
    service(root, "web", "longrun", run="#!/bin/sh\nexec web\n", **{
        "dependencies.d__db": "", "dependencies.d__setup": "", "producer-for": "web-log\n",
        "notification-fd": "3\n", "timeout-up": "60000\n"})
    service(root, "web-log", "longrun", run="#!/bin/sh\nexec s6-log t ./log\n",
            **{"consumer-for": "web\n", "pipeline-name": "web-pipeline\n"})
    service(root, "setup", "oneshot", up='/bin/sh -c "mkdir -p /run/x && echo \\"ok\\""\n',
            down="foreground { echo down } echo done\n")
    service(root, "default", "bundle", **{"contents.d__web-pipeline": "",
                                          "contents.d__db": ""})
    return root


# --------------------------------------------------------------------------- source checker


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_trees_pass_the_source_checker(tmp_path: Path, case: str) -> None:
    """Every golden case is a source tree s6-rc-compile would accept."""
    assert sourcecheck.check(golden_sources(tmp_path, case)) == []


def test_a_valid_hand_written_tree_passes(tmp_path: Path) -> None:
    """Oneshots, bundles naming a pipeline bundle, dependencies on a oneshot: all fine."""
    assert sourcecheck.check([str(valid_tree(tmp_path / "src"))]) == []


def _rm(rel: str) -> Callable[[Path], None]:
    return lambda root: (root / rel).unlink()


def _put(rel: str, text: str, mode: int = 0o644) -> Callable[[Path], None]:
    def put(root: Path) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)
    return put


def _mkdir(rel: str) -> Callable[[Path], None]:
    return lambda root: (root / rel).mkdir(parents=True)


#: One broken tree per rule: (change to the valid tree, part of the message).
BROKEN: dict[str, tuple[Callable[[Path], None], str]] = {
    "no type": (_rm("db/type"), "no regular file named type"),
    "bad type": (_put("db/type", "daemon\n"), "type must be"),
    "type without newline": (_put("db/type", "longrun"), "type must be"),
    "reserved prefix": (_mkdir("s6rc-mine"), "prefixes are reserved"),
    "longrun without run": (_rm("db/run"), "needs a regular file named run"),
    "run not executable": (_put("db/run", "#!/bin/sh\n"), "not executable"),
    "oneshot without up": (_rm("setup/up"), "needs an up file"),
    "unterminated quote in up": (_put("setup/up", '/bin/sh -c "echo\n'),
                                 "unterminated double-quoted"),
    "unmatched brace in down": (_put("setup/down", "foreground { echo\n"), "unmatched {"),
    "timeout not a number": (_put("web/timeout-up", "1m\n"), "timeout-up must be"),
    "notification-fd not a number": (_put("web/notification-fd", "three\n"),
                                     "notification-fd must be"),
    "undefined dependency": (_put("web/dependencies.d/cache", ""), "undefined service"),
    "dependency cycle": (_put("db/dependencies.d/web", ""), "dependency cycle"),
    "cycle through a bundle": (_put("db/dependencies.d/default", ""), "dependency cycle"),
    "bundle without contents": (lambda r: [p.unlink() for p in (r / "default/contents.d")
                                           .iterdir()] and (r / "default/contents.d").rmdir(),
                                "needs contents.d"),
    "bundle cycle": (lambda r: [service(r, "all", "bundle", **{"contents.d__default": ""}),
                                _put("default/contents.d/all", "")(r)],
                     "cyclic bundle"),
    "undefined bundle member": (_put("default/contents.d/ghost", ""), "undefined service"),
    "producer not declared back": (_put("web-log/consumer-for", "db\n"),
                                   "does not declare it back"),
    "producer for two": (_put("web/producer-for", "web-log\ndb\n"), "only contain one"),
    "consumer of a oneshot": (_put("web-log/consumer-for", "web\nsetup\n"), "not a longrun"),
    "pipeline cycle": (lambda r: [_put("web-log/producer-for", "web\n")(r),
                                  _put("web/consumer-for", "web-log\n")(r)],
                       "pipeline cycle"),
    "pipeline-name on a producer": (_put("web/pipeline-name", "p\n"), "only a last consumer"),
    "pipeline-name taken": (_put("web-log/pipeline-name", "db\n"), "also a service's name"),
    "down file": (_put("db/down", ""), "down: ignored"),
    "log directory": (_mkdir("db/log"), "log: ignored"),
    "deprecated dependencies file": (lambda r: [(r / "web/dependencies.d/db").unlink(),
                                                (r / "web/dependencies.d/setup").unlink(),
                                                (r / "web/dependencies.d").rmdir(),
                                                _put("web/dependencies", "db\n")(r)],
                                     "deprecated format"),
}


@pytest.mark.parametrize("rule", sorted(BROKEN))
def test_each_rule_refuses_its_broken_tree(tmp_path: Path, rule: str) -> None:
    """Each rule, alone, makes the otherwise valid tree fail with its own message."""
    root = valid_tree(tmp_path / "src")
    change, message = BROKEN[rule]
    change(root)
    problems = sourcecheck.check([str(root)])
    assert any(message in p for p in problems), problems


def test_a_name_defined_in_two_sources_is_refused(tmp_path: Path) -> None:
    """s6-rc-compile takes several source dirs; a service name is defined once."""
    service(tmp_path / "one", "x", "oneshot", up="true\n")
    service(tmp_path / "two", "x", "oneshot", up="true\n")
    problems = sourcecheck.check([str(tmp_path / "one"), str(tmp_path / "two")])
    assert any("defined twice" in p for p in problems), problems


def test_dot_entries_and_files_are_ignored(tmp_path: Path) -> None:
    """As s6-rc-compile: only subdirectories not starting with a dot are services."""
    root = valid_tree(tmp_path / "src")
    (root / ".hidden").mkdir()
    (root / "README").write_text("not a service\n")
    assert sourcecheck.check([str(root)]) == []


@pytest.mark.parametrize("names", [["s6rc-x"], ["s6-rc-x"], ["default"], ["a", "a-log"],
                                   ["a", "a-pipeline"]])
def test_names_s6rc_cannot_take_are_refused_at_build(tmp_path: Path, names: list[str]) -> None:
    """Reserved prefixes, the default bundle, a logger's or pipeline's name."""
    model = tmp_path / "model.py"
    procs = ", ".join(f'"{n}": Instance(Process(name="{n}", foreground_process="/bin/true"))'
                      for n in names)
    model.write_text("from procmgmt import Instance, Process\n\n"
                     f"def processes(settings):\n    return {{{procs}}}\n")
    settings = tmp_settings(tmp_path, manager="s6-rc")
    parsed, specs = evaluate(str(model), settings)
    with pytest.raises(ValidationError, match="s6-rc"):
        render(parsed, specs, settings)


@pytest.mark.parametrize("case", ["webapps-advanced-privileged", "webapps-daemon"])
def test_every_generated_script_is_shellcheck_clean(case: str) -> None:
    """run, data/start, data/check and the loggers' run pass shellcheck."""
    model_path, privileged, extra = CASES[case]
    import dataclasses

    settings = dataclasses.replace(golden_settings(privileged, "s6-rc"), extra_params=extra)
    model, specs = evaluate(str(model_path), settings)
    result = render(model, specs, settings, get_backend("s6-rc"))
    scripts = [f.content for r in result.processes for f in r.files
               if f.mode & 0o111 and f.content]
    assert len(scripts) >= 3 * len(result.processes)
    _lanes.assert_lints_clean(scripts, _lanes.SHELLCHECK)


def test_a_longrun_is_the_s6_service_directory_without_what_s6_rc_does(tmp_path: Path) -> None:
    """Same run, data/start and data/check as the s6 backend's, but no dependency
    waits in run (s6-rc orders), no down file, no log/ (the logger is a service)."""
    s6 = {f.path.removeprefix("s6/webapp4/"): f.content for f in rendered("s6", "webapp4")}
    rc = {f.path.removeprefix("s6-rc/webapp4/"): f.content
          for f in rendered("s6-rc", "webapp4") if f.path.startswith("s6-rc/webapp4/")}
    assert "s6-svwait" in (s6["run"] or "") and "s6-svwait" not in (rc["run"] or "")
    assert rc["data/start"] == s6["data/start"] and rc["data/check"] == s6["data/check"]
    assert "down" in s6 and "log/run" in s6
    assert "down" not in rc and not any(k.startswith("log/") for k in rc)
    assert sorted(k for k in rc if k.startswith("dependencies.d/")) == [
        "dependencies.d/webapp2", "dependencies.d/webapp3"]


def rendered(backend: str, name: str) -> list[File]:
    """The files of process ``name`` of the advanced webapps (privileged) for ``backend``."""
    settings = golden_settings(True, backend)
    model, specs = evaluate(str(CASES["webapps-advanced-privileged"][0]), settings)
    result = render(model, specs, settings, get_backend(backend))
    return next(r.files for r in result.processes if r.spec.name == name)


# --------------------------------------------------------------------------- command plan


class FakeRunner:
    """Records every command; does what the real program leaves for the next step:
    ``s6-rc-compile`` creates its output, ``s6-rc-init`` the live link; ``s6-svstat``
    reports the services brought up by ``s6-rc -u change`` as up."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []
        self.conversion: dict[str, str] = {}

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        argv = [os.path.basename(argv[0]), *argv[1:]]
        self.commands.append(argv)
        if argv[0] == "s6-rc-compile":
            os.makedirs(argv[3])  # s6-rc-compile -v 1 COMPILED SOURCE...
        elif argv[0] == "s6-rc-init":
            os.symlink(argv[argv.index("-c") + 1], argv[argv.index("-l") + 1])
        elif argv[0] == "s6-rc-update":
            conv = argv[argv.index("-f") + 1]
            self.conversion[argv[-1]] = Path(conv).read_text()
        elif argv[0] == "s6-svstat":
            return CommandResult(0, "true false 4242\n")
        return CommandResult(0, "")

    def plan(self, base: str) -> list[str]:
        """The commands, one string each, with the activator's directory as ``@``
        and the source dirs left out."""
        return [" ".join(a.replace(base, "@") for a in c if not a.endswith("/s6-rc"))
                for c in self.commands]


class FakeSupervisor(Supervisor):
    """Records ``ensure``/``shutdown`` instead of starting s6-svscan."""

    def __init__(self) -> None:
        super().__init__("", "", "", "")
        self.calls: list[str] = []

    def ensure(self, processes: int) -> None:
        self.calls.append(f"ensure {processes}")

    def shutdown(self, timeout: float = 30.0) -> None:
        self.calls.append("shutdown")


def build_model(tmp_path: Path, settings: Settings, a: str = "1",
                with_c: bool = False) -> Generation:
    """Build the test model (``a`` sleeping ``a``; ``c`` only when ``with_c``)."""
    path = tmp_path / f"model-{a}-{with_c}.py"
    path.write_text(MODEL.format(a=a, with_c=with_c))
    model, specs = evaluate(str(path), settings)
    return build(model, specs, settings)


class Installed(S6RcActivator):
    """The activator with the fake runner standing for installed s6-rc tools (the
    engine's pre-flight would otherwise refuse: s6-rc is not packaged here)."""

    def required_tools(self, gen: Generation) -> list[Tool]:
        return []


@pytest.fixture
def act(tmp_path: Path) -> S6RcActivator:
    return Installed(tmp_settings(tmp_path, manager="s6-rc"), runner=FakeRunner(),
                     supervisor=FakeSupervisor())


def runner_of(act: S6RcActivator) -> FakeRunner:
    assert isinstance(act.run, FakeRunner)
    return act.run


def switch(act: S6RcActivator, old: Generation | None, new: Generation) -> None:
    """What the engine does with an activator that applies plans."""
    act.prepare(new, old)
    act.apply(new, old, compute_plan(old, new))
    act.finish(new, old)


def test_first_deployment_compiles_initialises_and_brings_default_up(
        tmp_path: Path, act: S6RcActivator) -> None:
    gen = build_model(tmp_path, act.settings)
    switch(act, None, gen)
    gid = os.path.basename(gen.path)
    assert runner_of(act).plan(act.dir) == [
        f"s6-rc-compile -v 1 @/compiled/.{gid}.{os.getpid()}",
        "s6-rc-init -c @/current -l @/live "
        "@/scan",
        "s6-rc -l @/live -u change default",
    ]
    # every source dir of the generation, in order, was compiled
    assert runner_of(act).commands[0][4:] == sources(gen)
    assert os.readlink(act.current) == os.path.join(act.compiled_dir, gid)
    assert isinstance(act.supervisor, FakeSupervisor) and act.supervisor.calls == ["ensure 2"]


def test_an_update_restarts_what_changed_and_stops_what_went(
        tmp_path: Path, act: S6RcActivator) -> None:
    """c goes, a's run changes: ``-d change`` of c and its logger, then s6-rc-update
    with a conversion file restarting a (not its unchanged logger, not b)."""
    first = build_model(tmp_path, act.settings, with_c=True)
    second = build_model(tmp_path, act.settings, a="5")
    switch(act, None, first)
    runner_of(act).commands.clear()
    switch(act, first, second)
    new_db = os.path.join(act.compiled_dir, os.path.basename(second.path))
    conv = f"@/conversion/{os.path.basename(second.path)}"
    assert runner_of(act).plan(act.dir) == [
        f"s6-rc-compile -v 1 @/compiled/"
        f".{os.path.basename(second.path)}.{os.getpid()}",
        "s6-rc -l @/live -d change c c-log",
        f"s6-rc-update -l @/live -f {conv} "
        f"{new_db.replace(act.dir, '@')}",
        "s6-rc -l @/live -u change default",
    ]
    assert restarts(runner_of(act).conversion[new_db]) == {"a"}
    assert os.readlink(act.current) == new_db
    # the freed database is gone, the live one stays
    assert os.listdir(act.compiled_dir) == [os.path.basename(second.path)]


def test_undeploying_brings_everything_down_and_forgets_the_live_state(
        tmp_path: Path, act: S6RcActivator) -> None:
    first = build_model(tmp_path, act.settings)
    switch(act, None, first)
    runner_of(act).commands.clear()
    empty = Generation(backend="s6-rc", path=str(tmp_path / "empty"), processes=())
    switch(act, first, empty)
    assert runner_of(act).plan(act.dir) == [
        "s6-rc -l @/live -da change"]
    assert isinstance(act.supervisor, FakeSupervisor)
    assert act.supervisor.calls[-1] == "shutdown"
    assert not os.path.lexists(act.live) and not os.path.lexists(act.current)


def test_an_invalid_source_tree_is_refused_before_s6_rc_compile(
        tmp_path: Path, act: S6RcActivator) -> None:
    gen = build_model(tmp_path, act.settings)
    store_entry = Path(gen.processes[0].path) / "s6-rc" / "a" / "type"
    store_entry.chmod(0o644)
    store_entry.write_text("daemon\n")
    with pytest.raises(ProcmgmtError, match="type must be"):
        switch(act, None, gen)
    assert runner_of(act).commands == []


def test_a_failing_command_fails_the_switch_with_its_output(
        tmp_path: Path, act: S6RcActivator) -> None:
    def failing(argv: Sequence[str]) -> CommandResult:
        return CommandResult(1, "s6-rc-compile: fatal: something\n")
    act.run = failing
    with pytest.raises(ProcmgmtError, match="fatal: something"):
        switch(act, None, build_model(tmp_path, act.settings))


def test_the_engine_hands_the_plan_over_and_waits_through_status(
        tmp_path: Path, act: S6RcActivator) -> None:
    """Through the engine: one apply per switch, then each process's status."""
    settings = act.settings
    engine = Engine(settings, out=io.StringIO(), options=Options(max_parallel=1,
                                                                 start_grace=0.0))
    engine.use_activator("s6-rc", act)
    gen = build_model(tmp_path, settings)
    engine.switch(gen, lambda: Profile(settings).add(gen.path))
    verbs = [c[0] + (" " + c[-1] if c[0] == "s6-rc" else "") for c in runner_of(act).commands]
    assert verbs[:3] == ["s6-rc-compile", "s6-rc-init", "s6-rc default"]
    assert set(verbs[3:]) == {"s6-svstat"}


# --------------------------------------------------------------------------- s6-rc-update


def restarts(conversion: str) -> set[str]:
    """The services a conversion file restarts, lexed as execlineb does for these
    lines (words split on blanks, ``#`` comments, double quotes)."""
    out = set()
    for line in conversion.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        rest = words[3:] if words[1:2] == ["->"] else words[1:]
        if rest[:1] == ["restart"]:
            out.add(words[0])
    return out


Db = dict[str, tuple[str, set[str]]]


def read_db(gen: Generation) -> Db:
    """service -> (type, dependencies) from a generation's source dirs, as compiled:
    ``dependencies.d`` plus a producer's dependency on its consumer (s6-rc-compile.c)."""
    db: Db = {}
    for src in sources(gen):
        for name in os.listdir(src):
            d = Path(src) / name
            kind = (d / "type").read_text().strip()
            deps = set(os.listdir(d / "dependencies.d")) if (d / "dependencies.d").is_dir() \
                else set()
            if (d / "producer-for").is_file():
                deps.add((d / "producer-for").read_text().strip())
            db[name] = (kind, deps)
    return db


def update_model(old: Db, new: Db, up: set[str], convert_restart: set[str]
                 ) -> tuple[set[str], set[str]]:
    """s6-rc-update's decisions (s6-rc-update.html, "Restarts") for the up atomic
    services ``up`` of ``old``: (stopped for good, restarted). A service restarts when
    it changed type, the conversion file says restart, or it depends on one that
    restarts, on an old service that stops, or on a new service that did not exist
    or was down. Nothing else: not a changed run script."""
    atomic_up = {s for s in up if old[s][0] != "bundle"}
    stop = {s for s in atomic_up if s not in new}
    restart = {s for s in atomic_up - stop
               if new[s][0] != old[s][0] or s in convert_restart}
    newly = {s for s in new if s not in old or s not in atomic_up}
    changed = True
    while changed:
        changed = False
        for s in atomic_up - stop - restart:
            if new[s][1] & (restart | stop | newly):
                restart.add(s)
                changed = True
    return stop, restart


def test_s6_rc_update_alone_keeps_a_changed_longrun_running(
        tmp_path: Path, act: S6RcActivator) -> None:
    """The original's gap: without a conversion file, a's new run script is ignored."""
    first = build_model(tmp_path, act.settings)
    second = build_model(tmp_path, act.settings, a="5")
    old, new = read_db(first), read_db(second)
    assert (Path(second.processes[0].path) / "s6-rc/a/data/start").read_text() != \
        (Path(first.processes[0].path) / "s6-rc/a/data/start").read_text()
    assert update_model(old, new, set(old) - {"default"}, set()) == (set(), set())


@pytest.mark.parametrize(("before", "after"), [
    ({"a": "1"}, {"a": "5"}),                                   # a's command changed
    ({"a": "1", "with_c": True}, {"a": "1"}),                   # c removed
    ({"a": "1"}, {"a": "1", "with_c": True}),                   # c added
    ({"a": "1", "with_c": True}, {"a": "7", "with_c": True}),   # a changed, c stays
])
def test_every_changed_service_restarts_with_our_conversion_file(
        tmp_path: Path, act: S6RcActivator, before: dict[str, object],
        after: dict[str, object]) -> None:
    """With procmgmt's conversion file, the model of s6-rc-update restarts every up
    service whose definition changed (and its dependents), and nothing unchanged
    that nothing forces."""
    first = build_model(tmp_path, act.settings, **before)  # type: ignore[arg-type]
    second = build_model(tmp_path, act.settings, **after)  # type: ignore[arg-type]
    switch(act, None, first)
    switch(act, first, second)
    new_db = os.path.join(act.compiled_dir, os.path.basename(second.path))
    conv = restarts(runner_of(act).conversion[new_db])
    old, new = read_db(first), read_db(second)
    up = {s for s, (kind, _) in old.items() if kind != "bundle"}
    stopped, restarted = update_model(old, new, up, conv)
    hashes = {g: {p.name: p.hash for p in gen.processes}
              for g, gen in (("old", first), ("new", second))}
    changed = {n for n in hashes["old"] if n in hashes["new"]
               and hashes["old"][n] != hashes["new"][n]}
    assert changed <= restarted
    assert stopped == {s for s in up if s not in new}
    # nothing else restarts but what depends on a restarted one
    for s in restarted - changed:
        assert new[s][1] & restarted, s


def test_conversion_file_words_survive_the_lexer() -> None:
    """Plain names stay as they are; others are double-quoted with escapes."""
    names = ["web", "odd name", 'q"uote', "back\\slash"]
    text = conversion_file(names)
    assert "web restart" in text.splitlines()
    assert restarts(text) == set(names)
